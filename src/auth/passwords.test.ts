import assert from "node:assert/strict";
import { test } from "node:test";
import { OWASP_ARGON2ID, PasswordHasher } from "./passwords.ts";

const cheap = new PasswordHasher({ memoryKiB: 64, iterations: 1, parallelism: 1 });

test("hashes are argon2id PHC strings with the configured cost, salted, and verify only the right password", async () => {
  const a = await cheap.hash("correct horse battery");
  const b = await cheap.hash("correct horse battery");
  assert.match(a, /^\$argon2id\$v=19\$m=64,t=1,p=1\$/);
  assert.notEqual(a, b, "a fresh salt each time");
  assert.equal(await cheap.verify(a, "correct horse battery"), true);
  assert.equal(await cheap.verify(a, "correct horse batterY"), false);
  assert.equal(await cheap.verify("not a hash", "x"), false, "a corrupt stored hash is a failed check, not a crash");
});

test("the default cost is OWASP's argon2id recommendation", async () => {
  assert.deepEqual(OWASP_ARGON2ID, { memoryKiB: 19_456, iterations: 2, parallelism: 1 });
  const hash = await new PasswordHasher().hash("x".repeat(12));
  assert.match(hash, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
});

test("an unknown account still costs a full verification, and never succeeds", async () => {
  assert.equal(await cheap.verifyOrDummy(null, "anything"), false);
  const real = await cheap.hash("pw-12345678");
  assert.equal(await cheap.verifyOrDummy(real, "pw-12345678"), true);
});

test("needsRehash spots hashes made with other parameters", async () => {
  const old = await new PasswordHasher({ memoryKiB: 32, iterations: 1, parallelism: 1 }).hash("pw");
  assert.equal(cheap.needsRehash(old), true);
  assert.equal(cheap.needsRehash(await cheap.hash("pw")), false);
  assert.equal(cheap.needsRehash("$argon2i$v=19$m=64,t=1,p=1$abc$def"), true);
});
