import assert from "node:assert/strict";
import { forEachDatabase } from "../../test/support/databases.ts";
import { createSession, pruneSessions, resolveSession, revokeSession } from "./sessions.ts";
import { insertUser, updateUser } from "./users.ts";

const lifetime = { maxAgeMs: 10_000, idleMs: 4_000 };

forEachDatabase("sessions: stored hashed; end by expiry, idleness, revocation or a disabled account; pruned later", async (store) => {
  const db = store.db;
  const user = await insertUser(db, { username: "sam", email: null, passwordHash: "x", role: "user", status: "active", planId: "free" });
  const t0 = 1_000_000;
  const { token, session } = await createSession(db, { userId: user.id, userAgent: "test", ip: "127.0.0.1", lifetime }, t0);
  assert.match(token, /^[A-Za-z0-9_-]{43}$/);
  assert.ok(!JSON.stringify(await db.selectFrom("sessions").selectAll().execute()).includes(token), "no clear token stored");
  assert.equal((await resolveSession(db, token, lifetime, t0 + 1000))?.user.id, user.id);
  assert.equal(await resolveSession(db, "x' OR 1=1 --", lifetime, t0 + 1000), undefined);

  // last_seen_at is only rewritten once a minute, so here idleness counts from creation.
  assert.equal(await resolveSession(db, token, lifetime, t0 + 4_500), undefined, "idle too long");
  const second = await createSession(db, { userId: user.id, userAgent: null, ip: null, lifetime }, t0);
  assert.equal(await resolveSession(db, second.token, lifetime, t0 + 10_001), undefined, "past its maximum age");

  const third = await createSession(db, { userId: user.id, userAgent: null, ip: null, lifetime }, t0);
  await updateUser(db, user.id, { status: "disabled" });
  assert.equal(await resolveSession(db, third.token, lifetime, t0 + 1), undefined, "account disabled");
  await updateUser(db, user.id, { status: "active" });
  await revokeSession(db, third.session.id, t0 + 2);
  assert.equal(await resolveSession(db, third.token, lifetime, t0 + 3), undefined, "revoked");

  await pruneSessions(db, 1_000, t0 + 20_000);
  assert.deepEqual(await db.selectFrom("sessions").select("id").execute(), [], "ended sessions are pruned");
  assert.equal(session.user_id, user.id);
});
