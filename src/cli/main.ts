import { Command } from "commander";
import { registerAdminCommand } from "./verbs/admin.ts";
import { registerAuditCommand } from "./verbs/audit.ts";
import { registerBackupCommands } from "./verbs/backup.ts";
import { registerChatCommand } from "./verbs/chat.ts";
import { registerModelsCommand } from "./verbs/models.ts";
import { registerPullCommand } from "./verbs/pull.ts";
import { registerServeCommand } from "./verbs/serve.ts";
import { cliConfig } from "./options.ts";
import { modelsDirOf } from "../config/load.ts";

const program = new Command()
  .name("sputnik")
  .description("Self-hostable AI assistant service: local reasoning models, an OpenAI/DeepSeek-compatible API and a chat web app.")
  .option("-c, --config <file>", "JSON config file")
  .option("--data-dir <dir>", "data directory (database, models, caches)")
  .option("--models-dir <dir>", "models directory (default: <data-dir>/models)")
  .showHelpAfterError();

const modelsDir = () => modelsDirOf(cliConfig(program));

registerServeCommand(program);
registerChatCommand(program);
registerPullCommand(program, { modelsDir });
registerModelsCommand(program, { modelsDir });
registerAdminCommand(program);
registerBackupCommands(program);
registerAuditCommand(program);

program.parseAsync(process.argv).catch((error: unknown) => {
  console.error(`sputnik: ${(error as Error).message}`);
  process.exit(1);
});
