/**
 * Malformed requests to every route of a real service (accounts, an API key, the scripted model,
 * rate limits off so every request gets through to its route): random and mutated bodies (wrong
 * types, huge numbers, deep nesting within the body limit, odd Unicode, broken JSON, wrong content
 * types), path tricks, bad headers, and raw malformed HTTP. No answer may be a 5xx, and /health must
 * be fine afterwards. Seeded (SPUTNIK_FUZZ_SEED to replay a run), bounded in time, loopback only.
 *
 * The routes are read from the Fastify app itself, so a new route is fuzzed without editing this file.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { after, before, test } from "node:test";
import { AppClient, rawRequest, type AppResponse } from "./support/appClient.ts";
import { TEST_PASSWORD, TEST_PASSWORD_HASHING } from "./support/accountsServer.ts";
import { startTestService, type TestService } from "./support/service.ts";
import { mulberry32 } from "../src/gguf/random.ts";

const SEED = Number(process.env.SPUTNIK_FUZZ_SEED ?? 20_240_607);
const TIME_BUDGET_MS = Number(process.env.SPUTNIK_FUZZ_MS ?? 25_000);
const MAX_REQUESTS = 4000;
const CONCURRENCY = 4;

let service: TestService;
before(async () => {
  service = await startTestService({
    models: ["scripted"],
    config: {
      auth: { passwordHashing: TEST_PASSWORD_HASHING },
      // Off: the fuzz must reach the routes, not the flood guard (limits have their own tests).
      limits: {
        perKey: { requestsPerMinute: 0, tokensPerMinute: 0 },
        perUser: { requestsPerMinute: 0, tokensPerMinute: 0 },
        perIp: { requestsPerMinute: 0, tokensPerMinute: 0 },
        authPerIpPerMinute: 0,
        httpPerIpPerMinute: 0,
      },
    },
  });
});
after(() => service.stop());


interface Route {
  method: string;
  path: string;
}

/** Every method + path of the app, from Fastify's own route tree (HEAD included). */
function routesOf(service: TestService): Route[] {
  const tree = service.app.printRoutes({ commonPrefix: false });
  const routes: Route[] = [];
  const stack: string[] = [];
  for (const line of tree.split("\n")) {
    const match = /^((?:│   |    )*)(?:├── |└── )(.*) \(([A-Z, ]+)\)$/.exec(line);
    if (!match) continue;
    const depth = match[1]!.length / 4;
    stack.length = depth;
    const full = (stack[depth - 1] ?? "") + match[2]!;
    stack[depth] = full;
    for (const method of match[3]!.split(", ")) routes.push({ method, path: full });
  }
  return routes;
}

const ODD_STRINGS = [
  "",
  " ",
  "\u0000",
  "\ud800",
  "\udfff\ud800",
  "\u202e\u2066evil",
  "\u200b\u200d\ufeff",
  "👩‍👩‍👧‍👦".repeat(50),
  "e\u0301".repeat(200),
  "%00",
  "../../etc/passwd",
  "<script>alert(1)</script>",
  "' OR 1=1 --",
  "${{7*7}}",
  "__proto__",
  "constructor",
  "x".repeat(70_000),
  "a\r\nb",
  "ﷺ".repeat(1000),
];

const ODD_NUMBERS = [0, -0, -1, 1.5, 2 ** 31, 2 ** 32, 2 ** 53, -(2 ** 53), 1e308, -1e308, 5e-324, Number.MAX_SAFE_INTEGER + 2];

class Fuzzer {
  constructor(private readonly random: () => number) {}

  int(n: number): number {
    return Math.floor(this.random() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  chance(p: number): boolean {
    return this.random() < p;
  }

  value(depth = 0): unknown {
    const kinds = depth > 4 ? 5 : 7;
    switch (this.int(kinds)) {
      case 0:
        return null;
      case 1:
        return this.chance(0.5);
      case 2:
        return this.pick(ODD_NUMBERS);
      case 3:
        return this.pick(ODD_STRINGS);
      case 4:
        return this.int(1000).toString(36);
      case 5:
        return Array.from({ length: this.int(5) }, () => this.value(depth + 1));
      default:
        return Object.fromEntries(Array.from({ length: this.int(5) }, () => [this.pick([...ODD_STRINGS.slice(0, 16), "model", "messages", "content", "role"]), this.value(depth + 1)]));
    }
  }

  /** A valid body with one field replaced, removed or deepened. */
  mutate(valid: Record<string, unknown>): unknown {
    const copy: Record<string, unknown> = structuredClone(valid);
    const keys = Object.keys(copy);
    const key = keys.length > 0 && this.chance(0.8) ? this.pick(keys) : this.pick(["__proto__", "constructor", "extra", ""]);
    const choice = this.int(4);
    if (choice === 0) delete copy[key];
    else if (choice === 1) copy[key] = this.value();
    else if (choice === 2) copy[key] = nested(this.int(3) === 0 ? 100_000 : 1 + this.int(200));
    else if (key === "messages") copy.messages = [{ role: this.pick(["user", "system", "assistant", "tool", "x", 5]), content: this.value() }];
    else copy[key] = [copy[key], copy[key]];
    return copy;
  }
}

/**
 * `depth` levels of `[[[…]]]` (a 100,000-deep one is 200 KB, within the body limit), as a marker
 * that `serialize` expands: JSON.stringify itself would overflow the stack on it.
 */
function nested(depth: number): string {
  return `@@DEEP:${depth}@@`;
}

function serialize(value: unknown): string {
  return JSON.stringify(value).replace(/"@@DEEP:(\d+)@@"/g, (_, depth: string) => "[".repeat(Number(depth)) + "]".repeat(Number(depth)));
}

interface Credentials {
  session: AppClient;
  apiKey: string;
  ids: Record<string, string>;
}

const ADMIN = "fuzzroot";

async function signIn(): Promise<AppClient> {
  const client = new AppClient(service.url);
  const response = await client.post("/api/auth/login", { login: ADMIN, password: TEST_PASSWORD });
  if (response.status !== 200) throw new Error(`login failed: ${response.status} ${response.text}`);
  return client;
}

/** Valid ids for the `:id` parameters, so some requests get past the lookups. */
async function credentials(session: AppClient): Promise<Credentials> {
  const key = await session.post("/api/keys", { name: `fuzz-${Date.now()}` });
  assert.equal(key.status, 201, key.text);
  const conversation = await session.post("/api/conversations", { model: "scripted" });
  assert.equal(conversation.status, 201, conversation.text);
  const victim = await session.post("/api/admin/users", { username: `victim${Date.now()}`, password: TEST_PASSWORD });
  assert.equal(victim.status, 201, victim.text);
  const code = await session.post("/api/admin/access-codes", { max_uses: 2 });
  return {
    session,
    apiKey: key.body.key,
    ids: {
      keys: key.body.id,
      conversations: conversation.body.id,
      users: victim.body.id ?? victim.body.user?.id,
      "access-codes": code.body?.id ?? code.body?.code?.id ?? "x",
      models: "scripted",
      model: "scripted",
      plans: "default",
      meter: "search",
    },
  };
}

const VALID_BODIES: Record<string, Record<string, unknown>> = {
  "/v1/chat/completions": { model: "scripted", messages: [{ role: "user", content: "hi" }], max_tokens: 4 },
  "/api/auth/signup": { username: "someone", password: TEST_PASSWORD },
  "/api/auth/login": { login: ADMIN, password: "wrong password, surely" },
  "/api/keys": { name: "k" },
  "/api/keys/:id": { name: "renamed" },
  "/api/conversations": { model: "scripted" },
  "/api/conversations/:id": { title: "t" },
  "/api/conversations/:id/messages": { content: "hi", model: "scripted", thinking: false },
  "/api/admin/users": { username: "another", password: TEST_PASSWORD },
  "/api/admin/users/:id": { role: "user" },
  "/api/admin/signup-mode": { mode: "open" },
  "/api/admin/attack-mode": { enabled: false },
  "/api/admin/access-codes": { max_uses: 1 },
  "/api/admin/billing/users/:id/plan": { plan_id: "default" },
  "/api/admin/billing/users/:id/credits": { amount_micros: 5, note: "x" },
  "/api/admin/billing/prices/:model": { cache_hit_micros: 1, cache_miss_micros: 1, output_micros: 1 },
  "/api/admin/billing/plans/:id": { name: "Default" },
  "/api/admin/billing/feature-prices/:meter": { price_micros: 1 },
};

const PATH_PARAM_TRICKS = ["..", "%2e%2e", "%2F", "%", "%zz", "%00", "%C0%AE", "-1", "0", "99999999999999999999999", "a".repeat(2000), "%F0%9F%92%A9", "null", "undefined", "1e309", "%5Bobject%20Object%5D", "%20", "%u0041"];

const CONTENT_TYPES = [
  "application/json",
  "application/json; charset=utf-8",
  "application/json; charset=utf-16",
  "text/plain",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x",
  "application/octet-stream",
  "application/json, text/plain",
  "",
  "\u00ff/\u00fe", // header values are Latin-1: the most exotic an HTTP client can send
];

interface Attempt {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

function makeAttempt(f: Fuzzer, route: Route, creds: Credentials): Attempt {
  const method = f.chance(0.9) ? route.method : f.pick(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND"]);
  // Path parameters: a valid id for the resource, or a trick.
  let path = route.path.replace(/:(\w+)/g, (_, name: string) => {
    const resource = route.path.split("/").filter((part) => part && !part.startsWith(":")).at(-1) ?? name;
    const valid = name === "model" || name === "meter" ? creds.ids[name] : creds.ids[resource];
    return f.chance(0.5) && valid ? encodeURIComponent(valid) : f.pick(PATH_PARAM_TRICKS);
  });
  if (f.chance(0.1)) path = f.pick([path + "/", path + "//", "/" + path, path + "/..", path.toUpperCase(), path + "%", path + ";x", path + "#frag"]);
  if (f.chance(0.25)) {
    path += "?" + f.pick(["limit=-1", "limit=1e9", "limit=abc", "limit=1&limit=2", "q=" + "%ff".repeat(50), "cursor=" + "x".repeat(500), "__proto__[x]=1", "from=2024-13-45&to=yesterday", "%", "a[b][c][d]=1", "days=99999"]);
  }

  const headers: Record<string, string> = {};
  const session = () => {
    headers.cookie = [...creds.session.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
    if (f.chance(0.9)) headers["x-sputnik-csrf"] = creds.session.cookies.get("sputnik_csrf") ?? "";
  };
  const key = () => (headers.authorization = `Bearer ${creds.apiKey}`);
  switch (f.int(7)) {
    case 0:
      break; // anonymous
    case 1:
    case 2:
    case 3:
    case 4:
      // The credential the route takes (keys work on /v1 only), so most requests get past auth.
      if (route.path.startsWith("/v1/")) key();
      else session();
      break;
    case 5:
      if (route.path.startsWith("/v1/")) session();
      else key();
      break;
    default:
      headers.authorization = f.pick(["Bearer", "Bearer ", "Basic Zm9vOmJhcg==", `Bearer ${"sk-" + "x".repeat(5000)}`, "Bearer sk-\u00ff\u00fe", `Bearer ${creds.apiKey}x`, "bearer " + creds.apiKey]);
      if (f.chance(0.5)) headers.cookie = f.pick(["sputnik_session=" + "x".repeat(3000), "sputnik_session=; sputnik_session=a", "=;;;=", "sputnik_csrf=%"]);
  }
  if (f.chance(0.15)) headers.origin = f.pick(["null", "http://evil.example", "http://127.0.0.1:1", "file://", "http://[::1]"]);
  if (f.chance(0.1)) headers["x-forwarded-for"] = f.pick(["1.2.3.4", "garbage", "::ffff:1.2.3.4, 5.6.7.8", ",".repeat(100)]);
  if (f.chance(0.1)) headers["accept-encoding"] = f.pick(["gzip;q=2", "br, *;q=0", "identity;q=0", "x".repeat(1000)]);
  if (f.chance(0.1)) headers.accept = f.pick(["text/event-stream", "*/*;q=abc", "application/json;;;"]);
  if (f.chance(0.05)) headers.range = "bytes=0-1,5-2";

  if (method === "GET" || method === "HEAD" || method === "OPTIONS") {
    if (f.chance(0.1)) {
      headers["content-type"] = "application/json";
      return { method, path, headers, body: "{}" };
    }
    return { method, path, headers };
  }

  let body: string;
  const valid = VALID_BODIES[route.path];
  switch (f.int(7)) {
    case 0:
    case 1:
      body = serialize(valid ? f.mutate(valid) : f.value());
      break;
    case 2:
      body = JSON.stringify(f.value());
      break;
    case 3:
      body = f.pick(["", "{", '{"a":', "[1,2,", "{'a':1}", "NaN", "{\"a\":1}garbage", "\ufeff{}", '{"a":1,"a":2}', "1".repeat(400), '{"model": 1e999}', "{\"__proto__\": {\"admin\": true}}", "\"\\ud800\""]);
      break;
    case 4:
      body = serialize(nested(f.chance(0.5) ? 100_000 : 1000));
      break;
    case 5:
      body = JSON.stringify({ ...(valid ?? {}), [f.pick(["messages", "content", "model", "name", "username"])]: f.pick(ODD_STRINGS) });
      break;
    default:
      body = JSON.stringify(valid ?? {});
  }
  if (route.path === "/v1/chat/completions" && f.chance(0.3)) {
    // Keep a valid request's cost small if the mutation leaves it valid.
    try {
      const parsed = JSON.parse(body) as Record<string, unknown>;
      if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) body = JSON.stringify({ ...parsed, max_tokens: 4, stream: f.chance(0.5) });
    } catch {
      // not JSON: sent as is
    }
  }
  const contentType = f.chance(0.8) ? "application/json" : f.pick(CONTENT_TYPES);
  if (contentType) headers["content-type"] = contentType;
  return { method, path, headers, body };
}

/** Raw bytes no HTTP client would send; Node's parser or Fastify must answer 4xx or close. */
const RAW_REQUESTS = [
  "GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
  "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
  "POST /api/auth/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
  "GET /\u0000 HTTP/1.1\r\nHost: x\r\n\r\n",
  "GET /health HTTP/1.1\r\nHost: x\r\nX-Bad: a\u0000b\r\n\r\n",
  "GET /health HTTP/9.9\r\nHost: x\r\n\r\n",
  "GET http://evil.example/health HTTP/1.1\r\nHost: x\r\n\r\n",
  "GET * HTTP/1.1\r\nHost: x\r\n\r\n",
  `GET /health HTTP/1.1\r\nHost: x\r\nX-Long: ${"a".repeat(20_000)}\r\n\r\n`,
  "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n{\"a\":",
];

/** The status line of a raw exchange (0 when the server just closed). */
function rawExchange(url: string, bytes: string): Promise<number> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect({ host: hostname, port: Number(port) });
    let received = "";
    const done = () => {
      socket.destroy();
      resolve(Number(/^HTTP\/1\.[01] (\d{3})/.exec(received)?.[1] ?? 0));
    };
    socket.setTimeout(2000, done);
    socket.on("data", (chunk) => {
      received += chunk.toString("latin1");
      if (/\r\n\r\n/.test(received)) done();
    });
    socket.on("error", done);
    socket.on("close", done);
    socket.write(bytes, "latin1");
    // A request cut short (Content-Length beyond the bytes) is left to the server's timeout; stop waiting.
  });
}

function describe(attempt: Attempt, response: AppResponse | Error): string {
  const outcome = response instanceof Error ? `threw ${response.message}` : `${response.status} ${response.text.slice(0, 300)}`;
  const headers = Object.fromEntries(Object.entries(attempt.headers).map(([k, v]) => [k, v.length > 80 ? `${v.slice(0, 80)}…(${v.length})` : v]));
  const body = attempt.body === undefined ? "" : ` body=${attempt.body.length > 200 ? `${attempt.body.slice(0, 200)}…(${attempt.body.length})` : attempt.body}`;
  return `${attempt.method} ${attempt.path.slice(0, 200)} headers=${JSON.stringify(headers)}${body} → ${outcome}`;
}

test(`no malformed request gets a 5xx, on any route (seed ${SEED})`, async () => {
  await new AppClient(service.url).post("/api/auth/signup", { username: ADMIN, password: TEST_PASSWORD });
  let creds = await credentials(await signIn());
  const routes = routesOf(service);
  assert.ok(routes.length >= 40, `routes found: ${routes.map((r) => `${r.method} ${r.path}`).join(", ")}`);
  assert.ok(routes.some((r) => r.method === "POST" && r.path === "/v1/chat/completions"));
  assert.ok(routes.some((r) => r.method === "DELETE" && r.path === "/api/keys/:id"));

  const f = new Fuzzer(mulberry32(SEED));
  const failures: string[] = [];
  const statuses = new Map<number, number>();
  const deadline = performance.now() + TIME_BUDGET_MS;
  let sent = 0;
  let refreshing: Promise<void> | null = null;

  // Routes are taken in turn (every one is hit early), the rest of each request is random.
  const next = (): Attempt | null => {
    if (sent >= MAX_REQUESTS || performance.now() > deadline) return null;
    const route = routes[sent % routes.length]!;
    sent++;
    return makeAttempt(f, route, creds);
  };
  const worker = async () => {
    for (let attempt = next(); attempt; attempt = next()) {
      let response: AppResponse | Error;
      try {
        response = await rawRequest(service.url, attempt.method, attempt.path, attempt.headers, attempt.body);
      } catch (error) {
        response = error as Error;
      }
      const status = response instanceof Error ? -1 : response.status;
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      // A thrown request is a reset connection; only a reply of 5xx is a server fault, but a reset
      // on a well-formed request is recorded too.
      if (status >= 500 || (status === -1 && !/ECONNRESET|socket hang up/.test((response as Error).message))) failures.push(describe(attempt, response));
      // Fuzzed requests may log the session out, revoke the key or disable the admin: sign in again.
      if (sent % 100 === 0) {
        refreshing ??= (async () => {
          const me = await creds.session.get("/api/auth/me");
          const keyOk = await rawRequest(service.url, "GET", "/v1/models", { authorization: `Bearer ${creds.apiKey}` });
          if (me.status !== 200 || keyOk.status !== 200) {
            await creds.session.post("/api/admin/attack-mode", { enabled: false }).catch(() => undefined);
            creds = await credentials(await signIn()).catch(() => creds);
          }
        })().finally(() => (refreshing = null));
        await refreshing;
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));

  for (const bytes of RAW_REQUESTS) {
    const status = await rawExchange(service.url, bytes);
    statuses.set(status, (statuses.get(status) ?? 0) + 1);
    if (status >= 500) failures.push(`raw ${JSON.stringify(bytes.slice(0, 120))} → ${status}`);
  }

  const summary = [...statuses].sort(([a], [b]) => a - b).map(([status, count]) => `${status}×${count}`).join(" ");
  process.stderr.write(`fuzz seed ${SEED}: ${sent} requests over ${routes.length} routes: ${summary}\n`);
  assert.ok(sent >= routes.length * 3, `only ${sent} requests were sent in the time budget`);
  assert.deepEqual(failures.slice(0, 20), [], `${failures.length} requests failed (replay with SPUTNIK_FUZZ_SEED=${SEED})`);

  // The server is fine afterwards: healthy, and still answering a real completion.
  const health = await rawRequest(service.url, "GET", "/health");
  assert.equal(health.status, 200, health.text);
  assert.ok(health.ms < 1000, `/health took ${health.ms.toFixed(0)} ms`);
  const completion = await rawRequest(service.url, "POST", "/v1/chat/completions", { "content-type": "application/json", authorization: `Bearer ${creds.apiKey}` }, JSON.stringify(VALID_BODIES["/v1/chat/completions"]));
  assert.equal(completion.status, 200, completion.text);
});
