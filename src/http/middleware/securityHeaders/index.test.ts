import assert from "node:assert/strict";
import { test } from "node:test";
import Fastify from "fastify";
import { installErrorHandlers } from "../../errors.ts";
import { registerSecurityHeaders } from "./index.ts";

async function app() {
  const server = Fastify();
  installErrorHandlers(server);
  await registerSecurityHeaders(server);
  server.get("/", async (_request, reply) => reply.type("text/html").send("<!doctype html><title>app</title>"));
  server.get("/v1/models", async () => ({ data: [] }));
  await server.ready();
  return server;
}

function directives(csp: string): Map<string, string> {
  return new Map(csp.split(";").map((d) => d.trim()).filter(Boolean).map((d) => [d.split(/\s+/)[0]!, d.split(/\s+/).slice(1).join(" ")]));
}

test("the app's page gets a strict Content-Security-Policy: own scripts only, no framing, fetches to this origin", async () => {
  const server = await app();
  const page = await server.inject({ url: "/" });
  const csp = directives(String(page.headers["content-security-policy"]));
  assert.equal(csp.get("script-src"), "'self'", "no inline script, no eval, no foreign script");
  assert.equal(csp.get("default-src"), "'self'");
  assert.equal(csp.get("connect-src"), "'self'");
  assert.equal(csp.get("object-src"), "'none'");
  assert.equal(csp.get("frame-ancestors"), "'none'");
  assert.equal(csp.get("base-uri"), "'none'");
  assert.equal(page.headers["x-frame-options"], "DENY");
  assert.equal(page.headers["x-content-type-options"], "nosniff");
  assert.equal(page.headers["referrer-policy"], "no-referrer");
  await server.close();
});

test("API answers, errors included, carry the same headers", async () => {
  const server = await app();
  for (const url of ["/v1/models", "/v1/nothing-here"]) {
    const response = await server.inject({ url });
    assert.equal(response.headers["x-content-type-options"], "nosniff", url);
    assert.match(String(response.headers["content-security-policy"]), /frame-ancestors 'none'/, url);
  }
  await server.close();
});
