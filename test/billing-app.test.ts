/**
 * The billing app API through the real service with real accounts (sign-up, session cookies,
 * CSRF, access codes, API keys): admins set prices, plans, users' plans and credit; users see
 * their own balance, usage, daily chart data and CSV — nobody else's.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { startTestService, type TestService } from "./support/service.ts";

let service: TestService;

before(async () => {
  service = await startTestService({ models: ["scripted"] });
});
after(() => service.stop());

/** A browser: keeps cookies, echoes the CSRF cookie in the header on state-changing requests. */
class Browser {
  private readonly cookies = new Map<string, string>();

  async call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
    const csrf = this.cookies.get("sputnik_csrf");
    const response = await fetch(`${service.url}${path}`, {
      method,
      headers: {
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
        ...(this.cookies.size ? { cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ") } : {}),
        ...(method !== "GET" && csrf ? { "x-sputnik-csrf": csrf } : {}),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(";");
      const eq = pair!.indexOf("=");
      this.cookies.set(pair!.slice(0, eq).trim(), pair!.slice(eq + 1).trim());
    }
    const text = await response.text();
    const type = response.headers.get("content-type") ?? "";
    return { status: response.status, headers: response.headers, text, body: type.includes("json") && text ? JSON.parse(text) : null };
  }

  async signUp(username: string, accessCode?: string) {
    await this.call("GET", "/api/auth/state");
    const result = await this.call("POST", "/api/auth/signup", { username, password: "correct horse battery staple", ...(accessCode ? { access_code: accessCode } : {}) });
    assert.equal(result.status, 201, result.text);
    return result.body.user as { id: string; role: string };
  }
}

const admin = new Browser();
const alice = new Browser();
const bob = new Browser();
let aliceId: string;
let aliceKey: string;

test("admins set prices (with an off-peak window) and plans; bad input is refused; the audit log keeps it", async () => {
  const me = await admin.signUp("root");
  assert.equal(me.role, "admin", "the first account is the admin");
  // Bob signs up without a code later: open sign-up (the default makes new accounts wait for approval).
  assert.equal((await admin.call("PUT", "/api/admin/signup-mode", { mode: "open" })).status, 200);

  const set = await admin.call("PUT", "/api/admin/billing/prices/scripted", {
    input_cache_hit: "0.14",
    input_cache_miss: "0.55",
    output: "2.19",
    windows: [{ start: "16:30", end: "00:30", discount_percent: 75 }],
  });
  assert.equal(set.status, 200, set.text);
  assert.deepEqual(set.body, {
    model: "scripted",
    input_cache_hit: "0.14",
    input_cache_miss: "0.55",
    output: "2.19",
    input_cache_hit_micros: 140_000,
    input_cache_miss_micros: 550_000,
    output_micros: 2_190_000,
    windows: [
      {
        start: "16:30",
        end: "00:30",
        input_cache_hit: "0.035",
        input_cache_miss: "0.1375",
        output: "0.5475",
        input_cache_hit_micros: 35_000,
        input_cache_miss_micros: 137_500,
        output_micros: 547_500,
      },
    ],
  });
  const prices = await admin.call("GET", "/api/admin/billing/prices");
  assert.deepEqual(prices.body.prices.map((p: { model: string }) => p.model), ["scripted"]);
  assert.equal(prices.body.time_zone, "UTC");

  for (const bad of [
    { input_cache_hit: "0.14", input_cache_miss: "0.55", output: "-1" },
    { input_cache_hit: "0.0000001", input_cache_miss: "0.55", output: "2.19" },
    { input_cache_hit: 0.14, input_cache_miss: "0.55", output: "2.19" },
    { input_cache_hit: "0.14", input_cache_miss: "0.55", output: "2.19", windows: [{ start: "16:30", end: "00:30", discount_percent: 75 }, { start: "00:00", end: "01:00", discount_percent: 50 }] },
    { input_cache_hit: "0.14", input_cache_miss: "0.55", output: "2.19", windows: [{ start: "25:00", end: "01:00", discount_percent: 50 }] },
  ]) {
    const refused = await admin.call("PUT", "/api/admin/billing/prices/scripted", bad);
    assert.equal(refused.status, 400, JSON.stringify(bad));
  }

  const plan = await admin.call("PUT", "/api/admin/billing/plans/pro", {
    name: "Pro",
    billed: true,
    allowed_models: ["scripted"],
    daily_token_quota: 1_000_000,
    concurrency_weight: 3,
    features: ["search"],
  });
  assert.equal(plan.status, 200, plan.text);
  assert.equal(plan.body.concurrency_weight, 3);
  assert.equal((await admin.call("PUT", "/api/admin/billing/plans/Bad%20Id", { name: "x" })).status, 400);
  const plans = await admin.call("GET", "/api/admin/billing/plans");
  assert.deepEqual(plans.body.plans.map((p: { id: string }) => p.id), ["free", "pro"]);

  const audit = await admin.call("GET", "/api/admin/audit?action=billing.price.set");
  assert.equal(audit.status, 200, audit.text);
  assert.equal(audit.body.data.length, 1, "refused changes are not audited");

  // Feature prices: the configured search price (0 by default) until an admin sets one.
  const features = await admin.call("GET", "/api/admin/billing/feature-prices");
  assert.equal(features.status, 200, features.text);
  assert.deepEqual(features.body.prices.map((p: { meter: string; unit_price_micros: number; source: string }) => [p.meter, p.unit_price_micros, p.source]), [["search", 0, "default"]]);
  const search = await admin.call("PUT", "/api/admin/billing/feature-prices/search", { price: "0.005" });
  assert.equal(search.status, 200, search.text);
  assert.deepEqual([search.body.unit_price_micros, search.body.per, search.body.unit_price, search.body.source], [5_000, 1, "0.005", "stored"]);
  assert.equal((await admin.call("PUT", "/api/admin/billing/feature-prices/output_tokens", { price: "1" })).status, 400, "tokens are priced per model");
  assert.equal((await admin.call("PUT", "/api/admin/billing/feature-prices/Bad", { price: "1" })).status, 400);
  assert.equal((await admin.call("PUT", "/api/admin/billing/feature-prices/stored_bytes", { price: "0.01", per: 1_000_000 })).status, 200);
  assert.equal((await admin.call("DELETE", "/api/admin/billing/feature-prices/stored_bytes")).status, 204);
  assert.equal((await admin.call("DELETE", "/api/admin/billing/feature-prices/stored_bytes")).status, 404);
  const featureAudit = await admin.call("GET", "/api/admin/audit?action=billing.feature_price.set");
  assert.equal(featureAudit.body.data.length, 2);
});

test("an access code grants its plan and credit at sign-up; the user sees their balance and usage, nobody else's", async () => {
  const code = await admin.call("POST", "/api/admin/access-codes", { plan_id: "pro", credit_micros: 2_000_000 });
  assert.equal(code.status, 201, code.text);
  aliceId = (await alice.signUp("alice", code.body.code)).id;

  const summary = await alice.call("GET", "/api/billing/summary");
  assert.equal(summary.status, 200, summary.text);
  assert.equal(summary.body.plan.id, "pro");
  assert.equal(summary.body.balance.granted_micros, 2_000_000);
  assert.equal(summary.body.balance.total, "2.00");
  assert.equal(summary.body.quotas.daily.limit, 1_000_000);

  const key = await alice.call("POST", "/api/keys", { name: "billing test" });
  assert.equal(key.status, 201, key.text);
  aliceKey = key.body.key;
  const balance = await fetch(`${service.url}/v1/user/balance`, { headers: { authorization: `Bearer ${aliceKey}` } });
  assert.deepEqual(await balance.json(), {
    is_available: true,
    balance_infos: [{ currency: "USD", total_balance: "2.00", granted_balance: "2.00", topped_up_balance: "0.00" }],
  });

  const completion = await fetch(`${service.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${aliceKey}` },
    body: JSON.stringify({ model: "scripted", messages: [{ role: "user", content: "Bill me" }] }),
  });
  assert.equal(completion.status, 200);
  const usage = ((await completion.json()) as { usage: { completion_tokens: number } }).usage;

  const listed = await alice.call("GET", "/api/billing/usage");
  assert.equal(listed.status, 200, listed.text);
  assert.equal(listed.body.data.length, 1);
  const row = listed.body.data[0];
  assert.equal(row.status, "completed");
  assert.equal(row.reasoning_tokens + row.answer_tokens, usage.completion_tokens);
  assert.ok(row.charged_micros > 0);
  assert.equal(row.charged_micros, row.cost_micros);
  assert.equal(listed.body.next_cursor, null);
  // Its line items: tokens by kind at the frozen per-million prices, adding up to the cost.
  assert.deepEqual(
    row.items.map((i: { meter: string; quantity: number; per: number }) => [i.meter, i.quantity, i.per]),
    [
      ...(row.cache_hit_tokens > 0 ? [["input_cache_hit_tokens", row.cache_hit_tokens, 1_000_000]] : []),
      ["input_cache_miss_tokens", row.cache_miss_tokens, 1_000_000],
      ["output_tokens", row.reasoning_tokens + row.answer_tokens, 1_000_000],
    ],
  );
  assert.equal(row.items.reduce((sum: number, i: { amount_micros: number }) => sum + i.amount_micros, 0), row.cost_micros);
  const after = await alice.call("GET", "/api/billing/summary");
  assert.equal(after.body.balance.granted_micros, 2_000_000 - row.charged_micros);

  const csv = await alice.call("GET", "/api/billing/usage.csv");
  assert.equal(csv.status, 200);
  assert.match(csv.headers.get("content-type") ?? "", /^text\/csv/);
  const lines = csv.text.trim().split("\r\n");
  assert.equal(lines.length, 2);
  assert.match(lines[0]!, /^id,started_at,ended_at,status,model,/);
  assert.ok(lines[1]!.startsWith(`${row.id},`));
  assert.ok(lines[1]!.endsWith(`,${row.cost},${row.charged},0,0.00`), "cost, charged, then no searches and their cost");

  const daily = await alice.call("GET", `/api/billing/usage/daily?from=${new Date().toISOString().slice(0, 10)}`);
  assert.equal(daily.status, 200, daily.text);
  assert.equal(daily.body.days.length, 1);
  assert.equal(daily.body.days[0].model, "scripted");
  assert.equal(daily.body.days[0].charged_micros, row.charged_micros);

  // A web chat reply is billed too: its stored message, ledger row and balance change commit together.
  const conv = await alice.call("POST", "/api/conversations", { model: "scripted" });
  const sent = await alice.call("POST", `/api/conversations/${conv.body.id}/messages`, { content: "Bill my chat", parent_id: null, model: "scripted" });
  assert.equal(sent.status, 200, sent.text);
  const done = sent.text
    .split("\n")
    .filter((line) => line.startsWith("data: "))
    .map((line) => JSON.parse(line.slice(6)))
    .find((event) => event.type === "done");
  assert.ok(done, sent.text);
  const chatRows = (await alice.call("GET", "/api/billing/usage")).body.data;
  assert.equal(chatRows.length, 2, "exactly one more ledger row");
  const chatRow = chatRows[0];
  assert.equal(chatRow.status, "completed");
  assert.equal(chatRow.reasoning_tokens + chatRow.answer_tokens, done.message.completion_tokens, "ledger and stored message agree");
  assert.ok(chatRow.charged_micros > 0);
  const afterChat = await alice.call("GET", "/api/billing/summary");
  assert.equal(afterChat.body.balance.granted_micros, 2_000_000 - row.charged_micros - chatRow.charged_micros);

  await bob.signUp("bob");
  const bobs = await bob.call("GET", "/api/billing/usage");
  assert.deepEqual(bobs.body.data, [], "another user's usage is not listed");
  assert.equal((await bob.call("GET", "/api/billing/usage.csv")).text.trim().split("\r\n").length, 1);
  assert.equal((await bob.call("GET", "/api/admin/billing/overview")).status, 403);
  assert.equal((await bob.call("PUT", "/api/admin/billing/prices/scripted", { input_cache_hit: "0", input_cache_miss: "0", output: "0" })).status, 403);
  assert.equal((await bob.call("POST", `/api/admin/billing/users/${aliceId}/credits`, { amount: "100.00" })).status, 403);
  assert.equal((await bob.call("PUT", "/api/admin/billing/feature-prices/search", { price: "0" })).status, 403);
  // The app API takes sessions only; an API key there is refused.
  assert.equal((await fetch(`${service.url}/api/billing/usage`, { headers: { authorization: `Bearer ${aliceKey}` } })).status, 401);
});

test("admins change a user's plan, add credit, and see spend per user", async () => {
  assert.equal((await admin.call("PUT", `/api/admin/billing/users/${aliceId}/plan`, { plan_id: "nope" })).status, 400);
  assert.equal((await admin.call("PUT", "/api/admin/billing/users/no-such-user/plan", { plan_id: "free" })).status, 404);
  const credited = await admin.call("POST", `/api/admin/billing/users/${aliceId}/credits`, { amount: "1.50", kind: "topped_up", note: "invoice 7" });
  assert.equal(credited.status, 201, credited.text);
  assert.equal(credited.body.balance.topped_up_micros, 1_500_000);
  assert.equal((await admin.call("POST", `/api/admin/billing/users/${aliceId}/credits`, { amount: "0" })).status, 400);

  const details = await admin.call("GET", `/api/admin/billing/users/${aliceId}`);
  assert.equal(details.status, 200, details.text);
  assert.deepEqual(
    details.body.credits.map((c: { source: string; amount: string; kind: string }) => [c.source, c.kind, c.amount]),
    [
      ["admin", "topped_up", "1.50"],
      ["access_code", "granted", "2.00"],
    ],
  );

  const overview = await admin.call("GET", "/api/admin/billing/overview");
  assert.equal(overview.status, 200, overview.text);
  const aliceTotals = overview.body.users.find((u: { user_id: string }) => u.user_id === aliceId);
  assert.equal(aliceTotals.username, "alice");
  assert.equal(aliceTotals.requests, 2, "one API request and one web chat reply");
  assert.ok(aliceTotals.charged_micros > 0);

  // Moving alice to the unbilled free plan: her next request is metered but not charged.
  const moved = await admin.call("PUT", `/api/admin/billing/users/${aliceId}/plan`, { plan_id: "free" });
  assert.equal(moved.status, 200, moved.text);
  const before = (await alice.call("GET", "/api/billing/summary")).body.balance.total_micros;
  const completion = await fetch(`${service.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${aliceKey}` },
    body: JSON.stringify({ model: "scripted", messages: [{ role: "user", content: "Free now?" }] }),
  });
  assert.equal(completion.status, 200);
  await completion.json();
  const rows = (await alice.call("GET", "/api/billing/usage")).body.data;
  assert.equal(rows[0].plan_id, "free");
  assert.equal(rows[0].charged_micros, 0);
  assert.ok(rows[0].cost_micros > 0);
  assert.equal((await alice.call("GET", "/api/billing/summary")).body.balance.total_micros, before);
  const audit = await admin.call("GET", `/api/admin/audit?target_id=${aliceId}`);
  assert.ok(audit.body.data.some((e: { action: string }) => e.action === "user.plan"));
  assert.ok(audit.body.data.some((e: { action: string }) => e.action === "billing.credit.add"));
});

test("every user reads the price list (window in force now) and their own credits; the spending chart across users is for admins", async () => {
  const list = await bob.call("GET", "/api/billing/prices");
  assert.equal(list.status, 200, list.text);
  const scripted = list.body.prices.find((p: { model: string }) => p.model === "scripted");
  assert.equal(scripted.output, "2.19");
  assert.deepEqual(
    scripted.windows.map((w: { start: string; end: string }) => `${w.start}-${w.end}`),
    ["16:30-00:30"],
  );
  assert.ok(scripted.current_window === null || scripted.current_window === "16:30-00:30");
  for (const f of list.body.feature_prices) assert.deepEqual(Object.keys(f).sort(), ["meter", "per", "unit_price", "unit_price_micros"], "no admin details");

  const credits = await alice.call("GET", "/api/billing/credits");
  assert.equal(credits.status, 200, credits.text);
  assert.ok(credits.body.data.length > 0, "alice's code credit and the admin's grant");
  assert.equal((await bob.call("GET", "/api/billing/credits")).body.data.length, 0, "bob sees only his own (none)");

  assert.equal((await bob.call("GET", "/api/admin/billing/usage/daily")).status, 403);
  const daily = await admin.call("GET", `/api/admin/billing/usage/daily?user_id=${aliceId}`);
  assert.equal(daily.status, 200, daily.text);
  assert.equal(daily.body.days.reduce((n: number, d: { requests: number }) => n + d.requests, 0), 3, "alice's three requests");
  assert.equal((await new Browser().call("GET", "/api/billing/prices")).status, 401);
});
