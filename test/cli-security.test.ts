/**
 * `sputnik admin reset-second-factor | require-second-factor | password-reset-link` against a real
 * data directory: the operator's ways out when the app cannot help.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { findUsablePasswordReset } from "../src/auth/passwordResets.ts";
import { replaceRecoveryCodes } from "../src/auth/recoveryCodes.ts";
import { isAdminSecondFactorRequired } from "../src/auth/secondFactorSetting.ts";
import { hasSecondFactor, saveUnconfirmedTotp } from "../src/auth/totp.ts";
import { insertUser } from "../src/auth/users.ts";
import { openDatabase } from "../src/store/database.ts";

const bin = fileURLToPath(new URL("../bin/sputnik.js", import.meta.url));
let dataDir: string;

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "sputnik-cli-security-"));
});
after(() => rm(dataDir, { recursive: true, force: true }));

function sputnik(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, "--data-dir", dataDir, ...args], { env: { ...process.env, SPUTNIK_GPU: "off" } }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

// Each run of the CLI is a fresh Node process (seconds on a busy machine): the three run side by
// side (SQLite in WAL mode lets them; each write waits its turn).
test("an operator turns off a lost second factor, requires one for admins, and makes a reset link", async () => {
  const store = await openDatabase({ dataDir });
  let userId: string;
  try {
    const user = await insertUser(store.db, { username: "alice", email: null, passwordHash: "x", role: "admin", status: "active", planId: "free" });
    userId = user.id;
    await saveUnconfirmedTotp(store.db, user.id, "v1.sealed");
    await store.db.updateTable("totp_credentials").set({ confirmed_at: Date.now() }).execute();
    await replaceRecoveryCodes(store.db, user.id);
  } finally {
    await store.close();
  }

  const [reset, require, link] = await Promise.all([
    sputnik(["admin", "reset-second-factor", "--username", "alice"]),
    sputnik(["admin", "require-second-factor", "on"]),
    sputnik(["admin", "password-reset-link", "--username", "alice"]),
  ]);
  assert.deepEqual([reset.code, reset.stdout], [0, "two-step verification turned off for alice\n"], reset.stderr);
  assert.deepEqual([require.code, require.stdout], [0, "two-step verification for administrators: required\n"], require.stderr);
  assert.equal(link.code, 0, link.stderr);
  const token = /\/reset-password#([A-Za-z0-9_-]{43})\n/.exec(link.stdout)?.[1];
  assert.ok(token, link.stdout);

  const after = await openDatabase({ dataDir });
  try {
    assert.equal(await hasSecondFactor(after.db, userId), false);
    assert.equal((await after.db.selectFrom("recovery_codes").select("id").execute()).length, 0);
    assert.equal(await isAdminSecondFactorRequired(after.db), true);
    assert.equal((await findUsablePasswordReset(after.db, token))?.user_id, userId);
    const audit = await after.db.selectFrom("audit_log").select(["action", "actor_user_id"]).orderBy("action").execute();
    assert.deepEqual(audit.map((a) => [a.action, a.actor_user_id]), [
      ["second_factor.disable", null],
      ["settings.require_admin_second_factor", null],
      ["user.password_reset_issue", null],
    ]);
  } finally {
    await after.close();
  }
});
