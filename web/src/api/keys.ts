import { api } from "./http.ts";

/** src/presenters/apiKey.ts */
export interface ApiKey {
  id: string;
  name: string;
  prefix: string;
  models: string[] | null;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  expired: boolean;
}

export const listKeys = () => api<{ data: ApiKey[] }>("GET", "/api/keys");
/** The only answer that carries the key itself: show it once. */
export const createKey = (input: { name: string; models: string[] | null; expires_in_days: number | null }) =>
  api<ApiKey & { key: string }>("POST", "/api/keys", input);
export const revokeKey = (id: string) => api<void>("DELETE", `/api/keys/${encodeURIComponent(id)}`);
