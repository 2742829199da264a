import type { ChatHistoryItem, ChatWrapper } from "node-llama-cpp";
import type { ChatMessage } from "../types.ts";
import { toolAwareHistory } from "./tools.ts";

/**
 * Turns API messages into node-llama-cpp chat history. The reasoning of earlier assistant turns is
 * dropped on purpose: DeepSeek's multi-round rule is that `reasoning_content` is never fed back,
 * which also keeps long conversations from filling the context with old chains of thought. Their
 * tool calls and the tool results are fed back, in the model's own syntax (see tools.ts).
 * The trailing empty model turn is where the new answer is generated; after tool results the
 * answer continues the model turn that made the calls, as the chat templates render it, and a
 * prefix completion continues the last assistant message's text.
 * `wrapper` renders earlier calls exactly as the client sent their arguments back (tools.ts).
 */
export function toChatHistory(messages: ChatMessage[], wrapper?: ChatWrapper): ChatHistoryItem[] {
  const { history, endsInModelTurn } = toolAwareHistory(messages, wrapper);
  if (isPrefixCompletion(messages)) {
    // The last assistant message is the start of the answer: generation continues it.
    const last = history.at(-1);
    if (last?.type === "model") return history;
    history.push({ type: "model", response: [messages.at(-1)!.content] });
    return history;
  }
  if (!endsInModelTurn) history.push({ type: "model", response: [] });
  return history;
}

/** DeepSeek's chat prefix completion: the last message is an assistant message marked `prefix: true`. */
export function isPrefixCompletion(messages: ChatMessage[]): boolean {
  const last = messages.at(-1);
  return last?.role === "assistant" && last.prefix === true;
}
