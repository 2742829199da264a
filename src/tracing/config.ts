import { z } from "zod";

/**
 * OpenTelemetry tracing (config key `tracing`). Off unless `otlpEndpoint` is set: then every
 * request gets a trace (HTTP → auth → admission → queue wait → reserve → generation → settle)
 * exported over OTLP/HTTP (JSON) to a collector, with the GenAI semantic conventions on the
 * generation span. See src/tracing/setup.ts.
 */
export const tracingConfigSchema = z
  .object({
    /**
     * The collector's OTLP/HTTP base URL, as OTEL_EXPORTER_OTLP_ENDPOINT would be (e.g.
     * `http://otel-collector:4318`): spans go to `<otlpEndpoint>/v1/traces`. A URL that already
     * ends in `/v1/traces` is used as it is. Unset: tracing is off and costs nothing.
     */
    otlpEndpoint: z
      .string()
      .url()
      .refine((u) => /^https?:$/.test(new URL(u).protocol), "tracing.otlpEndpoint must be an http:// or https:// URL")
      .optional(),
    /** Headers sent with every export (a collector's or vendor's API key, say). */
    otlpHeaders: z.record(z.string().min(1), z.string()).default({}),
    /** `service.name` of the exported resource. */
    serviceName: z.string().min(1).max(256).default("sputnik"),
    /**
     * Share of new traces recorded (0–1). A request that arrives with a W3C `traceparent` follows
     * its caller's sampling decision instead.
     */
    sampleRatio: z.number().min(0).max(1).default(1),
    /**
     * Also record prompts and answers (`gen_ai.input.messages`, `gen_ai.output.messages`) on the
     * generation span. Off by default: traces then carry sizes and timings, never message text,
     * so a tracing backend never holds what users wrote.
     */
    captureMessageContent: z.boolean().default(false),
  })
  .strict()
  .prefault({});

export type TracingConfig = z.infer<typeof tracingConfigSchema>;
