import assert from "node:assert/strict";
import { test } from "node:test";
import { ServiceError } from "../errors.ts";
import { ModelError } from "./errors.ts";
import type { PullOptions, PullResult } from "./pull.ts";
import { PullJobs } from "./pullJobs.ts";

/** A pull driven by the test: it reports what the test says, and ends when the test says. */
function scriptedPull() {
  let options!: PullOptions;
  let finish!: (result: PullResult) => void;
  let fail!: (error: unknown) => void;
  let markStarted!: () => void;
  const started = new Promise<void>((resolve) => (markStarted = resolve));
  const fn = (o: PullOptions) => {
    options = o;
    markStarted();
    return new Promise<PullResult>((resolve, reject) => {
      finish = resolve;
      fail = reject;
      o.signal?.addEventListener("abort", () => reject(Object.assign(new Error("aborted"), { name: "AbortError" })), { once: true });
    });
  };
  return {
    fn,
    started,
    progress: (downloadedBytes: number, totalBytes: number | null) => options.onProgress?.({ downloadedBytes, totalBytes, resumedFrom: 0 }),
    verify: () => options.onVerify?.(),
    finish: (result: PullResult) => finish(result),
    fail: (error: unknown) => fail(error),
  };
}

/** Lets the job's own handlers run after the scripted pull ended. */
const settled = () => new Promise((resolve) => setImmediate(resolve));

const RESULT: PullResult = { path: "/models/m.gguf", name: "m", bytes: 1000, resumed: false, alreadyPresent: false, info: null };

test("progress, speed and time left follow the readings; done ends at the file's size", async () => {
  let now = 0;
  const pull = scriptedPull();
  const jobs = new PullJobs({ modelsDir: "/models", allowPrivateNetwork: false, allowHttp: false, now: () => now, pull: (o) => pull.fn(o) });
  const job = jobs.start({ source: "hf:user/repo:Q4_K_M" });
  await pull.started;
  pull.progress(0, 1000);
  assert.equal(jobs.get(job.id)!.bytesPerSecond, null, "one reading: no speed yet");
  now = 1000;
  pull.progress(100, 1000);
  now = 2000;
  pull.progress(300, 1000);
  const mid = jobs.get(job.id)!;
  assert.equal(mid.bytesPerSecond, 150);
  assert.equal(mid.etaSeconds, Math.ceil(700 / 150));
  pull.verify();
  assert.equal(jobs.get(job.id)!.state, "verifying");
  pull.finish(RESULT);
  await settled();
  const done = jobs.get(job.id)!;
  assert.equal(done.state, "done");
  assert.equal(done.name, "m");
  assert.equal(done.etaSeconds, 0);
});

test("one pull per source at a time; bad input refused before anything starts", async () => {
  const pull = scriptedPull();
  const jobs = new PullJobs({ modelsDir: "/models", allowPrivateNetwork: false, allowHttp: false, pull: (o) => pull.fn(o) });
  const first = jobs.start({ source: "hf:User/Repo:Q4_K_M" });
  await pull.started;
  assert.throws(() => jobs.start({ source: "hf:user/repo:q4_k_m" }), (e: unknown) => e instanceof ServiceError && e.kind === "conflict" && e.code === "pull_in_progress");
  assert.throws(() => jobs.start({ source: "gopher://x" }), (e: unknown) => e instanceof ServiceError && e.kind === "invalid_request" && e.param === "source");
  assert.throws(() => jobs.start({ source: "hf:a/b:Q8_0", name: "a/b" }), (e: unknown) => e instanceof ServiceError && e.param === "name");
  assert.equal(jobs.list().length, 1);

  const cancelled = await jobs.cancel(first.id);
  assert.equal(cancelled!.state, "cancelled");
  assert.equal(cancelled!.error, null);
  assert.equal(await jobs.cancel("no-such-id"), undefined);
});

test("a failure is told in the downloader's words; an unexpected one in general words, and reported", async () => {
  const pull = scriptedPull();
  const reported: unknown[] = [];
  const jobs = new PullJobs({ modelsDir: "/models", allowPrivateNetwork: false, allowHttp: false, pull: (o) => pull.fn(o), onError: (e) => reported.push(e) });
  const a = jobs.start({ source: "https://example.com/a.gguf" });
  await pull.started;
  pull.fail(new ModelError("blocked_address", "Refusing to connect to 10.0.0.1: a private address."));
  await settled();
  assert.equal(jobs.get(a.id)!.state, "failed");
  assert.equal(jobs.get(a.id)!.error, "Refusing to connect to 10.0.0.1: a private address.");
  assert.equal(reported.length, 0, "a ModelError is the downloader's own verdict, not a fault to report");

  const again = scriptedPull();
  const jobs2 = new PullJobs({ modelsDir: "/models", allowPrivateNetwork: false, allowHttp: false, pull: (o) => again.fn(o), onError: (e) => reported.push(e) });
  const b = jobs2.start({ source: "https://example.com/b.gguf" });
  await again.started;
  again.fail(new TypeError("boom"));
  await settled();
  assert.match(jobs2.get(b.id)!.error!, /failed unexpectedly/);
  assert.equal(reported.length, 1);
});
