/**
 * `sputnik admin create-key | list-keys | revoke-key` end to end: the CLI in its own process on the
 * data directory of a running service, and the official `openai` SDK as the client of the key.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";
import { insertUser } from "../src/auth/users.ts";
import { startTestService, type TestService } from "./support/service.ts";

const bin = fileURLToPath(new URL("../bin/sputnik.js", import.meta.url));
let service: TestService;

before(async () => {
  service = await startTestService({ models: ["scripted"] });
  // Signs in with keys only: no password needed.
  await insertUser(service.store.db, { username: "alice", email: null, passwordHash: "-", role: "user", status: "active", planId: null });
});
after(() => service?.stop());

function sputnik(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, "--data-dir", service.dataDir, ...args], { env: { ...process.env, SPUTNIK_GPU: "off" } }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

function client(apiKey: string): OpenAI {
  return new OpenAI({ baseURL: `${service.url}/v1`, apiKey, maxRetries: 0 });
}

const ask = (apiKey: string) => client(apiKey).chat.completions.create({ model: "scripted", max_tokens: 8, messages: [{ role: "user", content: "Hi" }] });

// Each CLI run is a fresh Node process (seconds on a busy machine): independent runs go together.
test("a key made by the CLI works with the openai SDK, list-keys never shows it, and revoke-key stops it at once", async () => {
  const [scoped, plain] = await Promise.all([
    sputnik(["admin", "create-key", "--user", "Alice", "--name", "ci runner", "--models", "scripted, other", "--expires", "30d"]),
    sputnik(["admin", "create-key", "--user", "alice", "--json"]),
  ]);
  assert.equal(scoped.code, 0, scoped.stderr);
  const [, id, key] = /^created API key (\S+) for alice \(name "ci runner", models scripted,other, expires \S+\):\n(sk-\w{48})\nThis is the only time/.exec(scoped.stdout) ?? [];
  assert.ok(id && key, scoped.stdout);
  assert.equal(plain.code, 0, plain.stderr);
  const other = JSON.parse(plain.stdout) as { id: string; key: string; user: string; name: string; models: string[] | null; expires_at: string | null };
  assert.deepEqual([other.user, other.name, other.models, other.expires_at], ["alice", "cli", null, null]);

  const answer = await ask(key);
  assert.equal(answer.model, "scripted");
  assert.ok(answer.usage!.completion_tokens > 0);

  const listed = await sputnik(["admin", "list-keys", "--user", "alice"]);
  assert.equal(listed.code, 0, listed.stderr);
  const lines = listed.stdout.trim().split("\n");
  assert.match(lines[0]!, /^ID\s+USER\s+NAME\s+PREFIX\s+MODELS\s+CREATED\s+EXPIRES\s+LAST USED\s+REVOKED$/);
  const row = lines.find((l) => l.startsWith(id))!;
  assert.match(row, new RegExp(`^${id}\\s+alice\\s+ci runner\\s+${key.slice(0, 11)}\\s+scripted,other\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\dZ\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\dZ\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\dZ\\s+-$`));
  assert.ok(lines.some((l) => l.startsWith(other.id) && /\sall\s+\S+ \S+\s+never\s+-\s+-$/.test(l)), listed.stdout);
  assert.ok(!listed.stdout.includes(key) && !listed.stdout.includes(other.key), "no secret in the listing");
  assert.ok(!listed.stdout.includes(key.slice(11, 30)), "not even past the prefix");

  const revoked = await sputnik(["admin", "revoke-key", id]);
  assert.equal(revoked.code, 0, revoked.stderr);
  assert.equal(revoked.stdout, `revoked API key ${id} (${key.slice(0, 11)}…, "ci runner")\n`);
  // Keys are looked up on every request (no cache): the very next one is refused.
  await assert.rejects(ask(key), (e: unknown) => e instanceof OpenAI.AuthenticationError && e.status === 401);
  assert.ok((await ask(other.key)).usage, "the other key still works");

  const audit = await service.store.db.selectFrom("audit_log").select(["action", "actor_user_id", "target_id", "details"]).where("action", "like", "api_key.%").orderBy("created_at").orderBy("id").execute();
  assert.deepEqual(audit.map((a) => [a.action, a.actor_user_id, a.target_id]).sort(), [["api_key.create", null, id], ["api_key.create", null, other.id], ["api_key.revoke", null, id]].sort());
  assert.ok(audit.every((a) => !a.details.includes(key) && !a.details.includes(other.key)), "no secret in the audit log");
});
