import type { ChatHistoryItem } from "node-llama-cpp";
import type { ChatMessage } from "../types.ts";

/**
 * Turns API messages into node-llama-cpp chat history. The reasoning of earlier assistant turns is
 * dropped on purpose: DeepSeek's multi-round rule is that `reasoning_content` is never fed back,
 * which also keeps long conversations from filling the context with old chains of thought.
 * The trailing empty model turn is where the new answer is generated.
 */
export function toChatHistory(messages: ChatMessage[]): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = [];
  for (const message of messages) {
    switch (message.role) {
      case "system":
        history.push({ type: "system", text: message.content });
        break;
      case "user":
        history.push({ type: "user", text: message.content });
        break;
      case "tool":
        // Tool results reach the model as user-visible context; native tool calling is not wired yet.
        history.push({ type: "user", text: `Tool result${message.name ? ` (${message.name})` : ""}:\n${message.content}` });
        break;
      case "assistant":
        history.push({ type: "model", response: [message.content] });
        break;
    }
  }
  history.push({ type: "model", response: [] });
  return history;
}
