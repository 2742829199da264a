import assert from "node:assert/strict";
import { test } from "node:test";
import { SecretBox } from "./secretBox.ts";

const box = SecretBox.fromServiceSecret("service-secret-one", "totp-secret");

test("a sealed secret opens only with the same key and the same associated data, and any change is detected", () => {
  const sealed = box.seal("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "totp:user-a");
  assert.ok(sealed.startsWith("v1."));
  assert.ok(!sealed.includes("JBSWY3DP"), "not in clear");
  assert.equal(box.open(sealed, "totp:user-a"), "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP");
  // Fresh nonce each time: sealing twice gives two different texts.
  assert.notEqual(box.seal("same", "x"), box.seal("same", "x"));

  // Copied onto another account's row: refused.
  assert.throws(() => box.open(sealed, "totp:user-b"));
  // Another install (another service secret), or the same secret for another purpose: refused.
  assert.throws(() => SecretBox.fromServiceSecret("service-secret-two", "totp-secret").open(sealed, "totp:user-a"));
  assert.throws(() => SecretBox.fromServiceSecret("service-secret-one", "other-purpose").open(sealed, "totp:user-a"));
  // One bit flipped anywhere: refused.
  const raw = Buffer.from(sealed.slice(3), "base64url");
  for (const at of [0, 12, raw.length - 1]) {
    const flipped = Buffer.from(raw);
    flipped[at] = flipped[at]! ^ 1;
    assert.throws(() => box.open(`v1.${flipped.toString("base64url")}`, "totp:user-a"), `byte ${at}`);
  }
  assert.throws(() => box.open("v2.AAAA", "totp:user-a"));
});
