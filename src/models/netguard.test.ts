import assert from "node:assert/strict";
import { test } from "node:test";
import { ModelError } from "./errors.ts";
import { assertUrlAllowed, guardedLookup, isBlockedAddress, policyForUrl } from "./netguard.ts";

const strict = { allowPrivateNetwork: false, allowHttp: false };

test("non-public addresses are blocked, public ones are not", () => {
  for (const address of [
    "127.0.0.1",
    "127.8.9.10",
    "10.1.2.3",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "fe80::1",
    "fd00::1",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "64:ff9b::a9fe:a9fe", // NAT64 of 169.254.169.254
    "2002:0a00:0001::1", // 6to4 of 10.0.0.1
    "not-an-ip",
  ]) {
    assert.equal(isBlockedAddress(address), true, address);
  }
  for (const address of ["8.8.8.8", "1.1.1.1", "172.32.0.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]) {
    assert.equal(isBlockedAddress(address), false, address);
  }
});

test("URL checks: protocol, credentials and literal addresses", () => {
  const code = (c: string) => (e: unknown) => e instanceof ModelError && e.code === c;
  assert.throws(() => assertUrlAllowed(new URL("http://example.com/x.gguf"), strict), code("insecure_protocol"));
  assert.throws(() => assertUrlAllowed(new URL("file:///etc/passwd"), strict), code("insecure_protocol"));
  assert.throws(() => assertUrlAllowed(new URL("https://[::1]/x"), strict), code("blocked_address"));
  assert.throws(() => assertUrlAllowed(new URL("https://0x7f.1/x"), strict), code("blocked_address"));
  assert.throws(() => assertUrlAllowed(new URL("https://169.254.169.254/latest"), strict), code("blocked_address"));
  assert.throws(() => assertUrlAllowed(new URL("https://user:pw@example.com/x"), strict), code("bad_source"));
  assertUrlAllowed(new URL("https://example.com/x.gguf"), strict);
  assertUrlAllowed(new URL("http://127.0.0.1:8080/x.gguf"), { allowPrivateNetwork: true, allowHttp: true });
});

test("the connection-time lookup refuses names that resolve to loopback", async () => {
  const lookup = guardedLookup(strict);
  const error = await new Promise<unknown>((resolve) => lookup("localhost", {}, (err) => resolve(err)));
  assert.ok(error instanceof ModelError && error.code === "blocked_address", String(error));

  const allowed = guardedLookup({ allowPrivateNetwork: true, allowHttp: false });
  const addresses = await new Promise<unknown>((resolve, reject) =>
    allowed("localhost", { all: true }, (err, result) => (err ? reject(err) : resolve(result))),
  );
  assert.ok(Array.isArray(addresses) && addresses.length > 0);
});

test("privateOrigins opens the private network to exactly one origin", () => {
  const code = (c: string) => (e: unknown) => e instanceof ModelError && e.code === c;
  const policy = { allowPrivateNetwork: false, allowHttp: true, privateOrigins: ["http://127.0.0.1:8888"] };
  assertUrlAllowed(new URL("http://127.0.0.1:8888/search?q=x"), policy);
  assertUrlAllowed(new URL("http://2130706433:8888/"), policy); // the same origin, spelled as a number
  assert.throws(() => assertUrlAllowed(new URL("http://127.0.0.1:8889/"), policy), code("blocked_address"));
  assert.throws(() => assertUrlAllowed(new URL("https://127.0.0.1:8888/"), policy), code("blocked_address"));
  assert.throws(() => assertUrlAllowed(new URL("http://[::1]:8888/"), policy), code("blocked_address"));
  assert.equal(policyForUrl(new URL("http://localhost:8888/"), policy).allowPrivateNetwork, false);
  assert.equal(policyForUrl(new URL("http://127.0.0.1:8888/x"), policy).allowPrivateNetwork, true);
});
