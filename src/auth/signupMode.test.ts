import assert from "node:assert/strict";
import { test } from "node:test";
import { forEachDatabase } from "../../test/support/databases.ts";
import { changeAttackMode, changeSignupMode } from "../commands/signupSettings.ts";
import { getSignupMode, getSignupSettings, isAttackMode, stricterMode } from "./signupMode.ts";

test("stricterMode orders open < approval < code < closed", () => {
  assert.equal(stricterMode("open", "code"), "code");
  assert.equal(stricterMode("closed", "code"), "closed");
  assert.equal(stricterMode("approval", "code"), "code");
  assert.equal(stricterMode("approval", "open"), "approval");
});

forEachDatabase("sign-up mode: approval by default; a change is in force at once for this process, and audited", async (store) => {
  const db = store.db;
  assert.equal(await getSignupMode(db), "approval");
  assert.equal(await isAttackMode(db), false);
  // Each change a millisecond apart: ids made in one millisecond do not sort in creation order.
  let clock = Date.now();
  const tick = () => ++clock;
  await changeSignupMode(db, null, "open", tick());
  assert.equal(await getSignupMode(db), "open", "no stale cached value");
  await changeSignupMode(db, null, "approval", tick());
  assert.equal(await getSignupMode(db), "approval");
  const settings = await changeAttackMode(db, null, { enabled: true, signupMode: "code" }, tick());
  assert.deepEqual([settings.mode, settings.attack.enabled, settings.effective], ["approval", true, "code"]);
  assert.equal(await isAttackMode(db), true);
  assert.equal(await getSignupMode(db), "code");
  // Attack mode never loosens: closed stays closed.
  await changeSignupMode(db, null, "closed", tick());
  assert.equal(await getSignupMode(db), "closed");
  await changeAttackMode(db, null, { enabled: false }, tick());
  assert.equal(await getSignupMode(db), "closed");
  assert.equal(await isAttackMode(db), false);
  const audit = await db.selectFrom("audit_log").select("action").orderBy("created_at").orderBy("id").execute();
  assert.deepEqual(
    audit.map((a) => a.action),
    ["settings.signup_mode", "settings.signup_mode", "settings.attack_mode", "settings.signup_mode", "settings.attack_mode"],
  );
});

forEachDatabase("another process sees a change after the short cache; unreadable values fail closed", async (store) => {
  const other = await store.openAnother();
  assert.equal(await getSignupMode(other.db), "approval");
  await changeSignupMode(store.db, null, "code");
  await new Promise((r) => setTimeout(r, 2100));
  assert.equal(await getSignupMode(other.db), "code");
  await store.db.updateTable("settings").set({ value: "not json" }).where("key", "=", "signup_mode").execute();
  await store.db.insertInto("settings").values({ key: "attack_mode", value: "{}", updated_at: 0, updated_by: null }).execute();
  const fresh = await store.openAnother();
  const settings = await getSignupSettings(fresh.db);
  assert.equal(settings.mode, "closed");
  assert.equal(settings.attack.enabled, true);
});
