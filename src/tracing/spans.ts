import { context, createContextKey, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type HrTime, type Span, type Tracer } from "@opentelemetry/api";
import { ServiceError } from "../errors.ts";
import { SEMCONV } from "./attributes.ts";

/**
 * Span helpers for the pipeline's stages. While tracing is off (the default) `tracer` is null and
 * every helper returns at once without touching OpenTelemetry: no span objects, no context
 * switches. Spans find their parent through the OpenTelemetry context API (an AsyncLocalStorage
 * context manager, registered by setup.ts): the HTTP layer makes the request's span the active one,
 * so domain code needs no tracing parameter threaded through it.
 */
let tracer: Tracer | null = null;
let captureContent = false;

/** Called by setup.ts once the SDK is registered (and with null at shutdown). */
export function useTracer(next: Tracer | null, options: { captureMessageContent?: boolean } = {}): void {
  tracer = next;
  captureContent = next !== null && options.captureMessageContent === true;
}

/** The tracer while tracing is on, for the HTTP layer's request spans; null while off. */
export function activeTracer(): Tracer | null {
  return tracer;
}

/** Whether spans are being recorded in this process. */
export function tracingOn(): boolean {
  return tracer !== null;
}

/** Whether the operator opted into recording prompts and answers on generation spans. */
export function capturingMessageContent(): boolean {
  return captureContent;
}

/**
 * The clock a request's spans read: the wall clock once, when the request's span starts, then
 * `performance.now()` from there. Left to itself the SDK takes every span's start from the wall
 * clock, so a clock step or a fast NTP slew in the middle of a request (common on a freshly
 * booted VM) moved its later stages past the end of the request's own span. Anchoring once per
 * request (what the SDK's own AnchoredClock did before 2.0) keeps a trace's stages in order and
 * each new request still agrees with the wall clock, as other services' spans do.
 */
export interface SpanClock {
  readonly wallMs: number;
  readonly perfMs: number;
}

const CLOCK = createContextKey("sputnik.span-clock");

export function newSpanClock(): SpanClock {
  return { wallMs: Date.now(), perfMs: performance.now() };
}

/** `ctx` with `clock` as the clock of the spans started under it. */
export function withSpanClock(ctx: Context, clock: SpanClock): Context {
  return ctx.setValue(CLOCK, clock);
}

/** The clock of the spans started under `ctx`: the request's, or a fresh one outside a request. */
export function spanClockOf(ctx: Context): SpanClock {
  return (ctx.getValue(CLOCK) as SpanClock | undefined) ?? newSpanClock();
}

/** Now, on `clock`, as the SDK's high-resolution time. */
export function spanTime(clock: SpanClock): HrTime {
  const ms = clock.wallMs + (performance.now() - clock.perfMs);
  const seconds = Math.floor(ms / 1000);
  return [seconds, Math.floor((ms - seconds * 1000) * 1e6)];
}

/** One stage's span. Every method is safe to call more than once and after `end`. */
export interface Stage {
  set(attributes: Attributes): void;
  /** Records `error` (exception event, `error.type`, status ERROR); the span stays open. */
  fail(error: unknown): void;
  end(): void;
  /** Runs `fn` with this span active, so spans started inside it are its children. */
  run<T>(fn: () => T): T;
}

/** The stage of a process that is not tracing. */
export const NO_STAGE: Stage = Object.freeze({
  set: () => undefined,
  fail: () => undefined,
  end: () => undefined,
  run: <T>(fn: () => T): T => fn(),
});

class SpanStage implements Stage {
  private ended = false;
  private failed = false;
  constructor(
    readonly span: Span,
    private readonly clock: SpanClock,
  ) {}

  set(attributes: Attributes): void {
    if (!this.ended) this.span.setAttributes(attributes);
  }

  fail(error: unknown): void {
    if (this.ended || this.failed) return;
    this.failed = true;
    recordError(this.span, error, this.clock);
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.span.end(spanTime(this.clock));
  }

  run<T>(fn: () => T): T {
    return context.with(withSpanClock(trace.setSpan(context.active(), this.span), this.clock), fn);
  }
}

/** Starts a span under the active one (or under `parent`); NO_STAGE while tracing is off. */
export function startStage(name: string, attributes?: Attributes, options: { kind?: SpanKind; parent?: Context } = {}): Stage {
  if (tracer === null) return NO_STAGE;
  const parent = options.parent ?? context.active();
  const clock = spanClockOf(parent);
  const span = tracer.startSpan(name, { kind: options.kind ?? SpanKind.INTERNAL, startTime: spanTime(clock), ...(attributes ? { attributes } : {}) }, parent);
  return new SpanStage(span, clock);
}

/** Runs `fn` inside a span that ends when it settles, recording a rejection. */
export async function inStage<T>(name: string, fn: (stage: Stage) => Promise<T>, attributes?: Attributes): Promise<T> {
  if (tracer === null) return fn(NO_STAGE);
  const stage = startStage(name, attributes);
  try {
    return await stage.run(() => fn(stage));
  } catch (error) {
    stage.fail(error);
    throw error;
  } finally {
    stage.end();
  }
}

/** Marks `span` failed by `error`: an exception event, `error.type` (the stable code) and status ERROR. */
export function recordError(span: Span, error: unknown, clock: SpanClock): void {
  const type = error instanceof ServiceError ? (error.code ?? error.kind) : error instanceof Error ? error.name : "error";
  const message = error instanceof Error ? error.message : String(error);
  span.recordException(error instanceof Error ? error : message, spanTime(clock));
  span.setAttribute(SEMCONV.errorType, type);
  span.setStatus({ code: SpanStatusCode.ERROR, message });
}
