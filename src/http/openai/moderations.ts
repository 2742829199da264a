import { randomBytes } from "node:crypto";
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import type { Moderation } from "../../moderation/moderation.ts";
import { authorize } from "../../policies/index.ts";
import { presentModerations } from "../../presenters/moderation.ts";

/** Longest text per input, and inputs per request: each may cost a classifier call per policy. */
const MAX_INPUT_CHARS = 32_000;
const MAX_INPUTS = 32;

const textInput = z.string().max(MAX_INPUT_CHARS);
const moderationsBody = z
  .object({
    input: z.union([
      textInput,
      z
        .array(z.union([textInput, z.object({ type: z.literal("text"), text: textInput }).loose()]))
        .min(1)
        .max(MAX_INPUTS),
    ]),
    /** A served model id: that model's policies; anything else (OpenAI's "omni-moderation-latest"): all of them. */
    model: z.string().min(1).max(128).optional(),
  })
  .loose();

/** The `model` answered when the request names none (or names no served model). */
export const MODERATION_MODEL = "sputnik-moderation";

/**
 * POST /v1/moderations in OpenAI's shape, answered by this server's moderation policies
 * (src/moderation): one result per input text, a category per policy (named after it), flagged
 * when any policy trips. Word and pattern policies score 1 on a hit; classifier policies pass on
 * their classifier's score. So another Sputnik, or any client of OpenAI's moderation API, can use
 * the policies configured here as its classifier.
 */
export function registerModerations(app: FastifyInstance, deps: { moderation: Moderation }): void {
  app.post("/v1/moderations", { config: { access: "user-or-local" } }, async (request) => {
    authorize(request.actor, "moderation.check");
    const body = moderationsBody.parse(request.body);
    const texts = typeof body.input === "string" ? [body.input] : body.input.map((item) => (typeof item === "string" ? item : item.text));
    const results = await deps.moderation.classify(texts, body.model);
    return presentModerations(`modr-${randomBytes(12).toString("hex")}`, body.model ?? MODERATION_MODEL, results);
  });
}
