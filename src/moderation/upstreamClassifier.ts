import http, { type IncomingMessage } from "node:http";
import https from "node:https";
import { z } from "zod";
import { assertUrlAllowed, guardedLookup, redact, type NetworkPolicy } from "../models/netguard.ts";
import { ClassifierError, type Classifier, type ClassifierVerdict } from "./classifier.ts";
import type { UpstreamClassifierConfig } from "./config.ts";

/**
 * An OpenAI-compatible `/v1/moderations` endpoint as a classifier (a Llama Guard deployment, the
 * OpenAI API, another Sputnik). Every request leaves through the egress guard
 * (src/models/netguard.ts): only http(s), no credentials in the URL, addresses checked in the
 * socket's own lookup, one connection per request, no redirects followed, a bounded answer. The
 * URL is the operator's (like a remote model's base URL), so its host may be private or loopback.
 */
export class UpstreamModerationClassifier implements Classifier {
  readonly label: string;
  readonly maxChars: number;
  private readonly endpoint: URL;

  constructor(private readonly config: UpstreamClassifierConfig) {
    this.endpoint = new URL(`${config.url.replace(/\/+$/, "")}/moderations`);
    this.label = redact(this.endpoint);
    this.maxChars = config.maxChars;
  }

  async classify(text: string): Promise<ClassifierVerdict> {
    const body = JSON.stringify({ input: text, ...(this.config.model ? { model: this.config.model } : {}) });
    let answer: { status: number; text: string };
    try {
      answer = await post(this.endpoint, body, this.config.apiKey, this.config.timeoutMs);
    } catch (error) {
      throw new ClassifierError(`the moderation endpoint ${this.label} could not be reached: ${(error as Error).message}`, { cause: error });
    }
    if (answer.status < 200 || answer.status > 299) {
      throw new ClassifierError(`the moderation endpoint ${this.label} answered ${answer.status}: ${answer.text.slice(0, 200)}`);
    }
    let parsed: z.infer<typeof moderationAnswer>;
    try {
      parsed = moderationAnswer.parse(JSON.parse(answer.text));
    } catch (error) {
      throw new ClassifierError(`the moderation endpoint ${this.label} sent an answer that is not a moderation result`, { cause: error });
    }
    return verdictOf(parsed.results[0]!, this.config.categories);
  }
}

const moderationAnswer = z.object({
  results: z
    .array(
      z.object({
        flagged: z.boolean(),
        categories: z.record(z.string(), z.boolean().nullable()).default({}),
        category_scores: z.record(z.string(), z.number().nullable()).default({}),
      }),
    )
    .min(1),
});

/** One result as a verdict: with `only`, flagged when one of those categories is. */
export function verdictOf(result: z.infer<typeof moderationAnswer>["results"][number], only: readonly string[] | undefined): ClassifierVerdict {
  const named = Object.entries(result.categories)
    .filter(([name, on]) => on === true && (!only || only.includes(name)))
    .map(([name]) => name);
  const flagged = only ? named.length > 0 : result.flagged;
  const scores = Object.entries(result.category_scores)
    .filter(([name, score]) => score !== null && (!only || only.includes(name)))
    .map(([, score]) => score as number);
  const score = scores.length > 0 ? Math.max(...scores) : flagged ? 1 : 0;
  return { flagged, categories: named, score };
}

/** The answer is a small JSON object; anything larger is not a moderation result. */
const MAX_ANSWER_BYTES = 1024 * 1024;

function post(url: URL, body: string, apiKey: string | undefined, timeoutMs: number): Promise<{ status: number; text: string }> {
  // The operator chose this URL: its host may be in a private network, plain http is allowed.
  const policy: NetworkPolicy = { allowPrivateNetwork: true, allowHttp: true };
  assertUrlAllowed(url, policy);
  const client = url.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const request = client.request(url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "content-length": String(Buffer.byteLength(body)),
        "user-agent": "sputnik-moderation/0.1",
        ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}),
      },
      agent: false,
      lookup: guardedLookup(policy),
      signal: AbortSignal.timeout(timeoutMs),
    });
    request.on("response", (response: IncomingMessage) => {
      // Redirects are not followed: a 3xx is an error like any other non-2xx.
      readBody(response).then((text) => resolve({ status: response.statusCode ?? 502, text }), reject);
    });
    request.on("error", reject);
    request.end(body);
  });
}

async function readBody(response: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_ANSWER_BYTES) {
      response.destroy();
      throw new Error(`the answer is larger than ${MAX_ANSWER_BYTES} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}
