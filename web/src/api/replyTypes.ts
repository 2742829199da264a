// What a send carries and what its stream answers: shared by the conversation calls and the
// lazily loaded stream chunk (./replyStream.ts), which must not import the module that loads it.
import type { ReplyEventView } from "../../../src/presenters/conversationTypes.ts";

export type ReplyEvent = ReplyEventView;

/** `search`: the answer searches the web first; `file_ids`: documents it reads (both sent only when used). */
interface ReplyOptions {
  model: string;
  thinking: boolean;
  search?: boolean;
  file_ids?: string[];
}

export type ReplyRequest = ({ content: string; parent_id: string | null } & ReplyOptions) | ({ regenerate: string } & ReplyOptions);
