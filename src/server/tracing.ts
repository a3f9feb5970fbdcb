/**
 * OpenTelemetry tracing: one span per request (HTTP or gRPC) that continues the caller's W3C
 * `traceparent`, with a child span per stage (queue, preprocess, compute with its batch size,
 * postprocess), exported over OTLP/HTTP (protobuf). On only when an OTLP endpoint is set
 * (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT); otherwise nothing here is
 * created and the request path does not look up a trace at all.
 */
import { type Attributes, type Context, ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, type TextMapGetter, type Tracer, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';

import type { ModelObserver, Stage } from '../models/observer.js';
import { currentTrace, enableRequestTraces, type StageTrace } from '../models/request-trace.js';

export interface TracingSettings {
  /** OTEL_EXPORTER_OTLP_ENDPOINT: the collector's base URL; spans go to `${base}/v1/traces`. */
  otlpEndpoint: string | undefined;
  /** OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: the full URL for spans (wins over the base URL). */
  otlpTracesEndpoint: string | undefined;
  /** OTEL_SERVICE_NAME. */
  serviceName: string;
}

/** Where spans go, or undefined when tracing is off. */
export function tracesUrl(settings: TracingSettings): string | undefined {
  if (settings.otlpTracesEndpoint) return settings.otlpTracesEndpoint;
  if (settings.otlpEndpoint) return `${settings.otlpEndpoint.replace(/\/+$/, '')}/v1/traces`;
  return undefined;
}

/** Incoming headers or gRPC metadata, flattened to what the propagator reads. */
export type Carrier = Record<string, string | string[] | undefined>;

const getter: TextMapGetter<Carrier> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key],
};

/** One traced request: its span, and the stages the model layer reports into it. */
export class RequestSpan implements StageTrace {
  readonly #tracer: Tracer;
  readonly #context: Context;

  constructor(
    tracer: Tracer,
    readonly span: Span,
  ) {
    this.#tracer = tracer;
    this.#context = trace.setSpan(ROOT_CONTEXT, span);
  }

  get traceId(): string {
    return this.span.spanContext().traceId;
  }

  get spanId(): string {
    return this.span.spanContext().spanId;
  }

  /** What every log line of this request carries. */
  get logFields(): { trace_id: string; span_id: string } {
    return { trace_id: this.traceId, span_id: this.spanId };
  }

  stage(stage: Stage, startMs: number, endMs: number, attributes?: Readonly<Record<string, number>>): void {
    // As epoch milliseconds: OpenTelemetry takes those as they are, while it shifts performance.now()
    // times by a per-span offset read from Date.now() (whole milliseconds: stages would overlap).
    const origin = performance.timeOrigin;
    this.#tracer.startSpan(stage, { startTime: origin + startMs, ...(attributes ? { attributes } : {}) }, this.#context).end(origin + endMs);
  }

  /**
   * End the request's span. An `error` answer is named by its code (`error.type`); the span's
   * status is ERROR only when the server failed (`serverFault`), not for a client's mistake.
   */
  end(attributes: Attributes, error?: { code: string; message: string }, serverFault = false): void {
    this.span.setAttributes(attributes);
    if (error) this.span.setAttribute('error.type', error.code);
    if (serverFault) this.span.setStatus({ code: SpanStatusCode.ERROR, ...(error ? { message: error.message } : {}) });
    this.span.end();
  }
}

export class Tracing {
  readonly #provider: TracerProvider;
  readonly #tracer: Tracer;
  readonly #propagator = new W3CTraceContextPropagator();

  private constructor(url: string, serviceName: string, version: string) {
    this.#provider = new TracerProvider({
      resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: serviceName, [ATTR_SERVICE_VERSION]: version }),
      spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url }) })],
    });
    this.#tracer = this.#provider.getTracer('atenspace-serve', version);
  }

  /** Tracing as the settings say: undefined (off) unless an OTLP endpoint is set. */
  static start(settings: TracingSettings, version: string): Tracing | undefined {
    const url = tracesUrl(settings);
    if (!url) return undefined;
    enableRequestTraces();
    return new Tracing(url, settings.serviceName, version);
  }

  /** A server span for one request, the child of the caller's `traceparent` when it sent a valid one. */
  startRequest(name: string, carrier: Carrier, attributes: Attributes): RequestSpan {
    const parent = this.#propagator.extract(ROOT_CONTEXT, carrier, getter);
    const span = this.#tracer.startSpan(name, { kind: SpanKind.SERVER, attributes }, parent);
    return new RequestSpan(this.#tracer, span);
  }

  /** Export what is buffered now. */
  flush(): Promise<void> {
    return this.#provider.forceFlush();
  }

  /** Export what is buffered and stop. */
  shutdown(): Promise<void> {
    return this.#provider.shutdown();
  }
}

/**
 * The task pipelines' observer with their preprocess and postprocess stages also reported to
 * the current request's trace (they run in the request's own async context; queue and compute
 * are reported per request by the engine).
 */
export class TaskStageSpans implements ModelObserver {
  constructor(readonly inner: ModelObserver & { tokensPerRequest?(model: string, count: number): void }) {}

  stage(model: string, stage: Stage, seconds: number): void {
    this.inner.stage(model, stage, seconds);
    if (stage !== 'preprocess' && stage !== 'postprocess') return;
    const now = performance.now();
    currentTrace()?.stage(stage, now - seconds * 1000, now);
  }

  tokensPerRequest(model: string, count: number): void {
    this.inner.tokensPerRequest?.(model, count);
  }

  cacheHit(model: string): void {
    this.inner.cacheHit(model);
  }

  cacheMiss(model: string): void {
    this.inner.cacheMiss(model);
  }

  batchExecuted(model: string, rows: number, requests: number): void {
    this.inner.batchExecuted(model, rows, requests);
  }

  queueDepth(model: string, depth: number): void {
    this.inner.queueDepth(model, depth);
  }

  decodeStep(model: string, kind: 'prefill' | 'decode', rows: number, seconds: number): void {
    this.inner.decodeStep(model, kind, rows, seconds);
  }

  firstToken(model: string, seconds: number): void {
    this.inner.firstToken(model, seconds);
  }

  sequenceFinished(model: string, tokens: number, secondsPerToken: number | undefined): void {
    this.inner.sequenceFinished(model, tokens, secondsPerToken);
  }

  activeSequences(model: string, count: number): void {
    this.inner.activeSequences(model, count);
  }
}
