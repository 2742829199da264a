import { context, diag, DiagLogLevel, propagation, trace } from "@opentelemetry/api";
import type { SpanExporter } from "@opentelemetry/sdk-trace-node";
import { SEMCONV } from "./attributes.ts";
import type { TracingConfig } from "./config.ts";
import { tracingOn, useTracer } from "./spans.ts";

/** The instrumentation scope of every Sputnik span. */
export const TRACER_NAME = "sputnik";

export interface Tracing {
  /** Whether spans are being recorded and exported. */
  readonly enabled: boolean;
  /** Exports every span ended so far (a test's, or an operator's, "now"). */
  flush(): Promise<void>;
  /** Exports what is left and unregisters the SDK (service stop). Idempotent. */
  shutdown(): Promise<void>;
}

const OFF: Tracing = Object.freeze({ enabled: false, flush: async () => undefined, shutdown: async () => undefined });

let running: Tracing | null = null;

interface Logger {
  warn(obj: object, msg?: string): void;
}

/**
 * Turns tracing on when `config.otlpEndpoint` is set: a NodeTracerProvider with an
 * AsyncLocalStorage context manager and the W3C trace-context propagator (so an incoming
 * `traceparent` becomes the request span's parent), batching spans to an OTLP/HTTP (JSON)
 * exporter. The SDK is imported here, dynamically, and only then: with tracing off the process
 * loads @opentelemetry/api alone, whose tracer is the no-op one, and the span helpers return
 * without touching it. One tracing setup per process (OpenTelemetry's registration is global).
 */
export async function startTracing(config: TracingConfig, options: { logger?: Logger; exporter?: SpanExporter } = {}): Promise<Tracing> {
  const exporterGiven = options.exporter !== undefined;
  if (!config.otlpEndpoint && !exporterGiven) return OFF;
  if (running || tracingOn()) throw new Error("tracing is already running in this process; stop that service first");

  const [{ NodeTracerProvider, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler }, { defaultResource, resourceFromAttributes }] = await Promise.all([
    import("@opentelemetry/sdk-trace-node"),
    import("@opentelemetry/resources"),
  ]);
  let exporter: SpanExporter;
  if (options.exporter) {
    exporter = options.exporter;
  } else {
    const { OTLPTraceExporter } = await import("@opentelemetry/exporter-trace-otlp-http");
    // JSON over HTTP (this exporter's encoding), which every collector's OTLP/HTTP receiver reads.
    exporter = new OTLPTraceExporter({ url: tracesUrl(config.otlpEndpoint!), headers: { ...config.otlpHeaders } });
  }
  const logger = options.logger;
  if (logger) {
    // The SDK reports failed exports through `diag`, which is silent unless a logger is set.
    const warn = (message: string, ...args: unknown[]) => logger.warn({ detail: args.map(String).join(" ") }, `tracing: ${message}`);
    diag.setLogger({ error: warn, warn, info: () => undefined, debug: () => undefined, verbose: () => undefined }, DiagLogLevel.WARN);
  }
  const provider = new NodeTracerProvider({
    resource: defaultResource().merge(resourceFromAttributes({ [SEMCONV.serviceName]: config.serviceName })),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.sampleRatio) }),
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  // Global: the AsyncLocalStorage context manager and the W3C propagator (traceparent, baggage).
  provider.register();
  useTracer(provider.getTracer(TRACER_NAME), { captureMessageContent: config.captureMessageContent });

  let stopping: Promise<void> | null = null;
  const handle: Tracing = {
    enabled: true,
    flush: () => provider.forceFlush(),
    shutdown: () =>
      (stopping ??= (async () => {
        useTracer(null);
        try {
          await provider.shutdown();
        } catch (error) {
          logger?.warn({ err: error }, "tracing: could not export the last spans");
        } finally {
          trace.disable();
          context.disable();
          propagation.disable();
          diag.disable();
          running = null;
        }
      })()),
  };
  running = handle;
  return handle;
}

/** Exports the spans ended so far, when tracing is on (tests read their receiver after it). */
export async function flushTracing(): Promise<void> {
  await running?.flush();
}

/** `<endpoint>/v1/traces`, as the OTLP exporter specification builds it from a base endpoint. */
export function tracesUrl(endpoint: string): string {
  const url = new URL(endpoint);
  if (!url.pathname.endsWith("/v1/traces")) url.pathname = `${url.pathname.replace(/\/+$/, "")}/v1/traces`;
  return url.toString();
}
