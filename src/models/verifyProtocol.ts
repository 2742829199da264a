/** What verifyChild.ts prints and verify.ts parses: kept apart so neither imports the other. */
import type { GgufSummary } from "./ggufInfo.ts";

export type VerifyResult = { ok: true; info: GgufSummary } | { ok: false; reason: string };

/** Marks the result line, so llama.cpp or library output on stdout cannot be mistaken for it. */
export const RESULT_PREFIX = "@@sputnik-verify@@ ";
