import { api } from "./http.ts";

// Calls of the chat's settings panel, share dialog and shared page: only their lazy chunks import this.
import type { Conversation } from "./conversations.ts";
import type {
  ConversationSettingsResponse,
  ConversationSettingsView,
  ConversationShareView,
  SharedConversationView,
} from "../../../src/presenters/conversationTypes.ts";

export type ConversationSettings = ConversationSettingsView;
export type ConversationShare = ConversationShareView;
export type SharedConversation = SharedConversationView;

const base = (id: string) => `/api/conversations/${encodeURIComponent(id)}`;

export const getSettings = (id: string) => api<ConversationSettingsResponse>("GET", `${base(id)}/settings`);
export const saveSettings = (id: string, settings: Partial<ConversationSettings>) => api<Conversation>("PATCH", base(id), { settings });

export const listShares = (id: string) => api<{ data: ConversationShare[] }>("GET", `${base(id)}/shares`);
export const createShare = (id: string, options: { include_reasoning: boolean; show_author: boolean }) =>
  api<ConversationShare & { path: string }>("POST", `${base(id)}/shares`, options);
export const revokeShare = (id: string, shareId: string) => api<void>("DELETE", `${base(id)}/shares/${encodeURIComponent(shareId)}`);

export const getShared = (token: string) => api<SharedConversation>("GET", `/api/shared/${encodeURIComponent(token)}`);

/** The export's address: a plain link downloads it (the server names the file). */
export const exportUrl = (id: string, format: "md" | "json", reasoning: boolean) => `${base(id)}/export?format=${format}&reasoning=${reasoning}`;
