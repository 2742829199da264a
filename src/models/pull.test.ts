import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import { statePath } from "./download.ts";
import { ModelError } from "./errors.ts";
import { pullModel, type PullOptions } from "./pull.ts";
import { writeTinyModel } from "../../test/support/modelFixtures.ts";
import { FakeHub } from "../../test/support/hubServer.ts";

let work: string;
let goodModel: Buffer;
let otherModel: Buffer;
let abortingModel: Buffer;
const hub = new FakeHub();
const cdn = new FakeHub();

before(async () => {
  work = await mkdtemp(join(tmpdir(), "sputnik-pull-"));
  goodModel = await fixture("good.gguf", {});
  otherModel = await fixture("other.gguf", { name: "another-model" });
  abortingModel = await fixture("no-ff.gguf", { omitFeedForwardLength: true });
  await hub.start();
  await cdn.start();
});

after(async () => {
  await hub.close();
  await cdn.close();
  await rm(work, { recursive: true, force: true });
});

async function fixture(file: string, options: Parameters<typeof writeTinyModel>[1]): Promise<Buffer> {
  const path = join(work, file);
  await writeTinyModel(path, options);
  return readFile(path);
}

let modelsDir: string;
beforeEach(async () => {
  modelsDir = await mkdtemp(join(work, "models-"));
  hub.files.clear();
  hub.repos.clear();
  hub.requests.length = 0;
  hub.ignoreRange = false;
  hub.ignoreIfRange = false;
  hub.cutNextAt = hub.stallNextAt = null;
  hub.redirectBase = null;
  hub.redirectLoop = false;
  cdn.files.clear();
  cdn.requests.length = 0;
});

/** Options for the loopback test server: private addresses and http allowed, no automatic retries. */
function local(source: string, extra: Partial<PullOptions> = {}): PullOptions {
  return { source, modelsDir, hfEndpoint: hub.baseUrl, allowPrivateNetwork: true, allowHttp: true, retries: 0, ...extra };
}

function withCode(code: string, pattern?: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof ModelError, `expected a ModelError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (pattern) assert.match(error.message, pattern);
    return true;
  };
}

describe("pull from a Hugging Face-like hub", () => {
  test("resolves a quantization case-insensitively, sends the token, downloads and verifies", async () => {
    hub.repos.set("test/tiny", ["README.md", "tiny-Q8_0.gguf", "tiny-F32.gguf", "mmproj-tiny-F32.gguf"]);
    hub.files.set("/test/tiny/resolve/main/tiny-F32.gguf", goodModel);
    const result = await pullModel(local("hf:test/tiny:f32", { hfToken: "secret-token" }));

    assert.equal(result.name, "tiny-F32");
    assert.equal(result.path, join(modelsDir, "tiny-F32.gguf"));
    assert.equal(result.bytes, goodModel.length);
    assert.equal(result.resumed, false);
    assert.equal(result.info?.architecture, "llama");
    assert.deepEqual(await readFile(result.path), goodModel);
    assert.deepEqual(await readdir(modelsDir), ["tiny-F32.gguf"]);
    assert.equal(hub.requestsFor("/api/models/test/tiny")[0].headers.authorization, "Bearer secret-token");
    assert.equal(hub.requestsFor("/test/tiny/resolve/main/tiny-F32.gguf")[0].headers.authorization, "Bearer secret-token");
  });

  test("a second pull of a present model downloads nothing", async () => {
    hub.repos.set("test/tiny", ["tiny-F32.gguf"]);
    hub.files.set("/test/tiny/resolve/main/tiny-F32.gguf", goodModel);
    await writeFile(join(modelsDir, "tiny-F32.gguf"), goodModel);
    const result = await pullModel(local("hf:test/tiny:F32"));
    assert.equal(result.alreadyPresent, true);
    assert.equal(hub.requestsFor("/test/tiny/resolve/main/tiny-F32.gguf").length, 0);
  });

  test("a file path in the repository, followed through a redirect that must not get the token", async () => {
    hub.redirectBase = cdn.baseUrl;
    cdn.files.set("/test/tiny/resolve/main/sub/dir/model.gguf", goodModel);
    const result = await pullModel(local("hf:test/tiny/sub/dir/model.gguf", { hfToken: "secret-token", name: "renamed" }));

    assert.equal(result.name, "renamed");
    assert.deepEqual(await readFile(join(modelsDir, "renamed.gguf")), goodModel);
    assert.equal(hub.requestsFor("/test/tiny/resolve/main/sub/dir/model.gguf")[0].headers.authorization, "Bearer secret-token");
    const cdnRequest = cdn.requestsFor("/test/tiny/resolve/main/sub/dir/model.gguf")[0];
    assert.ok(cdnRequest, "the CDN was asked for the file");
    assert.equal(cdnRequest.headers.authorization, undefined, "the token is not sent to another origin");
  });

  test("no matching quantization: the error lists what there is", async () => {
    hub.repos.set("test/tiny", [
      "tiny-Q8_0.gguf",
      "tiny-F32.gguf",
      "Q4_K_M/tiny-Q4_K_M-00001-of-00002.gguf",
      "Q4_K_M/tiny-Q4_K_M-00002-of-00002.gguf",
    ]);
    await assert.rejects(
      pullModel(local("hf:test/tiny:Q5_K_M")),
      withCode("no_matching_file", /Available: .*Q8_0.*F32.*Q4_K_M \(split into 2 parts, unsupported\)/),
    );
  });

  test("a split model is refused with an explanation, not half-downloaded", async () => {
    hub.repos.set("test/tiny", ["Q4_K_M/tiny-Q4_K_M-00001-of-00002.gguf", "Q4_K_M/tiny-Q4_K_M-00002-of-00002.gguf"]);
    await assert.rejects(pullModel(local("hf:test/tiny:q4_k_m")), withCode("split_model", /split into 2 files/));
    assert.deepEqual(await readdir(modelsDir), []);
  });

  test("several candidate files are ambiguous", async () => {
    hub.repos.set("test/tiny", ["a/model-Q8_0.gguf", "b/model-Q8_0.gguf"]);
    await assert.rejects(pullModel(local("hf:test/tiny:Q8_0")), withCode("ambiguous_file", /a\/model-Q8_0\.gguf, b\/model-Q8_0\.gguf/));
    hub.repos.set("test/tiny", ["model-Q8_0.gguf", "model-F32.gguf"]);
    await assert.rejects(pullModel(local("hf:test/tiny")), withCode("ambiguous_file", /Add a quantization \(Q8_0, F32\)/));
  });

  test("an unknown repository is a clear HTTP error", async () => {
    await assert.rejects(pullModel(local("hf:test/missing:Q8_0")), withCode("http_error", /HTTP 404/));
  });
});

describe("pull from a URL", () => {
  test("downloads a direct URL", async () => {
    hub.files.set("/files/direct.gguf", goodModel);
    const result = await pullModel(local(`${hub.baseUrl}/files/direct.gguf`));
    assert.equal(result.name, "direct");
    assert.deepEqual(await readFile(join(modelsDir, "direct.gguf")), goodModel);
  });

  test("an interrupted download leaves a partial file; the next pull resumes it with Range", async () => {
    hub.files.set("/files/resume.gguf", goodModel);
    const half = Math.floor(goodModel.length / 2);
    hub.cutNextAt = half;
    await assert.rejects(pullModel(local(`${hub.baseUrl}/files/resume.gguf`)), withCode("download_failed", /run the same pull again/));
    const partial = join(modelsDir, "resume.gguf.partial");
    const partialSize = (await stat(partial)).size;
    assert.ok(partialSize > 0 && partialSize <= half, `partial holds the first bytes (${partialSize})`);
    assert.deepEqual(await readdir(modelsDir).then((f) => f.includes("resume.gguf")), false);

    const result = await pullModel(local(`${hub.baseUrl}/files/resume.gguf`));
    assert.equal(result.resumed, true);
    const second = hub.requestsFor("/files/resume.gguf")[1];
    assert.equal(second.headers.range, `bytes=${partialSize}-`);
    assert.equal(second.headers["if-range"], FakeHub.etag(goodModel));
    assert.deepEqual(await readFile(join(modelsDir, "resume.gguf")), goodModel);
    assert.deepEqual((await readdir(modelsDir)).sort(), ["resume.gguf"], "no partial or state file left behind");
  });

  test("within one call, a dropped connection is resumed automatically", async () => {
    hub.files.set("/files/retry.gguf", goodModel);
    hub.cutNextAt = 10_000;
    const result = await pullModel(local(`${hub.baseUrl}/files/retry.gguf`, { retries: 1 }));
    assert.equal(result.resumed, true);
    assert.equal(hub.requestsFor("/files/retry.gguf")[1].headers.range, "bytes=10000-");
    assert.deepEqual(await readFile(result.path), goodModel);
  });

  test("a server that ignores Range gets a fresh download, not a spliced file", async () => {
    hub.files.set("/files/norange.gguf", goodModel);
    hub.cutNextAt = 20_000;
    await assert.rejects(pullModel(local(`${hub.baseUrl}/files/norange.gguf`)), withCode("download_failed"));
    hub.ignoreRange = true;
    const result = await pullModel(local(`${hub.baseUrl}/files/norange.gguf`));
    assert.equal(hub.requestsFor("/files/norange.gguf")[1].headers.range, "bytes=20000-", "a range was asked for");
    assert.equal(result.resumed, false);
    assert.deepEqual(await readFile(result.path), goodModel);
  });

  test("a file that changed on the server since the partial download starts over (If-Range)", async () => {
    hub.files.set("/files/changing.gguf", otherModel);
    hub.cutNextAt = 30_000;
    await assert.rejects(pullModel(local(`${hub.baseUrl}/files/changing.gguf`)), withCode("download_failed"));
    hub.files.set("/files/changing.gguf", goodModel);
    const result = await pullModel(local(`${hub.baseUrl}/files/changing.gguf`));
    assert.equal(result.resumed, false);
    assert.deepEqual(await readFile(result.path), goodModel);
  });

  test("a server that ignores If-Range cannot splice a changed file: its 206 is checked against the ETag", async () => {
    hub.files.set("/files/splice.gguf", otherModel);
    hub.cutNextAt = 30_000;
    await assert.rejects(pullModel(local(`${hub.baseUrl}/files/splice.gguf`)), withCode("download_failed"));
    hub.files.set("/files/splice.gguf", goodModel);
    hub.ignoreIfRange = true;
    const result = await pullModel(local(`${hub.baseUrl}/files/splice.gguf`));
    const [, ranged, fresh] = hub.requestsFor("/files/splice.gguf");
    assert.equal(ranged.headers.range, "bytes=30000-");
    assert.equal(fresh.headers.range, undefined, "started over without a range");
    assert.equal(result.resumed, false);
    assert.deepEqual(await readFile(result.path), goodModel);
  });

  test("aborting (Ctrl-C) keeps the partial file and the next pull resumes", async () => {
    hub.files.set("/files/abort.gguf", goodModel);
    hub.stallNextAt = 40_000;
    const controller = new AbortController();
    const pulling = pullModel(
      local(`${hub.baseUrl}/files/abort.gguf`, {
        signal: controller.signal,
        onProgress: (p) => {
          if (p.downloadedBytes >= 40_000) controller.abort();
        },
      }),
    );
    await assert.rejects(pulling, { name: "AbortError" });
    assert.equal((await stat(join(modelsDir, "abort.gguf.partial"))).size, 40_000);
    assert.ok(await stat(statePath(join(modelsDir, "abort.gguf.partial"))));

    const result = await pullModel(local(`${hub.baseUrl}/files/abort.gguf`));
    assert.equal(result.resumed, true);
    assert.equal(hub.requestsFor("/files/abort.gguf")[1].headers.range, "bytes=40000-");
    assert.deepEqual(await readFile(result.path), goodModel);
  });

  test("aborting during the load check keeps the whole file; the next pull only verifies it", async () => {
    hub.files.set("/files/verify-abort.gguf", goodModel);
    const controller = new AbortController();
    const options = local(`${hub.baseUrl}/files/verify-abort.gguf`, { signal: controller.signal, onVerify: () => controller.abort() });
    await assert.rejects(pullModel(options), { name: "AbortError" });
    assert.equal((await stat(join(modelsDir, "verify-abort.gguf.partial"))).size, goodModel.length);

    const result = await pullModel(local(`${hub.baseUrl}/files/verify-abort.gguf`));
    assert.equal(hub.requestsFor("/files/verify-abort.gguf")[1].headers.range, `bytes=${goodModel.length}-`);
    assert.equal(result.resumed, true);
    assert.deepEqual(await readFile(result.path), goodModel);
  });

  test("a corrupt file is rejected by the load check and nothing stays in the models directory", async () => {
    hub.files.set("/files/corrupt.gguf", goodModel.subarray(0, goodModel.length - 4096));
    await assert.rejects(pullModel(local(`${hub.baseUrl}/files/corrupt.gguf`)), withCode("invalid_model", /llama.cpp cannot load it/));
    assert.deepEqual(await readdir(modelsDir), []);
  });

  test("a GGUF that makes llama.cpp abort is rejected without killing this process", async () => {
    hub.files.set("/files/abort-llama.gguf", abortingModel);
    await assert.rejects(pullModel(local(`${hub.baseUrl}/files/abort-llama.gguf`)), withCode("invalid_model", /aborted/));
    assert.deepEqual(await readdir(modelsDir), []);
  });

  test("a URL without a .gguf file name needs --name", async () => {
    hub.files.set("/files/blob", goodModel);
    await assert.rejects(pullModel(local(`${hub.baseUrl}/files/blob`)), withCode("invalid_name", /--name/));
  });
});

describe("network policy", () => {
  test("loopback addresses are refused unless allowed, before any request is sent", async () => {
    hub.files.set("/files/private.gguf", goodModel);
    const url = `${hub.baseUrl}/files/private.gguf`;
    await assert.rejects(pullModel(local(url, { allowPrivateNetwork: false })), withCode("blocked_address", /127\.0\.0\.1/));
    const byName = url.replace("127.0.0.1", "localhost");
    await assert.rejects(pullModel(local(byName, { allowPrivateNetwork: false })), withCode("blocked_address", /localhost/));
    assert.equal(hub.requests.length, 0);
  });

  test("the Hugging Face endpoint is under the same policy", async () => {
    hub.repos.set("test/tiny", ["tiny-F32.gguf"]);
    await assert.rejects(pullModel(local("hf:test/tiny:F32", { allowPrivateNetwork: false })), withCode("blocked_address"));
    assert.equal(hub.requests.length, 0);
  });

  test("plain http is refused unless allowed", async () => {
    await assert.rejects(pullModel(local(`${hub.baseUrl}/files/x.gguf`, { allowHttp: false })), withCode("insecure_protocol", /--allow-http/));
    assert.equal(hub.requests.length, 0);
  });

  test("redirect loops stop", async () => {
    hub.redirectLoop = true;
    await assert.rejects(pullModel(local(`${hub.baseUrl}/files/loop.gguf`)), withCode("too_many_redirects"));
    assert.equal(hub.requests.length, 6, "the first request and 5 redirects");
  });
});
