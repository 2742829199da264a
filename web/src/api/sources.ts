/**
 * What an answer read (issue 15): web pages and documents, numbered as the answer cites them
 * (`[1]`, `[2]`…). Sent in the reply's `sources` event and stored with the answer
 * (`message.sources`), so they show while it is written and after a reload. The shapes are the
 * server's (src/presenters/conversationTypes.ts).
 */
import type { SearchedView, SourceView } from "../../../src/presenters/conversationTypes.ts";

/** `snippet` is not shown; a shared link's sources (SharedSourceView) leave it and `file_id` out. */
export type Source = Omit<SourceView, "snippet"> & { snippet?: string };
export type Searched = SearchedView;
