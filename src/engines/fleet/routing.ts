import { createHash } from "node:crypto";
import type { ChatMessage, GenerationRequest } from "../types.ts";
import type { RoutingPolicy } from "./config.ts";

/** A replica that may take the request, with its load as the routing state reports it. */
export interface Candidate {
  /** Stable across gateways (they hash and share it). */
  id: string;
  weight: number;
  maxConcurrency: number;
  /** Requests in flight on it (all gateways, where the state is shared), or its engine's own count when that is larger (src/engines/fleet/loadSignals.ts). */
  load: number;
  /** Share of its KV cache in use, from its engine's metrics; null or absent: unknown. */
  kvUsage?: number | null;
}

export interface RouteChoice {
  candidate: Candidate;
  /** Why it was chosen, for logs and tests. */
  reason: "affinity" | "prefix" | "hash" | "least_loaded" | "round_robin";
}

/**
 * The key that ties a request to earlier ones: the caller's `routingKey` (the web app's
 * conversation id), else a hash of the prompt through its first user message. Every later turn of
 * an API conversation repeats those messages, so it gets the same key; the first user message is
 * part of it so that users who share a system prompt are spread over the replicas rather than
 * all landing on one.
 */
export function affinityKey(request: Pick<GenerationRequest, "routingKey" | "messages">): string {
  if (request.routingKey) return `k:${digest(request.routingKey)}`;
  const firstUser = request.messages.findIndex((m) => m.role === "user");
  const leading: ChatMessage[] = firstUser === -1 ? request.messages : request.messages.slice(0, firstUser + 1);
  return `p:${digest(JSON.stringify(leading.map((m) => [m.role, m.name ?? "", m.content])))}`;
}

/**
 * The prefix index's keys for a prompt: one hash per message boundary from the first user message
 * on (a chain, so each costs one message's bytes), longest first, at most `depth` of them. The
 * system prompt alone is never a key: every user of a shared system prompt would match it and be
 * pulled to one replica. The next turn of this conversation repeats this whole prompt, so its
 * boundaries include every one of these.
 */
export function prefixHashes(messages: ChatMessage[], depth: number): string[] {
  const firstUser = messages.findIndex((m) => m.role === "user");
  if (firstUser === -1 || depth <= 0) return [];
  const out: string[] = [];
  let chain = Buffer.alloc(0);
  messages.forEach((m, i) => {
    chain = createHash("sha256").update(chain).update(JSON.stringify([m.role, m.name ?? "", m.content])).digest();
    if (i >= firstUser) out.push(chain.subarray(0, 16).toString("base64url"));
  });
  return out.slice(-depth).reverse();
}

function digest(text: string): string {
  return createHash("sha256").update(text).digest("base64url").slice(0, 22);
}

/**
 * Picks a replica among `candidates` (those in rotation, not yet tried by this request).
 * `affinity` keeps a key on the replica it was last sent to (`remembered`) or sends the prompt to
 * the replica that was last sent its longest prefix (`prefix`, from the prefix index): for a
 * caller's own conversation id the remembered replica comes first, otherwise the prefix (several
 * API conversations can share one leading-messages key, each with its own longer prefix). Else
 * the first replica in the key's rendezvous order (weighted highest-random-weight hashing, so gateways agree without
 * talking and a replica's loss moves only its own keys) that is not over its bound: consistent
 * hashing with bounded loads. Past every bound it falls back to the least loaded replica.
 */
export function chooseReplica(
  policy: RoutingPolicy,
  candidates: Candidate[],
  options: {
    key: string;
    remembered: string | null;
    /** The replica holding the request's longest indexed prefix, if any. */
    prefix?: string | null;
    /** True when the key is the caller's conversation id (`routingKey`): it outranks the prefix index. */
    explicitKey?: boolean;
    turn: number;
    loadFactor: number;
    loadSlack: number;
    /** Replicas whose engine reports more KV usage than this are passed over while another is not. */
    maxKvUsage?: number;
  },
): RouteChoice | null {
  if (candidates.length === 0) return null;
  if (policy === "round_robin") return { candidate: candidates[options.turn % candidates.length]!, reason: "round_robin" };
  if (options.maxKvUsage !== undefined) {
    const limit = options.maxKvUsage;
    const roomy = candidates.filter((c) => c.kvUsage === undefined || c.kvUsage === null || c.kvUsage <= limit);
    // A full KV cache evicts or preempts; but when every replica is that full, none is better.
    if (roomy.length > 0) candidates = roomy;
  }
  if (policy === "least_loaded") return { candidate: leastLoaded(candidates, options.turn), reason: "least_loaded" };
  const total = candidates.reduce((sum, c) => sum + c.load, 0);
  const weights = candidates.reduce((sum, c) => sum + c.weight, 0);
  // Within bound: one more request keeps it at or under loadFactor × its weighted share of all
  // in flight (counting this one) plus a small slack, and under its own concurrency.
  const withinBound = (c: Candidate) =>
    c.load < c.maxConcurrency && c.load + 1 <= options.loadFactor * (((total + 1) * c.weight) / weights) + options.loadSlack;
  const find = (id: string | null | undefined) => (id === null || id === undefined ? undefined : candidates.find((c) => c.id === id));
  const remembered = { candidate: find(options.remembered), reason: "affinity" as const };
  const prefix = { candidate: find(options.prefix), reason: "prefix" as const };
  for (const preferred of options.explicitKey ? [remembered, prefix] : [prefix, remembered]) {
    if (preferred.candidate && withinBound(preferred.candidate)) return { candidate: preferred.candidate, reason: preferred.reason };
  }
  const ordered = rendezvousOrder(options.key, candidates);
  const hashed = ordered.find(withinBound);
  if (hashed) return { candidate: hashed, reason: "hash" };
  return { candidate: leastLoaded(candidates, options.turn), reason: "least_loaded" };
}

/** Least load per unit of weight; ties broken in turn so equal replicas share the work. */
function leastLoaded(candidates: Candidate[], turn: number): Candidate {
  let best: Candidate[] = [];
  let bestScore = Infinity;
  for (const c of candidates) {
    const score = c.load / c.weight;
    if (score < bestScore) {
      bestScore = score;
      best = [c];
    } else if (score === bestScore) {
      best.push(c);
    }
  }
  return best[turn % best.length]!;
}

/** Weighted rendezvous hashing: score −w / ln(u) with u uniform from hash(key, id), highest first. */
export function rendezvousOrder(key: string, candidates: Candidate[]): Candidate[] {
  return candidates
    .map((c) => {
      const bytes = createHash("sha256").update(key).update("\0").update(c.id).digest();
      // 48 bits of the hash as u in (0, 1).
      const u = (bytes.readUIntBE(0, 6) + 1) / (2 ** 48 + 2);
      return { c, score: -c.weight / Math.log(u) };
    })
    .sort((a, b) => b.score - a.score || (a.c.id < b.c.id ? -1 : 1))
    .map((s) => s.c);
}
