/**
 * Every call to Sputnik's app API goes through here: same-origin, cookie session (never a token in
 * storage), the CSRF header on state-changing requests, and errors turned into ApiError with the
 * server's own words.
 */
import { csrfHeaders } from "./csrf.ts";

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string | null = null,
    /** Seconds from a Retry-After header (busy or rate-limited). */
    readonly retryAfterS: number | null = null,
  ) {
    super(message);
    this.name = "ApiError";
  }

  /** True when waiting and retrying may succeed. */
  get busy(): boolean {
    return this.status === 503 || this.status === 429;
  }
}

/** Raised when the request never reached the server (offline, server down). */
export class NetworkError extends Error {
  constructor(cause: unknown) {
    super("Cannot reach the server. Check your connection.", { cause });
    this.name = "NetworkError";
  }
}

type Method = "GET" | "POST" | "PATCH" | "PUT" | "DELETE";

/**
 * Told when the server no longer knows this browser (session expired, revoked, account disabled),
 * so the app can go back to the sign-in page. Sign-in calls themselves answer 401 for a wrong
 * password, which is not that.
 */
const signedOutListeners = new Set<(code: string | null) => void>();
const CREDENTIAL_PATHS = new Set(["/api/auth/login", "/api/auth/login/second-factor", "/api/auth/signup"]);
/** `code`: the server's reason (`account_disabled` when an administrator disabled the account). */
export function onSignedOut(listener: (code: string | null) => void): () => void {
  signedOutListeners.add(listener);
  return () => signedOutListeners.delete(listener);
}

export async function request(method: Method, path: string, body?: unknown, init: RequestInit = {}): Promise<Response> {
  const headers: Record<string, string> = { accept: "application/json", ...(method === "GET" ? {} : csrfHeaders()) };
  if (body !== undefined) headers["content-type"] = "application/json";
  let response: Response;
  try {
    response = await fetch(path, {
      ...init,
      method,
      headers: { ...headers, ...(init.headers as Record<string, string> | undefined) },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch (error) {
    if ((error as Error).name === "AbortError") throw error;
    throw new NetworkError(error);
  }
  if (!response.ok) {
    const error = await toApiError(response);
    if (error.status === 401 && !CREDENTIAL_PATHS.has(path)) for (const listener of signedOutListeners) listener(error.code);
    throw error;
  }
  return response;
}

export async function api<T>(method: Method, path: string, body?: unknown): Promise<T> {
  const response = await request(method, path, body);
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

export async function toApiError(response: Response): Promise<ApiError> {
  let message = `The server answered ${response.status} ${response.statusText}`.trim();
  let code: string | null = null;
  try {
    const body = (await response.json()) as { error?: { message?: string; code?: string } };
    if (body.error?.message) message = body.error.message;
    code = body.error?.code ?? null;
  } catch {
    // Not JSON (a proxy's error page): keep the status line.
  }
  const retryAfter = Number(response.headers.get("retry-after"));
  return new ApiError(message, response.status, code, Number.isFinite(retryAfter) && retryAfter > 0 ? Math.ceil(retryAfter) : null);
}

/** Words for the user, whatever went wrong. */
export function describeError(error: unknown): string {
  if (error instanceof ApiError || error instanceof NetworkError) return error.message;
  return "Something went wrong. Please try again.";
}
