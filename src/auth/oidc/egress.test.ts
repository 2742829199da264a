import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { guardedOidcFetch } from "./egress.ts";

let server: http.Server;
let issuer: URL;

before(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      res.writeHead(req.url === "/moved" ? 302 : 200, { "content-type": "application/json", location: "/elsewhere" });
      res.end(JSON.stringify({ method: req.method, body: Buffer.concat(chunks).toString("utf8"), auth: req.headers.authorization ?? null }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  issuer = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

test("the issuer's own host may be loopback (and plain http, as config allows only for loopback)", async () => {
  const fetch = guardedOidcFetch(issuer, { allowPrivateNetwork: false });
  const response = await fetch(new URL("/token", issuer).href, {
    method: "POST",
    headers: { authorization: "Basic abc", "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "authorization_code", code: "c" }),
    redirect: "manual",
  });
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), { method: "POST", body: "grant_type=authorization_code&code=c", auth: "Basic abc" });
  // Redirects are handed back, never followed.
  const moved = await fetch(new URL("/moved", issuer).href, { method: "GET", headers: {}, body: undefined, redirect: "manual" });
  assert.deepEqual([moved.status, moved.headers.get("location")], [302, "/elsewhere"]);
});

test("URLs the provider names on other hosts follow allowPrivateNetwork and never use plain http", async () => {
  const guarded = guardedOidcFetch(issuer, { allowPrivateNetwork: false });
  const get = (fetch: typeof guarded, url: string) => fetch(url, { method: "GET", headers: {}, body: undefined, redirect: "manual" });
  await assert.rejects(get(guarded, "https://127.0.0.9/jwks"), { code: "blocked_address" });
  await assert.rejects(get(guarded, "https://169.254.169.254/latest/meta-data"), { code: "blocked_address" });
  await assert.rejects(get(guarded, `http://localhost:${issuer.port}/jwks`), { code: "insecure_protocol" });
  // allowPrivateNetwork lets the address through (the connection itself then fails here).
  const open = guardedOidcFetch(issuer, { allowPrivateNetwork: true });
  await assert.rejects(get(open, "https://127.0.0.9:1/jwks"), (error: Error & { code?: string }) => error.code === "ECONNREFUSED");
});
