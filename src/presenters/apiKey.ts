import { keyModels, type ApiKeyRow } from "../auth/apiKeys.ts";
import { isoTime } from "./time.ts";

/** A key as listed: its prefix, never the key or its hash. */
export function presentApiKey(key: ApiKeyRow, now: number = Date.now()) {
  return {
    id: key.id,
    name: key.name,
    prefix: key.prefix,
    models: keyModels(key),
    created_at: isoTime(key.created_at),
    expires_at: isoTime(key.expires_at),
    last_used_at: isoTime(key.last_used_at),
    expired: key.expires_at !== null && key.expires_at <= now,
  };
}

/** The answer to creating a key: the only response that ever carries the key itself. */
export function presentCreatedApiKey(key: ApiKeyRow, secret: string) {
  return { ...presentApiKey(key), key: secret };
}
