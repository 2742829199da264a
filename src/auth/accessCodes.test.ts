import assert from "node:assert/strict";
import { test } from "node:test";
import { forEachDatabase } from "../../test/support/databases.ts";
import { codePrefix, createAccessCode, listRedemptions, normaliseCode, redeemAccessCode, revokeAccessCode } from "./accessCodes.ts";
import { insertUser } from "./users.ts";

async function user(db: Parameters<typeof insertUser>[0], name: string) {
  return insertUser(db, { username: name, email: null, passwordHash: "x", role: "user", status: "active", planId: "free" });
}

const grantOf = { maxUses: 1, expiresAt: null, planId: "pro", creditMicros: 2_500_000, note: null, createdBy: null };

test("codes are typed forgivingly: case, spaces, dashes, O for 0, I and L for 1", () => {
  assert.equal(normaliseCode(" abcd-efgh ioLo-0000 "), "ABCDEFGH1010" + "0000");
  assert.equal(codePrefix("7kq2-xxxx"), "7KQ2");
});

forEachDatabase("a code's text is shown once and stored only hashed; it redeems in any spelling", async (store) => {
  const { code, row } = await createAccessCode(store.db, grantOf);
  assert.match(code, /^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$/);
  assert.equal(row.prefix, code.slice(0, 4));
  const stored = JSON.stringify(await store.db.selectFrom("access_codes").selectAll().execute());
  assert.ok(!stored.includes(code) && !stored.includes(code.replaceAll("-", "")), "no clear code in the table");
  const u = await user(store.db, "alice");
  const grant = await redeemAccessCode(store.db, code.toLowerCase().replaceAll("-", " "), u.id);
  assert.deepEqual(grant, { accessCodeId: row.id, planId: "pro", creditMicros: 2_500_000 });
});

forEachDatabase("a code grants exactly max_uses times, even when redeemed concurrently", async (store) => {
  const { code, row } = await createAccessCode(store.db, { ...grantOf, maxUses: 3 });
  const users = await Promise.all(Array.from({ length: 8 }, (_, i) => user(store.db, `user${i}`)));
  const grants = await Promise.all(users.map((u) => redeemAccessCode(store.db, code, u.id)));
  assert.equal(grants.filter((g) => g !== null).length, 3);
  const after = await store.db.selectFrom("access_codes").select("uses").where("id", "=", row.id).executeTakeFirstOrThrow();
  assert.equal(after.uses, 3);
  const redemptions = await listRedemptions(store.db, { accessCodeId: row.id });
  assert.equal(redemptions.length, 3);
  assert.ok(redemptions.every((r) => r.credit_micros === 2_500_000 && r.plan_id === "pro"));
});

forEachDatabase("expired, revoked, unknown and malformed codes grant nothing", async (store) => {
  const u = await user(store.db, "bob");
  const now = Date.now();
  const expired = await createAccessCode(store.db, { ...grantOf, expiresAt: now - 1 });
  assert.equal(await redeemAccessCode(store.db, expired.code, u.id, now), null);
  const revoked = await createAccessCode(store.db, grantOf);
  assert.equal(await revokeAccessCode(store.db, revoked.row.id), true);
  assert.equal(await revokeAccessCode(store.db, revoked.row.id), false, "revoking twice changes nothing");
  assert.equal(await redeemAccessCode(store.db, revoked.code, u.id), null);
  assert.equal(await redeemAccessCode(store.db, "AAAA-BBBB-CCCC-DDDD", u.id), null);
  assert.equal(await redeemAccessCode(store.db, "x' OR 1=1 --", u.id), null);
  assert.equal((await listRedemptions(store.db, { userId: u.id })).length, 0);
});
