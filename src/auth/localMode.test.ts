import assert from "node:assert/strict";
import { chmod, mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { forEachDatabase } from "../../test/support/databases.ts";
import { assertSafeBinding, ensureLocalKey, isLoopbackAddress, isLoopbackHost, LocalMode, localKeyPath, readLocalKey, type LocalRequestInfo } from "./localMode.ts";
import { insertUser } from "./users.ts";

test("loopback hosts and addresses", () => {
  for (const host of ["127.0.0.1", "127.0.0.2", "localhost", "LOCALHOST", "::1", "[::1]"]) assert.equal(isLoopbackHost(host), true, host);
  for (const host of ["0.0.0.0", "::", "192.168.1.10", "example.com", "127.0.0.1.example.com", ""]) assert.equal(isLoopbackHost(host), false, host);
  assert.equal(isLoopbackAddress("::ffff:127.0.0.1"), true);
  assert.equal(isLoopbackAddress("::ffff:10.0.0.1"), false);
  assert.equal(isLoopbackAddress(undefined), false);
});

forEachDatabase("listening beyond loopback needs an account first", async (store) => {
  await assertSafeBinding(store.db, "127.0.0.1");
  await assert.rejects(assertSafeBinding(store.db, "0.0.0.0"), /Refusing to listen on 0\.0\.0\.0: no account exists yet.*sputnik admin create-user --admin/s);
  await insertUser(store.db, { username: "root", email: null, passwordHash: "x", role: "admin", status: "active", planId: "free" });
  await assertSafeBinding(store.db, "0.0.0.0");
});

test("the local key: made once per data directory, 0600, reused, a loose mode tightened", async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), "sputnik-local-key-"));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  assert.equal(await readLocalKey(dataDir), null);
  // Processes starting together agree on one key.
  const keys = await Promise.all([ensureLocalKey(dataDir), ensureLocalKey(dataDir), ensureLocalKey(dataDir)]);
  assert.equal(new Set(keys).size, 1);
  assert.equal(await readLocalKey(dataDir), keys[0]);
  assert.equal((await stat(localKeyPath(dataDir))).mode & 0o777, 0o600);
  await chmod(localKeyPath(dataDir), 0o644);
  assert.equal(await ensureLocalKey(dataDir), keys[0]);
  assert.equal((await stat(localKeyPath(dataDir))).mode & 0o777, 0o600);
});

forEachDatabase("local mode needs the local key, a loopback connection without proxy signs, and no account", async (store) => {
  const mode = new LocalMode(store.db, "sk-local-" + "k".repeat(43));
  const request: LocalRequestInfo = { remoteAddress: "127.0.0.1", host: "localhost:8080", origin: undefined, forwarded: false, bearerToken: "sk-local-" + "k".repeat(43) };
  assert.equal(await mode.appliesTo(request), true);
  // What a reverse proxy on this machine sends by default: loopback, loopback Host, no forwarding headers, no key.
  assert.equal(await mode.appliesTo({ ...request, bearerToken: null }), false);
  assert.equal(await mode.appliesTo({ ...request, bearerToken: "sk-local-" + "k".repeat(42) }), false);
  assert.equal(await mode.appliesTo({ ...request, forwarded: true }), false);
  assert.equal(await mode.appliesTo({ ...request, remoteAddress: "192.0.2.1" }), false);
  assert.equal(await mode.appliesTo({ ...request, host: "evil.example" }), false);
  assert.equal(await mode.appliesTo({ ...request, origin: "http://evil.example" }), false);
  assert.equal(await new LocalMode(store.db, null).appliesTo(request), false, "off");
  await insertUser(store.db, { username: "root", email: null, passwordHash: "x", role: "admin", status: "active", planId: "free" });
  assert.equal(await mode.appliesTo(request), false, "the first account ends it");
});
