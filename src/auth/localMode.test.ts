import assert from "node:assert/strict";
import { test } from "node:test";
import { forEachDatabase } from "../../test/support/databases.ts";
import { assertSafeBinding, isLoopbackAddress, isLoopbackHost } from "./localMode.ts";
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
