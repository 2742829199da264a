import assert from "node:assert/strict";
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import Fastify from "fastify";
import { frameworkErrors, installErrorHandlers } from "./errors.ts";
import { isApiPath, registerWebApp } from "./webApp.ts";

async function app(t: import("node:test").TestContext) {
  const dist = await mkdtemp(join(tmpdir(), "sputnik-web-"));
  await mkdir(join(dist, "assets"));
  await writeFile(join(dist, "index.html"), "<!doctype html><title>Sputnik</title>");
  await writeFile(join(dist, "assets", "app-abc123.js"), "console.log(1)");
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
