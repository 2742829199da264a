import assert from "node:assert/strict";
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import zlib from "node:zlib";
import { precompressDir } from "../../tools/precompress.ts";
import Fastify from "fastify";
import { frameworkErrors, installErrorHandlers } from "./errors.ts";
import { isApiPath, registerWebApp } from "./webApp.ts";

const BIG_SCRIPT = `export const words = ${JSON.stringify(Array.from({ length: 2000 }, (_, i) => `word-${i % 50}`))};\n`;

async function app(t: import("node:test").TestContext) {
  const dist = await mkdtemp(join(tmpdir(), "sputnik-web-"));
  await mkdir(join(dist, "assets"));
  await writeFile(join(dist, "index.html"), "<!doctype html><title>Sputnik</title>");
  await writeFile(join(dist, "assets", "app-abc123.js"), "console.log(1)");
  await writeFile(join(dist, "assets", "big-def456.js"), BIG_SCRIPT);
  await precompressDir(dist);
  const server = Fastify({ frameworkErrors, routerOptions: { caseSensitive: true, ignoreTrailingSlash: true } });
  installErrorHandlers(server);
  server.get("/v1/models", async () => ({ data: [] }));
  server.get("/api/admin/users", async () => ({ data: [] }));
  await registerWebApp(server, { distDir: dist });
  await server.ready();
  t.after(async () => {
    await server.close();
    await rm(dist, { recursive: true, force: true });
  });
  return server;
}

test("client-side routes get the app's index.html; API paths in any spelling get a JSON 404, never HTML", async (t) => {
  const server = await app(t);
  for (const url of ["/", "/c/0190-abc", "/settings", "/admin/users"]) {
    const page = await server.inject({ url });
    assert.equal(page.statusCode, 200, url);
    assert.match(String(page.headers["content-type"]), /^text\/html/, url);
  }
  const asset = await server.inject({ url: "/assets/app-abc123.js" });
  assert.match(String(asset.headers["cache-control"]), /immutable/);
  assert.equal((await server.inject({ url: "/v1/models" })).statusCode, 200);

  for (const url of ["/V1/models", "/API/admin/users", "/Api/Admin/Users", "/v1/nothing", "/api/nothing", "/v1", "/API", "//v1/models", "/%561/models", "/health/x", "/METRICS"]) {
    const response = await server.inject({ url });
    assert.equal(response.statusCode, 404, url);
    assert.match(String(response.headers["content-type"]), /^application\/json/, url);
    assert.equal(response.json().error.code, "route_not_found", url);
  }
});

test("isApiPath ignores case, escapes, repeated slashes and the query", () => {
  for (const path of ["/v1/models", "/V1/MODELS", "/api/x?y=1", "/%41PI/x", "//api//x", "/v1", "/health", "/metrics"]) assert.equal(isApiPath(path), true, path);
  for (const path of ["/", "/c/1", "/v1x", "/apix/y", "/settings?tab=api", "/%c0"]) assert.equal(isApiPath(path), false, path);
});

test("assets compressed at build time are sent as the browser accepts, with immutable caching; index.html is no-cache", async (t) => {
  const server = await app(t);
  const url = "/assets/big-def456.js";
  const br = await server.inject({ url, headers: { "accept-encoding": "gzip, deflate, br" } });
  assert.equal(br.statusCode, 200);
  assert.equal(br.headers["content-encoding"], "br");
  assert.match(String(br.headers["content-type"]), /javascript/);
  assert.match(String(br.headers.vary), /accept-encoding/i);
  assert.equal(br.headers["cache-control"], "public, max-age=31536000, immutable");
  assert.ok(br.rawPayload.length < BIG_SCRIPT.length / 5, `compressed: ${br.rawPayload.length} bytes`);
  assert.equal(zlib.brotliDecompressSync(br.rawPayload).toString(), BIG_SCRIPT);

  const gz = await server.inject({ url, headers: { "accept-encoding": "gzip" } });
  assert.equal(gz.headers["content-encoding"], "gzip");
  assert.equal(zlib.gunzipSync(gz.rawPayload).toString(), BIG_SCRIPT);

  const plain = await server.inject({ url, headers: { "accept-encoding": "identity" } });
  assert.equal(plain.headers["content-encoding"], undefined);
  assert.equal(plain.body, BIG_SCRIPT);

  // The copies are not routes of their own; index.html is revalidated each time.
  assert.match(String((await server.inject({ url: `${url}.br` })).headers["content-type"]), /^text\/html/);
  const index = await server.inject({ url: "/c/123", headers: { "accept-encoding": "br" } });
  assert.equal(index.headers["cache-control"], "no-cache");
  assert.match(String(index.headers["content-type"]), /^text\/html/);
});
