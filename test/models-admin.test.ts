/**
 * Admin → Models through its API, on one real service: an admin pulls a generated model from a
 * local "Hugging Face" (test/support/hubServer.ts) — progress observed mid-download, a second pull
 * of the same source refused, cancel, resume — loads it without a restart (it answers through /v1
 * and is in /v1/models and the app's model list at once), is refused a load that does not fit the
 * memory budget beside the loaded models, cannot unload a model while it answers, unloads and
 * deletes. Non-admins get nothing.
 *
 * The memory budget is sized from llama.cpp's own estimates (the same memoryCheck.ts the service
 * uses): room for the model served at start and one pulled model, not two.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, test } from "node:test";
import { LocalEngine } from "../src/engines/local/localEngine.ts";
import { sharedLlama } from "../src/engines/local/llama.ts";
import { memoryEstimator } from "../src/engines/local/memoryCheck.ts";
import { ensureModel, MODEL_SCRIPTS } from "../src/gguf/catalog.ts";
import { TEST_PASSWORD_HASHING } from "./support/accountsServer.ts";
import { AppClient } from "./support/appClient.ts";
import { FakeHub } from "./support/hubServer.ts";
import { startTestService, type TestService } from "./support/service.ts";

const PULLED = "scripted-unicode-Q8_0";
const SOURCE = "hf:test/Unicode-GGUF:Q8_0";
const STALL_AT = 100_000;
/** Layout of startTestService (parallel 2, 2048-token contexts): what the memory check estimates. */
const LAYOUT = { contextSize: 2048, sequences: 2 };

let hub: FakeHub;
let service: TestService;
let admin: AppClient;
let fileBytes: Buffer;
let apiKey: string;

before(async () => {
  const pulledFile = await ensureModel("scripted-unicode");
  fileBytes = await readFile(pulledFile);
  hub = new FakeHub();
  await hub.start();
  hub.repos.set("test/Unicode-GGUF", [`${PULLED}.gguf`, "README.md"]);
  hub.files.set(`/test/Unicode-GGUF/resolve/main/${PULLED}.gguf`, fileBytes);
  hub.files.set("/files/second.gguf", fileBytes);

  const llama = await sharedLlama();
  const need = async (path: string) => {
    const e = (await memoryEstimator(llama, path))(LAYOUT);
    return e.modelBytes + e.contextBytes;
  };
  const budget = (await need(await ensureModel("scripted"))) + (await need(pulledFile)) + 1024 * 1024;

  service = await startTestService({
    models: ["scripted"],
    config: {
      auth: { passwordHashing: TEST_PASSWORD_HASHING },
      hfEndpoint: hub.baseUrl,
      // The hub is on 127.0.0.1, over plain http: both must be allowed on purpose.
      allowPrivateNetwork: true,
      allowHttpPulls: true,
      localEngine: { memoryBudgetBytes: budget },
    },
  });
  admin = new AppClient(service.url);
  assert.equal((await admin.post("/api/auth/signup", { username: "models-admin", password: "admin-password-1" })).status, 201);
  const key = await admin.post("/api/keys", { name: "models test" });
  assert.equal(key.status, 201);
  apiKey = key.body.key;
});
after(async () => {
  await service?.stop();
  await hub?.close();
});

/** Polls a pull (the API the Models tab polls) until `done` holds for it. */
async function pollPull(id: string, done: (job: any) => boolean): Promise<any> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const response = await admin.get(`/api/admin/models/pulls/${id}`);
    assert.equal(response.status, 200);
    if (done(response.body)) return response.body;
    if (Date.now() > deadline) assert.fail(`pull ${id} never got there: ${response.text}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function v1(path: string, body?: object) {
  return fetch(`${service.url}${path}`, {
    method: body ? "POST" : "GET",
    headers: { authorization: `Bearer ${apiKey}`, ...(body ? { "content-type": "application/json" } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
}

async function v1Models(): Promise<string[]> {
  const response = await v1("/v1/models");
  assert.equal(response.status, 200);
  return ((await response.json()) as { data: Array<{ id: string }> }).data.map((m) => m.id).sort();
}

test("only admins manage models", async () => {
  assert.equal((await new AppClient(service.url).get("/api/admin/models")).status, 401);
  const user = new AppClient(service.url);
  assert.equal((await user.post("/api/auth/signup", { username: "plain-user", password: "user-password-1" })).status, 201);
  for (const [method, path] of [
    ["GET", "/api/admin/models"],
    ["POST", "/api/admin/models/pulls"],
    ["POST", `/api/admin/models/files/${PULLED}/load`],
    ["POST", "/api/admin/models/loaded/scripted/unload"],
    ["DELETE", `/api/admin/models/files/${PULLED}`],
  ] as const) {
    const refused = await user.request(method, path, method === "POST" ? { source: SOURCE } : undefined);
    assert.equal(refused.status, 403, `${method} ${path}`);
    assert.equal(refused.body.error.code, "forbidden");
  }
  // Nothing was started on the user's behalf, and the model they tried to unload still serves.
  assert.deepEqual((await admin.get("/api/admin/models")).body.pulls, []);
  assert.deepEqual(await v1Models(), ["scripted"]);
});

test("bad requests are refused in the API's shape", async () => {
  const noSource = await admin.post("/api/admin/models/pulls", {});
  assert.equal(noSource.status, 400);
  assert.equal(noSource.body.error.param, "source");
  const badSource = await admin.post("/api/admin/models/pulls", { source: "ftp://example.com/x.gguf" });
  assert.equal(badSource.status, 400);
  assert.match(badSource.body.error.message, /Unsupported source/);
  const badName = await admin.post("/api/admin/models/pulls", { source: SOURCE, name: "../escape" });
  assert.equal(badName.status, 400);
  assert.equal(badName.body.error.param, "name");
  assert.equal((await admin.get("/api/admin/models/pulls/not-an-id")).status, 404);
  const missing = await admin.post("/api/admin/models/files/no-such-model/load");
  assert.equal(missing.status, 404);
  assert.equal(missing.body.error.code, "model_file_not_found");
});

test("a pull shows its progress live, runs once per source, cancels and resumes", { timeout: 60_000 }, async () => {
  hub.stallNextAt = STALL_AT;
  const started = await admin.post("/api/admin/models/pulls", { source: SOURCE });
  assert.equal(started.status, 202, started.text);
  assert.equal(started.body.state, "downloading");

  // The hub sent STALL_AT bytes and holds the rest: the progress says so.
  const midway = await pollPull(started.body.id, (job) => job.downloaded_bytes >= STALL_AT);
  assert.equal(midway.state, "downloading");
  assert.equal(midway.downloaded_bytes, STALL_AT);
  assert.equal(midway.total_bytes, fileBytes.length);
  assert.equal(midway.percent, Math.floor((STALL_AT / fileBytes.length) * 100));
  assert.ok(midway.percent > 0 && midway.percent < 100);

  const again = await admin.post("/api/admin/models/pulls", { source: SOURCE.toUpperCase().replace("HF:", "hf:") });
  assert.equal(again.status, 409);
  assert.equal(again.body.error.code, "pull_in_progress");

  const cancelled = await admin.post(`/api/admin/models/pulls/${started.body.id}/cancel`);
  assert.equal(cancelled.status, 200);
  assert.equal(cancelled.body.state, "cancelled");
  assert.equal((await admin.get("/api/admin/models")).body.files.length, 0, "a cancelled pull leaves no model file");

  // Pulled again: it resumes where the cancelled one stopped, and ends at 100%.
  const resumed = await admin.post("/api/admin/models/pulls", { source: SOURCE });
  assert.equal(resumed.status, 202);
  const done = await pollPull(resumed.body.id, (job) => job.state !== "downloading" && job.state !== "verifying");
  assert.equal(done.state, "done", done.error);
  assert.equal(done.name, PULLED);
  assert.equal(done.percent, 100);
  assert.equal(done.downloaded_bytes, fileBytes.length);
  assert.equal(done.resumed_from_bytes, STALL_AT);
  assert.equal(done.eta_seconds, 0);
  const ranges = hub.requestsFor(`/test/Unicode-GGUF/resolve/main/${PULLED}.gguf`).map((r) => r.headers.range ?? null);
  assert.deepEqual(ranges, [null, `bytes=${STALL_AT}-`]);

  const overview = (await admin.get("/api/admin/models")).body;
  assert.deepEqual(
    overview.files.map((f: any) => [f.name, f.size_bytes, f.loaded]),
    [[PULLED, fileBytes.length, false]],
  );
  assert.deepEqual(overview.pulls.map((p: any) => p.state), ["done", "cancelled"]);
  const audit = await admin.get("/api/admin/audit?action=model.pull");
  assert.equal(audit.body.data.length, 2);
  assert.equal((await admin.get("/api/admin/audit?action=model.pull_cancel")).body.data.length, 1);
});

test("a pulled model loads without a restart, answers, and is refused room it does not have", { timeout: 60_000 }, async () => {
  assert.deepEqual(await v1Models(), ["scripted"]);
  const loaded = await admin.post(`/api/admin/models/files/${PULLED}/load`);
  assert.equal(loaded.status, 200, loaded.text);
  assert.equal(loaded.body.id, PULLED);
  assert.equal(loaded.body.file, PULLED);
  assert.ok(loaded.body.memory_bytes > 0);

  // At once: /v1/models, the app's picker list (context length, reasoning), and an answer.
  assert.deepEqual(await v1Models(), ["scripted", PULLED].sort());
  const picker = (await admin.get("/api/models")).body.data.find((m: any) => m.id === PULLED);
  assert.deepEqual([picker.reasoning, picker.context_length, picker.note], [true, loaded.body.context_length, undefined]);
  const answer = await v1("/v1/chat/completions", { model: PULLED, messages: [{ role: "user", content: "Hello" }] });
  assert.equal(answer.status, 200);
  assert.equal(((await answer.json()) as any).choices[0].message.content, MODEL_SCRIPTS["scripted-unicode"]!.answer);
  const again = await admin.post(`/api/admin/models/files/${PULLED}/load`);
  assert.equal(again.status, 409);
  assert.equal(again.body.error.code, "model_already_loaded");

  // A second copy, from a plain URL: the budget holds the start model and one pulled model only.
  const second = await admin.post("/api/admin/models/pulls", { source: `${hub.baseUrl}/files/second.gguf` });
  assert.equal(second.status, 202);
  assert.equal((await pollPull(second.body.id, (job) => job.state === "done" || job.state === "failed")).state, "done");
  const refused = await admin.post("/api/admin/models/files/second/load");
  assert.equal(refused.status, 409);
  assert.equal(refused.body.error.code, "insufficient_memory");
  assert.match(refused.body.error.message, /^Model second would need about [\d,]+ MiB .* but what is left of the configured memory budget \([\d,]+ MiB\) beside the models already loaded \([\d,]+ MiB\) is [\d,]+ MiB\./);
  assert.match(refused.body.error.message, /Unload another model first/);
  assert.deepEqual(await v1Models(), ["scripted", PULLED].sort(), "a refused load serves nothing");

  // While an answer holds one of its sequences, the model stays (an unload never cuts an answer).
  const engine = service.router.engineFor(PULLED) as LocalEngine;
  const stream = engine.generate({ model: PULLED, messages: [{ role: "user", content: "Hi" }] })[Symbol.asyncIterator]();
  await stream.next();
  const busy = await admin.post(`/api/admin/models/loaded/${PULLED}/unload`);
  assert.equal(busy.status, 409);
  assert.equal(busy.body.error.code, "model_busy");
  assert.match(busy.body.error.message, /answering 1 request now/);
  await stream.return?.(undefined);

  const deleteLoaded = await admin.delete(`/api/admin/models/files/${PULLED}`);
  assert.equal(deleteLoaded.status, 409);
  assert.equal(deleteLoaded.body.error.code, "model_loaded");

  const unloaded = await admin.post(`/api/admin/models/loaded/${PULLED}/unload`);
  assert.equal(unloaded.status, 204, unloaded.text);
  assert.deepEqual(await v1Models(), ["scripted"]);
  const gone = await v1("/v1/chat/completions", { model: PULLED, messages: [{ role: "user", content: "Hello" }] });
  assert.equal(gone.status, 404);

  // Its room is free again: the second copy fits now.
  const fits = await admin.post("/api/admin/models/files/second/load");
  assert.equal(fits.status, 200, fits.text);
  assert.deepEqual(await v1Models(), ["scripted", "second"]);

  assert.equal((await admin.delete(`/api/admin/models/files/${PULLED}`)).status, 204);
  const overview = (await admin.get("/api/admin/models")).body;
  assert.deepEqual(overview.files.map((f: any) => [f.name, f.loaded_as]), [["second", "second"]]);
  assert.deepEqual(overview.loaded.map((m: any) => [m.id, m.file]), [["scripted", null], ["second", "second"]]);
  assert.equal(overview.memory.budget_bytes, service.config.localEngine.memoryBudgetBytes);
  assert.equal(overview.memory.in_use_bytes, overview.loaded.reduce((sum: number, m: any) => sum + m.memory_bytes, 0));

  const actions = (await admin.get("/api/admin/audit")).body.data.map((e: any) => `${e.action} ${e.target_id}`);
  for (const expected of [`model.load ${PULLED}`, `model.unload ${PULLED}`, `model.delete ${PULLED}`, "model.load second"]) {
    assert.ok(actions.includes(expected), `audit has ${expected}`);
  }
});
