import type { Message } from "../chat/conversations.ts";
import type { SearchResult } from "../chat/search.ts";
import type { ConversationShare } from "../chat/shares.ts";
import { presentConversation } from "./conversation.ts";
import type { ConversationSearchView, ConversationShareView, SharedConversationView, SharedSourceView, SourceView } from "./conversationTypes.ts";
import { parseStoredSources } from "./sources.ts";
import { isoTime } from "./time.ts";

/** A live link as its owner lists it; `token` only right after it was made (the one time it is shown). */
export function presentShare(share: ConversationShare, token?: string): ConversationShareView {
  return {
    id: share.id,
    include_reasoning: share.include_reasoning === 1,
    show_author: share.show_author === 1,
    created_at: isoTime(share.created_at),
    ...(token !== undefined ? { path: `/s/${token}` } : {}),
  };
}

/**
 * What a link shows to anyone: the title and the messages' text (reasoning only when the owner
 * chose it), the model, times, and the owner's name only when chosen. No ids: nothing in it leads
 * to the conversation, the account or anything else of it.
 */
export function presentSharedConversation(share: ConversationShare, messages: Message[], author: string | null): SharedConversationView {
  return {
    title: share.title,
    author,
    shared_at: isoTime(share.created_at),
    messages: messages.map((m) => ({
      role: m.role,
      content: m.content,
      ...(share.include_reasoning === 1 && m.reasoning !== "" ? { reasoning: m.reasoning } : {}),
      model: m.role === "assistant" ? m.model : null,
      status: m.status === "streaming" ? "interrupted" : m.status,
      created_at: isoTime(m.created_at),
      ...sharedSources(m),
    })),
  };
}

/** An answer's sources for a link: web pages as they are, documents by name alone (see SharedSourceView). */
function sharedSources(m: Message): { sources?: SharedSourceView[] } {
  const sources = m.role === "assistant" ? parseStoredSources(m.sources) : null;
  if (!sources || sources.length === 0) return {};
  return { sources: sources.map(sharedSource) };
}

function sharedSource(s: SourceView): SharedSourceView {
  if (s.kind === "file") {
    const filename = s.filename ?? "document";
    return { index: s.index, kind: "file", title: filename, filename };
  }
  return { index: s.index, kind: "web", ...(s.url !== undefined ? { url: s.url } : {}), title: s.title };
}

export function presentSearchResult(result: SearchResult): ConversationSearchView {
  return { ...presentConversation(result.conversation), match: result.match };
}
