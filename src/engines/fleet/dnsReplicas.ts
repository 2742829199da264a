import { lookup as dnsLookup } from "node:dns/promises";
import type { Logger } from "pino";

/** Resolves a host name to its addresses (IPv4 and IPv6), as `dns.lookup(name, { all: true })` does. */
export type Resolver = (name: string) => Promise<string[]>;

export const systemResolver: Resolver = async (name) => (await dnsLookup(name, { all: true })).map((a) => a.address);

/** The `dns` block of a fleet model (src/engines/fleet/config.ts). */
export interface DnsReplicaConfig {
  name: string;
  port: number;
  scheme: "http" | "https";
  /** Path of the OpenAI API on each address, e.g. `/v1`. */
  basePath: string;
  intervalMs: number;
  apiKey?: string | undefined;
  weight: number;
  maxConcurrency: number;
}

/** One replica as the resolver found it: its URL is its identity (in Redis, in hashing). */
export interface ResolvedReplica {
  baseUrl: string;
  name: string;
  apiKey?: string | undefined;
  weight: number;
  maxConcurrency: number;
}

/**
 * A DNS name re-resolved every interval into replicas (how a Kubernetes headless service lists
 * vLLM or SGLang pods): one replica per address, `<scheme>://<address>:<port><basePath>`.
 * `onChange` gets the whole new list whenever the set of addresses changes. A failed or empty
 * answer keeps the last list (a resolver hiccup must not empty the fleet); the first resolution
 * is awaited by `start`, so a gateway does not begin with no replicas when the name resolves.
 */
export class DnsReplicas {
  private timer: NodeJS.Timeout | null = null;
  private last = "";
  private resolving: Promise<void> | null = null;

  constructor(
    private readonly config: DnsReplicaConfig,
    private readonly onChange: (replicas: ResolvedReplica[]) => void,
    private readonly resolve: Resolver = systemResolver,
    private readonly logger?: Logger,
  ) {}

  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.config.intervalMs);
    this.timer.unref();
  }

  /** One resolution (at most one at a time); applied when its set of addresses differs from the last. */
  refresh(): Promise<void> {
    this.resolving ??= (async () => {
      let addresses: string[];
      try {
        addresses = [...new Set(await this.resolve(this.config.name))].sort();
      } catch (error) {
        this.logger?.warn({ dns: this.config.name, err: error }, "fleet DNS name did not resolve: keeping the last replicas");
        return;
      }
      if (addresses.length === 0) {
        this.logger?.warn({ dns: this.config.name }, "fleet DNS name resolved to no address: keeping the last replicas");
        return;
      }
      const key = addresses.join(",");
      if (key === this.last) return;
      this.last = key;
      this.logger?.info({ dns: this.config.name, addresses }, "fleet replicas from DNS");
      this.onChange(addresses.map((address) => this.replica(address)));
    })().finally(() => (this.resolving = null));
    return this.resolving;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private replica(address: string): ResolvedReplica {
    const host = address.includes(":") ? `[${address}]` : address;
    return {
      baseUrl: `${this.config.scheme}://${host}:${this.config.port}${this.config.basePath}`,
      name: `${this.config.name}@${address}`,
      apiKey: this.config.apiKey,
      weight: this.config.weight,
      maxConcurrency: this.config.maxConcurrency,
    };
  }
}
