/**
 * `sputnik admin …` against a real data directory, and the headless story it exists for: create the
 * first admin from the shell, then serve on all interfaces and sign in as that admin.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { LoginThrottle } from "../src/auth/loginThrottle.ts";
import { getSignupSettings } from "../src/auth/signupMode.ts";
import { loadConfig } from "../src/config/load.ts";
import { ensureModel } from "../src/gguf/catalog.ts";
import { startService } from "../src/runtime/startService.ts";
import { openDatabase } from "../src/store/database.ts";
import { AppClient } from "./support/appClient.ts";

const bin = fileURLToPath(new URL("../bin/sputnik.js", import.meta.url));
const PASSWORD = "headless-admin-password";
let dataDir: string;

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "sputnik-cli-admin-"));
});
after(() => rm(dataDir, { recursive: true, force: true }));

function sputnik(args: string[], stdin = ""): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [bin, "--data-dir", dataDir, ...args], { env: { ...process.env, SPUTNIK_GPU: "off" } }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin!.end(stdin);
  });
}

// Each run of the CLI is a fresh Node process (seconds on a busy machine), so the runs are few.
test("create-user makes the first account admin and later ones what was asked; attack mode switches from the shell", async () => {
  const first = await sputnik(["admin", "create-user", "--username", "Root", "--email", "root@example.com", "--password-stdin"], `${PASSWORD}\n`);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /^created admin account root \(/);
  const second = await sputnik(["admin", "create-user", "--username", "helper", "--password-stdin"], "another-password\n");
  assert.match(second.stdout, /created user account helper/);
  const taken = await sputnik(["admin", "create-user", "--username", "ROOT", "--password-stdin"], "whatever-123\n");
  assert.deepEqual([taken.code, taken.stderr.trim()], [1, "sputnik: That user name is already taken."]);
  const attack = await sputnik(["admin", "attack-mode", "on", "--signup-mode", "closed"]);
  // Nobody chose a sign-up mode: the shipped default, approval, is what attack mode tightens.
  assert.match(attack.stdout, /sign-up mode: approval; attack mode: on \(sign-up closed\); in force: closed/);

  const store = await openDatabase({ dataDir });
  try {
    const users = await store.db.selectFrom("users").select(["username", "role", "password_hash"]).orderBy("username").execute();
    assert.deepEqual(users.map((u) => [u.username, u.role]), [["helper", "user"], ["root", "admin"]]);
    assert.ok(users.every((u) => u.password_hash.startsWith("$argon2id$v=19$m=19456,t=2,p=1$")), "OWASP-grade hashes");
    const audit = await store.db.selectFrom("audit_log").select(["action", "actor_user_id"]).orderBy("created_at").orderBy("id").execute();
    assert.deepEqual(audit.map((a) => [a.action, a.actor_user_id]), [["user.create", null], ["user.create", null], ["settings.attack_mode", null]]);
    const settings = await getSignupSettings(store.db);
    assert.deepEqual([settings.attack.enabled, settings.effective], [true, "closed"]);
  } finally {
    await store.close();
  }
});

test("unlock-user clears an account's sign-in throttling from the shell", async () => {
  const store = await openDatabase({ dataDir });
  const attempt = async () => {
    const user = await store.db.selectFrom("users").select("id").where("username", "=", "helper").executeTakeFirstOrThrow();
    return { account: LoginThrottle.accountKey(user.id, "helper"), ip: "192.0.2.9", device: null };
  };
  try {
    // Strangers guessed at "helper" from many addresses: a new device is now refused for a while.
    const throttle = new LoginThrottle(store.db);
    for (let i = 0; i < 12; i++) await throttle.failed({ ...(await attempt()), ip: `203.0.113.${i}` });
    assert.ok((await throttle.check(await attempt())).waitMs > 0, "throttled before");
    const unlocked = await sputnik(["admin", "unlock-user", "--username", "helper"]);
    assert.equal(unlocked.code, 0, unlocked.stderr);
    assert.match(unlocked.stdout, /^unlocked helper: \d+ sign-in throttle entr(y|ies) cleared/);
    assert.equal((await throttle.check(await attempt())).waitMs, 0, "free to sign in after");
    const unknown = await sputnik(["admin", "unlock-user", "--username", "nobody"]);
    assert.deepEqual([unknown.code, unknown.stderr.trim()], [1, "sputnik: No account is named nobody."]);
    const audit = await store.db.selectFrom("audit_log").select(["action", "actor_user_id"]).where("action", "=", "user.unlock").execute();
    assert.deepEqual(audit, [{ action: "user.unlock", actor_user_id: null }]);
  } finally {
    await store.close();
  }
});

test("with an admin created from the shell, the service serves all interfaces and the admin signs in", async (t) => {
  const config = loadConfig({
    env: {},
    flags: { host: "0.0.0.0", port: 0, dataDir, models: [await ensureModel("scripted")], threads: 1, parallel: 1, contextSize: 1024, pullDefaultModel: false, logLevel: "silent" },
  });
  const service = await startService(config);
  t.after(() => service.close());
  const port = new URL(service.url).port;
  const browser = new AppClient(`http://127.0.0.1:${port}`);
  const login = await browser.post("/api/auth/login", { login: "root@example.com", password: PASSWORD });
  assert.equal(login.status, 200, login.text);
  assert.equal(login.body.user.role, "admin");
  // No local mode on a server bound beyond loopback, even for a loopback client.
  assert.equal((await new AppClient(`http://127.0.0.1:${port}`).get("/v1/models")).status, 401);
});
