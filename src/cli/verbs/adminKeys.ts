/**
 * `sputnik admin create-key | list-keys | revoke-key`: API keys from the shell (src/commands/apiKeys.ts).
 *
 *   sputnik admin create-key --user alice --name ci --models scripted,qwen --expires 30d
 *   sputnik admin list-keys --user alice
 *   sputnik admin revoke-key 0193f0c2-…
 */
import type { Command } from "commander";
import { keyModels } from "../../auth/apiKeys.ts";
import { usernameSchema } from "../../auth/users.ts";
import { createKeyForUser, listKeysWithOwners, revokeKeyById, type ApiKeyWithOwner } from "../../commands/apiKeys.ts";
import type { Config } from "../../config/schema.ts";
import { openDatabase, type Store } from "../../store/database.ts";
import { parseExpiry } from "../expiry.ts";
import { cliConfig } from "../options.ts";

export function registerKeyCommands(admin: Command, program: Command): void {
  admin
    .command("create-key")
    .description("make an API key for an account and print it (shown this once only)")
    .requiredOption("--user <name>", "the account that owns the key")
    .option("--name <label>", "a label to tell keys apart", "cli")
    .option("--models <ids>", "comma-separated model ids the key may use (default: every model the plan allows)")
    .option("--expires <when>", "a duration (12h, 30d, 8w) or an ISO date/time (2026-01-31, 2026-01-31T18:00:00Z); default: never")
    .option("--json", "print JSON (with the key) instead of text")
    .action(async (flags: { user: string; name: string; models?: string; expires?: string; json?: boolean }) => {
      const username = parseUsername(flags.user);
      const models = flags.models === undefined ? null : flags.models.split(",").map((m) => m.trim());
      const expiresAt = flags.expires === undefined ? null : parseExpiry(flags.expires);
      await withStore(cliConfig(program), async (store) => {
        const { key, row, user } = await createKeyForUser(store.db, { username, name: flags.name, models, expiresAt, by: null });
        if (flags.json) {
          process.stdout.write(JSON.stringify({ id: row.id, key, user: user.username, name: row.name, models: keyModels(row), expires_at: iso(row.expires_at) }) + "\n");
          return;
        }
        process.stdout.write(
          `created API key ${row.id} for ${user.username} (name "${row.name}", models ${modelsText(row)}, expires ${iso(row.expires_at) ?? "never"}):\n` +
            `${key}\n` +
            `This is the only time the key is shown: store it now. Revoke it with: sputnik admin revoke-key ${row.id}\n`,
        );
      });
    });

  admin
    .command("list-keys")
    .description("list API keys (never the keys themselves): id, owner, name, models, dates, revoked")
    .option("--user <name>", "only this account's keys")
    .option("--json", "print JSON instead of a table")
    .action(async (flags: { user?: string; json?: boolean }) => {
      const username = flags.user === undefined ? undefined : parseUsername(flags.user);
      await withStore(cliConfig(program), async (store) => {
        const keys = await listKeysWithOwners(store.db, username === undefined ? {} : { username });
        if (flags.json) {
          process.stdout.write(JSON.stringify(keys.map(keyJson), null, 2) + "\n");
          return;
        }
        process.stdout.write(keys.length === 0 ? "no API keys\n" : renderTable(keys) + "\n");
      });
    });

  admin
    .command("revoke-key <id>")
    .description("revoke an API key at once (the next request with it gets 401)")
    .action(async (id: string) => {
      await withStore(cliConfig(program), async (store) => {
        const key = await revokeKeyById(store.db, null, id.trim());
        process.stdout.write(`revoked API key ${key.id} (${key.prefix}…, "${key.name}")\n`);
      });
    });
}

/** Only the prefix (what the web app shows, too): never the key or its hash. */
function keyJson(k: ApiKeyWithOwner) {
  return {
    id: k.id,
    user: k.username,
    name: k.name,
    prefix: k.prefix,
    models: keyModels(k),
    created_at: iso(k.created_at),
    expires_at: iso(k.expires_at),
    last_used_at: iso(k.last_used_at),
    revoked_at: iso(k.revoked_at),
  };
}

function renderTable(keys: ApiKeyWithOwner[]): string {
  const header = ["ID", "USER", "NAME", "PREFIX", "MODELS", "CREATED", "EXPIRES", "LAST USED", "REVOKED"];
  const rows = keys.map((k) => [k.id, k.username, k.name, k.prefix, modelsText(k), day(k.created_at), day(k.expires_at) || "never", day(k.last_used_at) || "-", day(k.revoked_at) || "-"]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows].map((row) => row.map((cell, i) => (i < row.length - 1 ? cell.padEnd(widths[i]!) : cell)).join("  ")).join("\n");
}

function modelsText(key: { models: string | null }): string {
  const models = keyModels(key);
  return models === null ? "all" : models.join(",");
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/** "2025-03-01 12:00Z": minutes are enough in a table. */
function day(ms: number | null): string {
  return ms === null ? "" : new Date(ms).toISOString().slice(0, 16).replace("T", " ") + "Z";
}

function parseUsername(value: string): string {
  const result = usernameSchema.safeParse(value);
  if (!result.success) throw new Error(`--user: ${result.error.issues[0]?.message ?? "invalid value"}`);
  return result.data;
}

async function withStore(config: Config, body: (store: Store) => Promise<void>): Promise<void> {
  const store = await openDatabase({ ...config.database, url: config.databaseUrl, dataDir: config.dataDir });
  try {
    await body(store);
  } finally {
    await store.close();
  }
}
