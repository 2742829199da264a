// What a send carries and what its stream answers: shared by the conversation calls and the
// lazily loaded stream chunk (./replyStream.ts), which must not import the module that loads it.
import type { ReplyEventView } from "../../../src/presenters/conversationTypes.ts";

export type ReplyEvent = ReplyEventView;

export type ReplyRequest =
  | { content: string; parent_id: string | null; model: string; thinking: boolean }
  | { regenerate: string; model: string; thinking: boolean };
