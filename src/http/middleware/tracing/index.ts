import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Span } from "@opentelemetry/api";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { SEMCONV, SPAN, SPUTNIK } from "../../../tracing/attributes.ts";
import { activeTracer, newSpanClock, recordError, spanTime, withSpanClock, type SpanClock } from "../../../tracing/spans.ts";
import "../types.ts";

/** One request's spans: the server span and, while the auth hooks run, the auth span. */
interface RequestTrace {
  span: Span;
  /** The context the request's work runs in (the server span active). */
  context: Context;
  auth: Span | null;
  /** The clock of every span of this request (see SpanClock). */
  clock: SpanClock;
  /** The error Fastify answered with, if any (recorded on the span when the status is 5xx). */
  error: unknown;
}

const traces = new WeakMap<FastifyRequest, RequestTrace>();

/**
 * One SERVER span per HTTP request (when tracing is on; nothing is registered otherwise). Register
 * it first, so refusals by the later hooks (shutdown gate, flood guard, auth) are traced too. A
 * W3C `traceparent` from the client becomes the span's parent. The span is made the active
 * context for the rest of the request's hooks and its handler (the hooks call on synchronously
 * inside it; Fastify carries the context across body parsing with an AsyncResource), so the
 * serving pipeline's stage spans nest under it through the OpenTelemetry context API alone. It
 * ends when the response closes, which also covers hijacked event streams (they never reach
 * Fastify's onResponse hooks).
 */
export function registerRequestTracing(app: FastifyInstance): void {
  const tracer = activeTracer();
  if (!tracer) return;
  app.addHook("onRequest", (request, reply, done) => {
    const route = request.routeOptions.url;
    const parent = propagation.extract(ROOT_CONTEXT, request.headers);
    const clock = newSpanClock();
    const span = tracer.startSpan(
      route ? `${request.method} ${route}` : request.method,
      {
        kind: SpanKind.SERVER,
        attributes: {
          [SEMCONV.httpRequestMethod]: request.method,
          // The path only: a query string may carry what does not belong in a trace.
          [SEMCONV.urlPath]: request.url.split("?", 1)[0]!,
          [SEMCONV.urlScheme]: request.protocol,
          ...(route ? { [SEMCONV.httpRoute]: route } : {}),
          ...(request.headers["user-agent"] ? { [SEMCONV.userAgentOriginal]: request.headers["user-agent"] } : {}),
        },
        startTime: spanTime(clock),
      },
      parent,
    );
    const state: RequestTrace = { span, context: withSpanClock(trace.setSpan(parent, span), clock), auth: null, clock, error: null };
    traces.set(request, state);
    reply.raw.once("close", () => finish(state, reply.raw.statusCode));
    context.with(state.context, done);
  });
  app.addHook("onError", (request, _reply, error, done) => {
    const state = traces.get(request);
    if (state) {
      state.error = error;
      // An error while the auth span is open is the auth stage's refusal (401, 403…).
      if (state.auth) endAuth(state, error);
    }
    done();
  });
}

/**
 * Wraps the auth middleware's registration so that its hooks (cookies, CORS, credentials) run
 * inside an auth span, a child of the request's span: one hook before them opens it, one after
 * them closes it with the actor found. Without tracing, just `register()`.
 */
export async function traceAuth<T>(app: FastifyInstance, register: () => Promise<T>): Promise<T> {
  const tracer = activeTracer();
  if (!tracer) return register();
  app.addHook("onRequest", (request, _reply, done) => {
    const state = traces.get(request);
    if (!state) return done();
    const auth = tracer.startSpan(SPAN.auth, { startTime: spanTime(state.clock) }, state.context);
    state.auth = auth;
    context.with(trace.setSpan(state.context, auth), done);
  });
  const registered = await register();
  app.addHook("onRequest", (request, _reply, done) => {
    const state = traces.get(request);
    if (!state) return done();
    if (state.auth) {
      state.auth.setAttribute(SPUTNIK.actorKind, request.actor?.kind ?? "anonymous");
      endAuth(state, null);
    }
    context.with(state.context, done);
  });
  return registered;
}

function endAuth(state: RequestTrace, error: unknown): void {
  const auth = state.auth;
  if (!auth) return;
  state.auth = null;
  if (error !== null) recordError(auth, error, state.clock);
  auth.end(spanTime(state.clock));
}

function finish(state: RequestTrace, status: number): void {
  endAuth(state, null);
  const { span } = state;
  span.setAttribute(SEMCONV.httpResponseStatusCode, status);
  // HTTP conventions: a server span is an error for 5xx only; 4xx are the client's.
  if (status >= 500) {
    if (state.error !== null) recordError(span, state.error, state.clock);
    else {
      span.setAttribute(SEMCONV.errorType, String(status));
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
  }
  span.end(spanTime(state.clock));
}
