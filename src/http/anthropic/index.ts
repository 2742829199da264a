import type { FastifyInstance } from "fastify";
import type { ModelRouter } from "../../engines/router.ts";
import type { Serving } from "../../serving/completion.ts";
import { installAnthropicErrorHandlers } from "./errors.ts";
import { registerCountTokens } from "./countTokens.ts";
import { registerMessages } from "./messages.ts";
import { registerAnthropicModels } from "./models.ts";

/** Where the Anthropic-compatible API lives (DeepSeek's path): clients set their base URL to `<server>/anthropic`. */
export const ANTHROPIC_PREFIX = "/anthropic";

/**
 * The Anthropic Messages surface, in its own encapsulated scope so that every error of its routes
 * (auth, validation, pipeline refusals) and its unknown paths answer in Anthropic's shape. The
 * server-wide hooks (auth, flood guard, attack mode, shutdown) run for it as for /v1.
 */
export async function registerAnthropic(
  app: FastifyInstance,
  deps: { serving: Serving; router: ModelRouter; startedAt: number; pingMs?: number },
): Promise<void> {
  await app.register(
    async (scope) => {
      installAnthropicErrorHandlers(scope);
      registerMessages(scope, { serving: deps.serving, ...(deps.pingMs !== undefined ? { pingMs: deps.pingMs } : {}) });
      registerCountTokens(scope, { serving: deps.serving });
      registerAnthropicModels(scope, { router: deps.router, startedAt: deps.startedAt });
    },
    { prefix: ANTHROPIC_PREFIX },
  );
}
