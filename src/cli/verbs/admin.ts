/**
 * `sputnik admin …`: account administration from the shell, for headless installs and emergencies.
 * Works on the same data directory / database as `sputnik serve` (running or not).
 *
 *   printf '%s\n' "$PASSWORD" | sputnik admin create-user --admin --username alice --password-stdin
 *   sputnik admin attack-mode on --signup-mode closed
 *   sputnik admin signup-mode approval
 *   sputnik admin unlock-user --username alice
 *   sputnik admin create-key --user alice --expires 30d     (and list-keys, revoke-key: ./adminKeys.ts)
 *   sputnik admin reset-second-factor --username alice      (and require-second-factor, password-reset-link: ./adminSecurity.ts)
 */
import { createInterface } from "node:readline";
import type { Command } from "commander";
import { PasswordHasher, MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH } from "../../auth/passwords.ts";
import { attackSignupModeSchema, signupModeSchema, type SignupSettings } from "../../auth/signupMode.ts";
import { emailSchema, usernameSchema } from "../../auth/users.ts";
import { createUser } from "../../commands/createUser.ts";
import { changeAttackMode, changeSignupMode } from "../../commands/signupSettings.ts";
import { unlockUser } from "../../commands/unlockUser.ts";
import type { Config } from "../../config/schema.ts";
import { openDatabase, type Store } from "../../store/database.ts";
import { cliConfig } from "../options.ts";
import { registerKeyCommands } from "./adminKeys.ts";
import { registerSecurityCommands } from "./adminSecurity.ts";

export function registerAdminCommand(program: Command): void {
  const admin = program.command("admin").description("manage accounts and sign-up from the command line");

  admin
    .command("create-user")
    .description("create an account (active at once; the first account on an install is always admin)")
    .requiredOption("--username <name>", "user name (3-32 letters, digits, _ . -)")
    .option("--email <address>", "e-mail address")
    .option("--admin", "make the account an admin")
    .option("--password-stdin", "read the password from standard input instead of prompting")
    .action(async (flags: { username: string; email?: string; admin?: boolean; passwordStdin?: boolean }) => {
      const username = parseOrThrow(usernameSchema, flags.username, "--username");
      const email = flags.email === undefined ? null : parseOrThrow(emailSchema, flags.email, "--email");
      const password = flags.passwordStdin ? await readStdinPassword() : await promptPassword();
      checkPassword(password);
      const config = cliConfig(program);
      await withStore(config, async (store) => {
        const user = await createUser(
          { db: store.db, hasher: new PasswordHasher(config.auth.passwordHashing) },
          { username, email, password, role: flags.admin ? "admin" : "user", by: null, ip: null },
        );
        process.stdout.write(`created ${user.role} account ${user.username} (${user.id})\n`);
      });
    });

  admin
    .command("unlock-user")
    .description("clear an account's sign-in throttling (after someone guessed at its password)")
    .requiredOption("--username <name>", "the account's user name")
    .action(async (flags: { username: string }) => {
      const username = parseOrThrow(usernameSchema, flags.username, "--username");
      const config = cliConfig(program);
      await withStore(config, async (store) => {
        const { user, cleared } = await unlockUser(store.db, null, username);
        process.stdout.write(`unlocked ${user.username}: ${cleared} sign-in throttle ${cleared === 1 ? "entry" : "entries"} cleared\n`);
      });
    });

  admin
    .command("signup-mode <mode>")
    .description("set who may sign up: open, approval, code or closed")
    .action(async (mode: string) => {
      const parsed = parseOrThrow(signupModeSchema, mode, "mode");
      const config = cliConfig(program);
      await withStore(config, async (store) => printSettings(await changeSignupMode(store.db, null, parsed)));
    });

  admin
    .command("attack-mode <on|off>")
    .description("switch attack mode: sign-up restricted at once, limits tightened")
    .option("--signup-mode <mode>", "sign-up while attack mode is on: code or closed")
    .action(async (state: string, flags: { signupMode?: string }) => {
      if (state !== "on" && state !== "off") throw new Error(`attack-mode takes "on" or "off", got "${state}"`);
      const signupMode = flags.signupMode === undefined ? undefined : parseOrThrow(attackSignupModeSchema, flags.signupMode, "--signup-mode");
      const config = cliConfig(program);
      await withStore(config, async (store) => printSettings(await changeAttackMode(store.db, null, { enabled: state === "on", signupMode })));
    });

  registerKeyCommands(admin, program);
  registerSecurityCommands(admin, program);
}

async function withStore(config: Config, body: (store: Store) => Promise<void>): Promise<void> {
  const store = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir });
  try {
    await body(store);
  } finally {
    await store.close();
  }
}

function printSettings(settings: SignupSettings): void {
  const attack = settings.attack.enabled ? `on (sign-up ${settings.attack.signupMode})` : "off";
  process.stdout.write(`sign-up mode: ${settings.mode}; attack mode: ${attack}; in force: ${settings.effective}\n`);
}

function parseOrThrow<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: { issues: Array<{ message: string }> } } }, value: string, name: string): T {
  const result = schema.safeParse(value);
  if (!result.success) throw new Error(`${name}: ${result.error.issues[0]?.message ?? "invalid value"}`);
  return result.data;
}

function checkPassword(password: string): void {
  if (password.length < MIN_PASSWORD_LENGTH) throw new Error(`the password must have at least ${MIN_PASSWORD_LENGTH} characters`);
  if (password.length > MAX_PASSWORD_LENGTH) throw new Error(`the password must have at most ${MAX_PASSWORD_LENGTH} characters`);
}

/** The first line of standard input (so `echo "$PW" |` works; the password never appears in argv). */
async function readStdinPassword(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8").split(/\r?\n/)[0] ?? "";
}

/** Asks twice on the terminal without echoing. */
async function promptPassword(): Promise<string> {
  if (!process.stdin.isTTY) throw new Error("no terminal to ask for the password on: pass --password-stdin and pipe it in");
  const first = await askHidden("Password: ");
  const second = await askHidden("Repeat password: ");
  if (first !== second) throw new Error("the passwords do not match");
  return first;
}

function askHidden(question: string): Promise<string> {
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: true });
    // Print the question, then swallow the echo of what is typed.
    process.stdout.write(question);
    const output = rl as unknown as { _writeToOutput: (s: string) => void };
    output._writeToOutput = () => {};
    rl.question("", (answer) => {
      rl.close();
      process.stdout.write("\n");
      resolve(answer);
    });
  });
}
