import { z } from "zod";
import { compileSafePattern } from "./regexSafety.ts";

/**
 * Moderation policies (config key `moderation`, env `SPUTNIK_MODERATION` as JSON). Each policy
 * says what it looks for (blocked words, blocked patterns, a classifier), where (the input, the
 * output, both; which models), and what happens when it trips (warn or withhold). See the README's
 * "Moderation" section.
 *
 *   "moderation": { "policies": [
 *     { "name": "no-secrets", "applyTo": "output", "action": "withhold", "blockPatterns": ["\\bsk-[a-z0-9]{20,}"],
 *       "reason": "API keys are not repeated here." },
 *     { "name": "guard", "applyTo": "both", "action": "warn",
 *       "classifier": { "url": "http://llama-guard:8000/v1", "categories": ["S1", "S9"] } }
 *   ] }
 */

/** A served model (local or remote, by its id) asked to judge the text with a rubric. */
const servedClassifierSchema = z
  .object({
    model: z.string().min(1).max(128),
    /**
     * The system prompt; the text to judge is the user message. The model must answer with one
     * word: `flagged` (or `unsafe`, `yes`) or `safe` (or `no`) — Llama Guard's "unsafe\nS1" works.
     */
    rubric: z.string().min(1).max(8000).optional(),
    /** Longest text sent per call; longer inputs are judged in pieces. */
    maxChars: z.number().int().min(100).max(100_000).default(4000),
    timeoutMs: z.number().int().min(100).max(600_000).default(30_000),
  })
  .strict();

/** An OpenAI-compatible `/v1/moderations` endpoint (a Llama Guard deployment, another Sputnik). */
const upstreamClassifierSchema = z
  .object({
    /** The base URL, as for remote models: requests go to `<url>/moderations`. */
    url: z
      .string()
      .url()
      .refine((u) => /^https?:$/.test(new URL(u).protocol), "must be an http:// or https:// URL"),
    apiKey: z.string().min(1).optional(),
    /** Sent as `model`; the upstream's default when absent. */
    model: z.string().min(1).max(128).optional(),
    /** Only these categories count; absent: the upstream's own `flagged`. */
    categories: z.array(z.string().min(1).max(128)).max(64).optional(),
    maxChars: z.number().int().min(100).max(100_000).default(4000),
    timeoutMs: z.number().int().min(100).max(600_000).default(30_000),
  })
  .strict();

export const classifierConfigSchema = z.union([servedClassifierSchema, upstreamClassifierSchema]);
export type ClassifierConfig = z.infer<typeof classifierConfigSchema>;
export type ServedClassifierConfig = z.infer<typeof servedClassifierSchema>;
export type UpstreamClassifierConfig = z.infer<typeof upstreamClassifierSchema>;

const wordList = z.array(z.string().trim().min(1).max(200)).max(10_000);

export const policyConfigSchema = z
  .object({
    /** Shown to users in notices, a label of the metric and a category of /v1/moderations. */
    name: z
      .string()
      .min(1)
      .max(64)
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "letters, digits, '_', '.', '-' (starting with a letter or digit)"),
    applyTo: z.enum(["input", "output", "both"]).default("both"),
    action: z.enum(["warn", "withhold"]).default("withhold"),
    /** Shown to users with the notice; default: what tripped ("a blocked word", "the classifier"). */
    reason: z.string().trim().min(1).max(300).optional(),
    /** Only these served models; absent: all of them. */
    models: z.array(z.string().min(1).max(128)).min(1).max(256).optional(),
    blockWords: wordList.default([]),
    /** Regular expressions (case-insensitive, Unicode), checked for bounded matching time at start. */
    blockPatterns: z.array(z.string().min(1).max(500)).max(200).default([]),
    /** Phrases that exempt a hit inside them. */
    allowWords: wordList.default([]),
    classifier: classifierConfigSchema.optional(),
    /** Output: whether the model's reasoning is checked too (it is shown to users). */
    checkReasoning: z.boolean().default(true),
    /** A classifier that cannot be reached counts as a hit (default: it is skipped, and logged). */
    failClosed: z.boolean().default(false),
  })
  .strict()
  .superRefine((policy, ctx) => {
    if (policy.blockWords.length === 0 && policy.blockPatterns.length === 0 && !policy.classifier) {
      ctx.addIssue({ code: "custom", message: "a policy needs blockWords, blockPatterns or a classifier" });
    }
    policy.blockPatterns.forEach((pattern, i) => {
      try {
        compileSafePattern(pattern);
      } catch (error) {
        ctx.addIssue({ code: "custom", path: ["blockPatterns", i], message: `pattern ${JSON.stringify(pattern)} refused: ${(error as Error).message}` });
      }
    });
  });

export type PolicyConfig = z.infer<typeof policyConfigSchema>;

export const moderationConfigSchema = z
  .object({
    policies: z
      .array(policyConfigSchema)
      .max(64)
      .default([])
      .superRefine((policies, ctx) => {
        const seen = new Set<string>();
        policies.forEach((p, i) => {
          if (seen.has(p.name)) ctx.addIssue({ code: "custom", path: [i, "name"], message: `policy name '${p.name}' is used twice` });
          seen.add(p.name);
        });
      }),
  })
  .strict()
  .prefault({});

export type ModerationConfig = z.infer<typeof moderationConfigSchema>;
