import { z } from "zod";
import type { Engine } from "./types.ts";

/**
 * The kinds of engine Sputnik can run, by name. A kind validates its own entry of the config's
 * `engines` list and creates the engine; nothing outside src/engines/ and the wiring
 * (src/runtime/) knows which kinds exist. A new kind (a fleet of replicas, say) is one
 * `EngineKind` registered in src/runtime/engines.ts.
 */
export interface EngineKind<Spec extends { kind: string } = { kind: string }> {
  readonly kind: string;
  /** One entry of `config.engines` with this kind. */
  readonly spec: z.ZodType<Spec>;
  create(spec: Spec): Promise<Engine>;
}

/** An entry of `config.engines`: its kind's own schema checks the rest. */
export const engineSpecSchema = z.object({ kind: z.string().min(1).max(64) }).passthrough();
export type EngineSpec = z.infer<typeof engineSpecSchema>;

export class EngineRegistry {
  private readonly kinds = new Map<string, EngineKind<{ kind: string }>>();

  register<Spec extends { kind: string }>(kind: EngineKind<Spec>): this {
    if (this.kinds.has(kind.kind)) throw new Error(`engine kind '${kind.kind}' is registered twice`);
    this.kinds.set(kind.kind, kind as unknown as EngineKind<{ kind: string }>);
    return this;
  }

  names(): string[] {
    return [...this.kinds.keys()];
  }

  /** Validates `spec` against its kind and creates the engine; an unknown kind names the known ones. */
  async create(spec: EngineSpec): Promise<Engine> {
    const kind = this.kinds.get(spec.kind);
    if (!kind) throw new Error(`Unknown engine kind '${spec.kind}' in config.engines (known: ${this.names().join(", ")})`);
    const parsed = kind.spec.safeParse(spec);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new Error(`Invalid '${spec.kind}' engine in config.engines: ${issue ? `${issue.path.join(".") || "entry"}: ${issue.message}` : "invalid"}`);
    }
    return kind.create(parsed.data);
  }

  /** Creates every engine in order; on a failure, closes those already created. */
  async createAll(specs: EngineSpec[]): Promise<Engine[]> {
    const engines: Engine[] = [];
    try {
      for (const spec of specs) engines.push(await this.create(spec));
    } catch (error) {
      await Promise.all(engines.map((e) => e.close().catch(() => undefined)));
      throw error;
    }
    return engines;
  }
}
