/**
 * `sputnik admin reset-second-factor | require-second-factor | password-reset-link`: the ways out
 * when the app cannot help (an owner who lost both authenticator and recovery codes; the last admin
 * locked out of the admin area; a headless install with nobody signed in to issue a link).
 *
 *   sputnik admin reset-second-factor --username alice
 *   sputnik admin require-second-factor on
 *   sputnik admin password-reset-link --username alice
 */
import type { Command } from "commander";
import { findUserByLogin, usernameSchema } from "../../auth/users.ts";
import { issuePasswordReset } from "../../commands/passwords.ts";
import { resetSecondFactor, setAdminSecondFactorRequired } from "../../commands/secondFactor.ts";
import type { Config } from "../../config/schema.ts";
import { ServiceError } from "../../errors.ts";
import { presentPasswordReset } from "../../presenters/security.ts";
import { openDatabase, type Store } from "../../store/database.ts";
import { cliConfig } from "../options.ts";

export function registerSecurityCommands(admin: Command, program: Command): void {
  admin
    .command("reset-second-factor")
    .description("turn off an account's two-step verification (lost phone and recovery codes); the owner signs in with the password and sets it up again")
    .requiredOption("--username <name>", "the account's user name")
    .action(async (flags: { username: string }) => {
      const username = parseUsername(flags.username);
      await withStore(cliConfig(program), async (store) => {
        const user = await resetSecondFactor(store.db, null, username);
        process.stdout.write(`two-step verification turned off for ${user.username}\n`);
      });
    });

  admin
    .command("require-second-factor <on|off>")
    .description("require two-step verification for administrators (admins without it lose admin rights until they set it up)")
    .action(async (state: string) => {
      if (state !== "on" && state !== "off") throw new Error(`require-second-factor takes "on" or "off", got "${state}"`);
      await withStore(cliConfig(program), async (store) => {
        const required = await setAdminSecondFactorRequired(store.db, null, state === "on");
        process.stdout.write(`two-step verification for administrators: ${required ? "required" : "optional"}\n`);
      });
    });

  admin
    .command("password-reset-link")
    .description("make a one-time password-reset link for an account (valid one hour; shown this once only)")
    .requiredOption("--username <name>", "the account's user name")
    .action(async (flags: { username: string }) => {
      const username = parseUsername(flags.username);
      const config = cliConfig(program);
      await withStore(config, async (store) => {
        const user = await findUserByLogin(store.db, username);
        if (!user) throw new ServiceError("not_found", `No account is named ${username}.`, { code: "not_found", param: "username" });
        const { token, row } = await issuePasswordReset(store.db, null, user.id);
        const shown = presentPasswordReset(row, token, config.publicUrl ?? null);
        process.stdout.write(
          `password-reset link for ${user.username}, valid until ${shown.expires_at}, works once:\n` +
            `${shown.url ?? `<your server's address>${shown.path}`}\n` +
            (shown.url ? "" : "(set publicUrl in the config to get the whole address)\n"),
        );
      });
    });
}

function parseUsername(value: string): string {
  const result = usernameSchema.safeParse(value);
  if (!result.success) throw new Error(`--username: ${result.error.issues[0]?.message ?? "invalid value"}`);
  return result.data;
}

async function withStore(config: Config, body: (store: Store) => Promise<void>): Promise<void> {
  const store = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir });
  try {
    await body(store);
  } finally {
    await store.close();
  }
}
