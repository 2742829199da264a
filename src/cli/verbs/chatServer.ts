import { isLoopbackHost, localKeyPath, readLocalKey } from "../../auth/localMode.ts";

/**
 * `sputnik chat --url`: which key to send and what the server serves, checked before the first
 * prompt, so that a wrong key or model name is reported at once with what to do about it, not as
 * a bare status after the user typed a question.
 */

/** The key `sputnik chat --url` sends and where it came from (for messages about it). */
export interface ChatKey {
  key: string | undefined;
  source: "flag" | "env" | "local" | "none";
}

export async function chooseKey(baseUrl: string, dataDir: string, flag: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<ChatKey> {
  if (flag) return { key: flag, source: "flag" };
  if (env.SPUTNIK_API_KEY) return { key: env.SPUTNIK_API_KEY, source: "env" };
  // A Sputnik on this machine in local single-user mode wants its data directory's local key
  // (src/auth/localMode.ts). Only ever sent to a loopback URL: the key must not leave the machine.
  if (!isLoopbackUrl(baseUrl)) return { key: undefined, source: "none" };
  const local = await readLocalKey(dataDir);
  return local ? { key: local, source: "local" } : { key: undefined, source: "none" };
}

/** Lists the served models; throws an Error whose message says what went wrong and what to do. */
export async function servedModels(baseUrl: string, key: ChatKey, dataDir: string): Promise<string[]> {
  let response: Response;
  try {
    response = await fetch(`${baseUrl}/models`, { headers: key.key ? { authorization: `Bearer ${key.key}` } : {}, signal: AbortSignal.timeout(30_000) });
  } catch (error) {
    throw new Error(`cannot reach ${baseUrl} (${(error as Error).message}). Is the server running, and is the URL right (e.g. http://127.0.0.1:8080/v1)?`);
  }
  if (response.status === 401 || response.status === 403) throw new Error(keyAdvice(baseUrl, key, dataDir, response.status));
  if (!response.ok) throw new Error(`${baseUrl}/models answered ${response.status}${await errorDetail(response)}`);
  const body = (await response.json().catch(() => ({}))) as { data?: Array<{ id?: unknown }> };
  return (body.data ?? []).map((m) => m.id).filter((id): id is string => typeof id === "string");
}

/** The model to chat with: the one asked for if served, else the first served; throws when neither. */
export function pickModel(baseUrl: string, served: string[], wanted: string | undefined): string {
  if (wanted !== undefined) {
    if (served.includes(wanted)) return wanted;
    const list = served.length > 0 ? `It serves: ${served.join(", ")}.` : "It serves no models.";
    throw new Error(`model "${wanted}" is not served by ${baseUrl}. ${list}`);
  }
  const first = served[0];
  if (!first) throw new Error(`${baseUrl} serves no models`);
  return first;
}

function keyAdvice(baseUrl: string, key: ChatKey, dataDir: string, status: number): string {
  const refused = status === 401 ? "refused" : "did not allow";
  const what: Record<ChatKey["source"], string> = {
    flag: "the API key given with --api-key",
    env: "the API key in SPUTNIK_API_KEY",
    local: `the local key from ${localKeyPath(dataDir)}`,
    none: "a request without an API key",
  };
  const lines = [
    `${baseUrl} ${refused} ${what[key.source]} (HTTP ${status}).`,
    "Set SPUTNIK_API_KEY (or pass --api-key) to a key of yours: create one in the web app under \"API keys\".",
  ];
  if (isLoopbackUrl(baseUrl)) {
    lines.push(
      `For a Sputnik on this machine without accounts yet, the key is in ${localKeyPath(dataDir)}; pass the server's --data-dir if it uses another one. Once an account exists, that key no longer opens /v1: use an API key.`,
    );
  }
  return lines.join("\n");
}

async function errorDetail(response: Response): Promise<string> {
  try {
    const body = JSON.parse((await response.text()).slice(0, 64 * 1024)) as { error?: { message?: string } };
    return body.error?.message ? `: ${body.error.message}` : "";
  } catch {
    return "";
  }
}

function isLoopbackUrl(baseUrl: string): boolean {
  try {
    return isLoopbackHost(new URL(baseUrl).hostname);
  } catch {
    return false;
  }
}
