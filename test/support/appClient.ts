/**
 * A browser-like client for the app API in tests: keeps cookies, echoes the CSRF cookie in the
 * X-Sputnik-CSRF header on state-changing requests (as the web app must), sends raw paths as
 * written (no URL normalisation), and can speak from any 127.x.y.z address (a distinct client IP).
 *
 *   const alice = new AppClient(url);
 *   await alice.post("/api/auth/signup", { username: "alice", password: "correct horse" });
 *   const keys = await alice.get("/api/keys");
 */
import http, { type IncomingHttpHeaders } from "node:http";

export interface AppResponse {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** The parsed JSON body (null when empty or not JSON). */
  body: any;
  setCookies: string[];
  ms: number;
}

export interface RequestOptions {
  headers?: Record<string, string>;
  /** Send the CSRF header (default: on for POST/PUT/PATCH/DELETE). */
  csrf?: boolean;
  /** Send the stored cookies (default true). */
  cookies?: boolean;
}

export class AppClient {
  readonly cookies = new Map<string, string>();

  constructor(
    readonly baseUrl: string,
    readonly options: { from?: string; headers?: Record<string, string> } = {},
  ) {}

  get(path: string, opts?: RequestOptions) {
    return this.request("GET", path, undefined, opts);
  }
  post(path: string, body?: unknown, opts?: RequestOptions) {
    return this.request("POST", path, body ?? {}, opts);
  }
  put(path: string, body?: unknown, opts?: RequestOptions) {
    return this.request("PUT", path, body ?? {}, opts);
  }
  patch(path: string, body?: unknown, opts?: RequestOptions) {
    return this.request("PATCH", path, body ?? {}, opts);
  }
  delete(path: string, opts?: RequestOptions) {
    return this.request("DELETE", path, undefined, opts);
  }

  /**
   * A state-changing request answered with a stream (a web app reply's SSE), as the raw fetch
   * Response to read as it arrives; cookies and the CSRF header as in `request`.
   */
  async stream(path: string, body: unknown, signal?: AbortSignal): Promise<Response> {
    if (!this.cookies.has("sputnik_csrf")) await this.get("/api/auth/state");
    return fetch(`${this.baseUrl}${path}`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; "),
        "x-sputnik-csrf": this.cookies.get("sputnik_csrf")!,
      },
      body: JSON.stringify(body),
      ...(signal ? { signal } : {}),
    });
  }

  async request(method: string, path: string, body?: unknown, opts: RequestOptions = {}): Promise<AppResponse> {
    const stateChanging = !["GET", "HEAD", "OPTIONS"].includes(method);
    if (stateChanging && (opts.csrf ?? true) && !this.cookies.has("sputnik_csrf")) await this.get("/api/auth/state");
    const headers: Record<string, string> = { ...this.options.headers, ...opts.headers };
    if (body !== undefined) headers["content-type"] ??= "application/json";
    if ((opts.cookies ?? true) && this.cookies.size > 0) {
      headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
    }
    if (stateChanging && (opts.csrf ?? true) && this.cookies.has("sputnik_csrf")) headers["x-sputnik-csrf"] ??= this.cookies.get("sputnik_csrf")!;
    const response = await rawRequest(this.baseUrl, method, path, headers, body === undefined ? undefined : JSON.stringify(body), this.options.from);
    for (const line of response.setCookies) {
      const [pair, ...attributes] = line.split(";");
      const eq = pair!.indexOf("=");
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      const expired = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a) || /^\s*expires=thu, 01 jan 1970/i.test(a));
      if (expired || value === "") this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return response;
  }
}

/** One HTTP request with the path sent exactly as given. */
export function rawRequest(
  baseUrl: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
  localAddress?: string,
): Promise<AppResponse> {
  const url = new URL(baseUrl);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, method, path, headers: { ...headers, ...(body !== undefined ? { "content-length": String(Buffer.byteLength(body)) } : {}) }, localAddress, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let parsed: unknown = null;
          try {
            parsed = text ? JSON.parse(text) : null;
          } catch {
            parsed = null;
          }
          const raw = res.headers["set-cookie"];
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body: parsed, setCookies: raw ?? [], ms: performance.now() - started });
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}
