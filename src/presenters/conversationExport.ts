import { parseSettings } from "../chat/conversationSettings.ts";
import type { Conversation, Message } from "../chat/conversations.ts";
import type { ConversationSettingsView, MessageStatus } from "./conversationTypes.ts";
import { isoTime } from "./time.ts";

/**
 * A conversation exported from the chat's menu (GET /api/conversations/:id/export?format=json|md).
 * Both hold the branch shown in the chat (first message first), answers' reasoning only when asked.
 *
 * The JSON is versioned by `format`: a reader checks it, and a change that would break a reader
 * gets a new number (fields may be added within a version):
 *
 *   {
 *     "format": "sputnik-conversation/1",
 *     "exported_at": ISO 8601,
 *     "conversation": { "id", "title" (null: untitled), "model" (of the last answer),
 *                        "created_at", "updated_at", "settings": { system_prompt, temperature,
 *                        max_tokens, thinking_budget } (null: the model's default) },
 *     "branch": "current",
 *     "include_reasoning": boolean,
 *     "messages": [ { "role": "user" | "assistant", "content", "reasoning" (only when included
 *                     and not empty), "model" (answers; else null), "status" ("complete",
 *                     "stopped", "error", "interrupted", "streaming"), "error" (null unless failed),
 *                     "created_at", "usage": { prompt_tokens, completion_tokens, reasoning_tokens } (answers) } ]
 *   }
 *
 * The Markdown is for reading: the title as `# …`, then each message under `## User` or
 * `## Assistant`, reasoning (when included) as a quoted block before the answer.
 */
export const EXPORT_FORMAT = "sputnik-conversation/1";

export interface ConversationExport {
  format: typeof EXPORT_FORMAT;
  exported_at: string;
  conversation: { id: string; title: string | null; model: string | null; created_at: string; updated_at: string; settings: ConversationSettingsView };
  branch: "current";
  include_reasoning: boolean;
  messages: Array<{
    role: "user" | "assistant";
    content: string;
    reasoning?: string;
    model: string | null;
    status: MessageStatus;
    error: string | null;
    created_at: string;
    usage?: { prompt_tokens: number; completion_tokens: number; reasoning_tokens: number };
  }>;
}

export function exportJson(conversation: Conversation, branch: Message[], options: { includeReasoning: boolean; now?: number }): ConversationExport {
  return {
    format: EXPORT_FORMAT,
    exported_at: isoTime(options.now ?? Date.now()),
    conversation: {
      id: conversation.id,
      title: conversation.title,
      model: conversation.model,
      created_at: isoTime(conversation.created_at),
      updated_at: isoTime(conversation.updated_at),
      settings: parseSettings(conversation.settings),
    },
    branch: "current",
    include_reasoning: options.includeReasoning,
    messages: branch.map((m) => ({
      role: m.role,
      content: m.content,
      ...(options.includeReasoning && m.reasoning !== "" ? { reasoning: m.reasoning } : {}),
      model: m.role === "assistant" ? m.model : null,
      status: m.status,
      error: m.error,
      created_at: isoTime(m.created_at),
      ...(m.role === "assistant" ? { usage: { prompt_tokens: m.prompt_tokens, completion_tokens: m.completion_tokens, reasoning_tokens: m.reasoning_tokens } } : {}),
    })),
  };
}

const STATUS_NOTE: Partial<Record<MessageStatus, string>> = {
  stopped: "Stopped before the end.",
  interrupted: "Cut short: the server stopped while this answer was being written.",
  streaming: "Still being written when exported.",
};

export function exportMarkdown(conversation: Conversation, branch: Message[], options: { includeReasoning: boolean; now?: number }): string {
  const out: string[] = [`# ${oneLine(conversation.title ?? "Conversation")}`, "", `_Exported from Sputnik on ${isoTime(options.now ?? Date.now())}._`];
  const settings = parseSettings(conversation.settings);
  if (settings.system_prompt !== null) out.push("", "## System", "", settings.system_prompt);
  for (const m of branch) {
    out.push("", m.role === "user" ? "## User" : "## Assistant", "");
    if (m.role === "assistant" && m.model) out.push(`_Model: ${oneLine(m.model)}_`, "");
    if (options.includeReasoning && m.reasoning !== "") {
      out.push("> **Reasoning**", ">", ...m.reasoning.split("\n").map((line) => (line === "" ? ">" : `> ${line}`)), "");
    }
    if (m.content !== "") out.push(m.content);
    const note = m.status === "error" ? (m.error ?? "The answer failed.") : STATUS_NOTE[m.status];
    if (note) out.push("", `_${note}_`);
  }
  return `${out.join("\n")}\n`;
}

/** A file name for the download: the title's letters and digits, else "conversation". */
export function exportFileName(conversation: Conversation, extension: "md" | "json"): string {
  const base = (conversation.title ?? "")
    .normalize("NFKD")
    .replace(/[^\p{L}\p{N}]+/gu, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 60)
    .toLowerCase();
  return `${base || "conversation"}.${extension}`;
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}
