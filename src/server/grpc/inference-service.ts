/**
 * inference.GRPCInferenceService: KServe v2 over gRPC, over the same registry, engines, limits,
 * auth and metrics as HTTP. ModelInfer takes typed contents or raw_input_contents (bytes copied
 * once into the tensor the addon reads) and answers in kind: raw_output_contents (views of the
 * addon's outputs) when the request was raw or an output has no typed field (FP16, BF16).
 */
import type { Metadata, sendUnaryData, ServerDuplexStream, ServerUnaryCall, ServiceError, UntypedServiceImplementation } from '@grpc/grpc-js';

import { runTraced } from '../../models/request-trace.js';
import type { Tensor } from '../../runtime/index.js';
import { API_VERSION } from '../app.js';
import { bearerMatches } from '../auth.js';
import type { ServerContext } from '../context.js';
import { modelMetadata } from '../kserve-metadata.js';
import { HttpError } from '../http-errors.js';
import { enforceTensorElements, runInference } from '../kserve-infer.js';
import { measured } from '../request-outcome.js';
import { datatypeOf, tensorBytes, tensorFromBytes } from '../tensor-bytes.js';
import type { RequestSpan } from '../tracing.js';
import { INFERENCE_SERVICE_NAME } from './proto.js';
import { toGrpc } from './status.js';
import { contentsOf, type TensorContents, tensorFromContents } from './tensor-contents.js';

interface InferParameter {
  bool_param?: boolean;
  int64_param?: number;
  string_param?: string;
  parameter_choice?: 'bool_param' | 'int64_param' | 'string_param';
}

export interface ModelInferRequest {
  model_name: string;
  model_version: string;
  id: string;
  parameters: Record<string, InferParameter>;
  inputs: { name: string; datatype: string; shape: number[]; parameters: Record<string, InferParameter>; contents: TensorContents | null }[];
  outputs: { name: string }[];
  raw_input_contents: Uint8Array[];
}

interface OutputTensor {
  name: string;
  datatype: string;
  shape: number[];
  contents?: TensorContents;
}

export interface ModelInferResponse {
  model_name: string;
  model_version: string;
  id: string;
  outputs: OutputTensor[];
  raw_output_contents: Uint8Array[];
}

function bad(message: string): HttpError {
  return new HttpError(400, 'BAD_INPUT', message);
}

/** The request's tensors, from typed contents or from raw bytes (one copy each). */
function decodeInputs(request: ModelInferRequest): { inputs: Map<string, Tensor>; raw: boolean } {
  const raw = request.raw_input_contents.length > 0;
  if (raw && request.raw_input_contents.length !== request.inputs.length) {
    throw bad(`raw_input_contents has ${request.raw_input_contents.length} entries for ${request.inputs.length} inputs (one per input, in order)`);
  }
  const inputs = new Map<string, Tensor>();
  request.inputs.forEach((input, i) => {
    if (inputs.has(input.name)) throw bad(`input '${input.name}' appears twice`);
    if (raw) {
      if (input.contents && Object.values(input.contents).some((values) => (values as unknown[]).length > 0)) {
        throw bad(`input '${input.name}' has contents, but the request uses raw_input_contents (one or the other for all inputs)`);
      }
      inputs.set(input.name, tensorFromBytes(input.name, input.datatype, input.shape, request.raw_input_contents[i]!));
    } else {
      inputs.set(input.name, tensorFromContents(input.name, input.datatype, input.shape, input.contents));
    }
  });
  return { inputs, raw };
}

/** The answer: raw bytes when the request was raw or some output has no typed field, typed contents otherwise. */
function encodeOutputs(outputs: Map<string, Tensor>, raw: boolean): Pick<ModelInferResponse, 'outputs' | 'raw_output_contents'> {
  const typed = raw ? undefined : [...outputs.values()].map(contentsOf);
  if (typed && typed.every((c) => c !== undefined)) {
    return {
      outputs: [...outputs].map(([name, t], i) => ({ name, datatype: datatypeOf(t.dtype), shape: t.shape, contents: typed[i]! })),
      raw_output_contents: [],
    };
  }
  return {
    outputs: [...outputs].map(([name, t]) => ({ name, datatype: datatypeOf(t.dtype), shape: t.shape })),
    raw_output_contents: [...outputs.values()].map(tensorBytes),
  };
}

/** The call's time left: its gRPC deadline and the request's `timeout` parameter (microseconds, as over HTTP), whichever is sooner. */
function timeoutMsOf(request: ModelInferRequest, deadline: Date | number): number | undefined {
  const timeoutUs = request.parameters.timeout?.int64_param;
  const fromParameter = timeoutUs && timeoutUs > 0 ? Math.max(1, Math.ceil(timeoutUs / 1000)) : undefined;
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  const fromDeadline = Number.isFinite(at) ? Math.max(1, Math.floor(at - Date.now())) : undefined;
  if (fromParameter === undefined) return fromDeadline;
  return fromDeadline === undefined ? fromParameter : Math.min(fromParameter, fromDeadline);
}

export class InferenceService {
  constructor(readonly ctx: ServerContext) {}

  /** One ModelInfer request: decode, run through the model (traced when tracing is on), encode. */
  async infer(request: ModelInferRequest, signal: AbortSignal, deadline: Date | number, span?: RequestSpan): Promise<ModelInferResponse> {
    const model = request.model_name;
    return measured(
      this.ctx,
      model,
      async () => {
        if (!model) throw bad('model_name is empty');
        const t0 = performance.now();
        enforceTensorElements(this.ctx, request.inputs.map((i) => i.shape));
        const { inputs, raw } = decodeInputs(request);
        const names = request.outputs.map((o) => o.name);
        const timeoutMs = timeoutMsOf(request, deadline);
        const t1 = performance.now();
        span?.stage('preprocess', t0, t1);
        const result = await runInference(this.ctx, model, {
          inputs,
          signal,
          ...(request.model_version ? { version: request.model_version } : {}),
          ...(names.length ? { outputs: names } : {}),
          ...(timeoutMs !== undefined ? { timeoutMs } : {}),
        });
        const t2 = performance.now();
        const encoded = encodeOutputs(result.outputs, raw);
        span?.stage('postprocess', t2, performance.now());
        return { model_name: model, model_version: result.version, id: request.id, ...encoded };
      },
      'grpc',
    );
  }

  /** The handlers grpc-js calls, by method name. */
  handlers(tracingName: (method: string) => string): UntypedServiceImplementation {
    const { ctx } = this;
    const { registry, config } = ctx;
    const ready = () => ctx.startupDone() && !registry.closing;
    const handlers = {
      ServerLive: unary('ServerLive', { public: true }, async () => ({ live: true })),
      ServerReady: unary('ServerReady', { public: true }, async () => ({ ready: ready() })),
      ServerMetadata: unary('ServerMetadata', {}, async () => ({ name: 'atenspace-serve', version: API_VERSION, extensions: ['model_repository'] })),
      ModelReady: unary('ModelReady', {}, async (request: { name: string; version: string }) => {
        const entry = await registry.find(request.name, request.version || undefined);
        return { ready: entry.state === 'ready' };
      }),
      ModelMetadata: unary('ModelMetadata', {}, async (request: { name: string; version: string }) => modelMetadata(ctx, request.name, request.version || undefined)),
      ModelInfer: unary('ModelInfer', {}, async (request: ModelInferRequest, call, span) => this.infer(request, signalOf(call), call.getDeadline(), span)),
      ModelStreamInfer: (call: ServerDuplexStream<ModelInferRequest, unknown>) => this.#stream(call, tracingName('ModelStreamInfer')),
      RepositoryModelLoad: unary('RepositoryModelLoad', { write: true }, async (request: { model_name: string }) => {
        await registry.load(request.model_name);
        return { model_name: request.model_name, isLoaded: registry.get(request.model_name)?.state === 'ready' };
      }),
      RepositoryModelUnload: unary('RepositoryModelUnload', { write: true }, async (request: { model_name: string }) => {
        await registry.unload(request.model_name);
        return { model_name: request.model_name, isUnloaded: registry.get(request.model_name)?.state !== 'ready' };
      }),
    };
    return handlers as unknown as UntypedServiceImplementation;

    /** A unary method: auth as over HTTP, traced when tracing is on, errors as gRPC statuses. */
    function unary<Req, Res>(
      method: string,
      access: { public?: boolean; write?: boolean },
      work: (request: Req, call: ServerUnaryCall<Req, Res>, span: RequestSpan | undefined) => Promise<Res>,
    ) {
      return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
        const span = ctx.tracing?.startRequest(tracingName(method), carrierOf(call.metadata), { 'rpc.system': 'grpc', 'rpc.service': INFERENCE_SERVICE_NAME, 'rpc.method': method });
        const run = async () => {
          authorize(ctx, call.metadata, access);
          if (!access.public) shedIfOverloaded(ctx);
          return work(call.request, call, span);
        };
        (span ? runTraced(span, run) : run()).then(
          (response) => {
            span?.end({ 'rpc.grpc.status_code': 0 });
            callback(null, response);
          },
          (error: unknown) => {
            const failure = toGrpc(error);
            span?.end({ 'rpc.grpc.status_code': failure.error.code }, { code: failure.code, message: failure.error.details }, failure.httpStatus >= 500);
            callback(failure.error);
          },
        );
      };
    }
  }

  /**
   * Triton's ModelStreamInfer: each request on the stream is answered on it (in the order they
   * finish, `id` telling which), a failed one with error_message; the stream ends when the
   * client has half-closed and every answer is written.
   */
  #stream(call: ServerDuplexStream<ModelInferRequest, unknown>, spanName: string): void {
    const { ctx } = this;
    try {
      authorize(ctx, call.metadata, {});
    } catch (error) {
      call.destroy(toGrpc(error).error as ServiceError & Error);
      return;
    }
    const signal = signalOf(call);
    let pending = 0;
    let ended = false;
    const finish = () => {
      if (ended && pending === 0) call.end();
    };
    call.on('data', (request: ModelInferRequest) => {
      pending++;
      const span = ctx.tracing?.startRequest(spanName, carrierOf(call.metadata), { 'rpc.system': 'grpc', 'rpc.service': INFERENCE_SERVICE_NAME, 'rpc.method': 'ModelStreamInfer' });
      const run = async () => {
        shedIfOverloaded(ctx);
        return this.infer(request, signal, call.getDeadline(), span);
      };
      (span ? runTraced(span, run) : run()).then(
        (response) => {
          span?.end({ 'rpc.grpc.status_code': 0 });
          if (!signal.aborted) call.write({ error_message: '', infer_response: response });
        },
        (error: unknown) => {
          const failure = toGrpc(error);
          span?.end({ 'rpc.grpc.status_code': failure.error.code }, { code: failure.code, message: failure.error.details }, failure.httpStatus >= 500);
          if (!signal.aborted) call.write({ error_message: failure.error.details, infer_response: { model_name: request.model_name, model_version: '', id: request.id, outputs: [], raw_output_contents: [] } });
        },
      ).finally(() => {
        pending--;
        finish();
      });
    });
    call.on('end', () => {
      ended = true;
      finish();
    });
  }
}

/** Aborts when the client cancels the call or goes away. */
function signalOf(call: { on(event: 'cancelled', listener: () => void): unknown }): AbortSignal {
  const controller = new AbortController();
  call.on('cancelled', () => controller.abort());
  return controller.signal;
}

/** The trace context a caller sent in its metadata. */
function carrierOf(metadata: Metadata): Record<string, string | undefined> {
  const first = (key: string) => {
    const value = metadata.get(key)[0];
    return typeof value === 'string' ? value : undefined;
  };
  return { traceparent: first('traceparent'), tracestate: first('tracestate') };
}

/** HTTP's load shedding: an overloaded process answers UNAVAILABLE (HTTP's 503 OVERLOADED) before any work; health is always answered. */
function shedIfOverloaded(ctx: ServerContext): void {
  const why = ctx.overloaded();
  if (why) throw new HttpError(503, 'OVERLOADED', why);
}

/** HTTP's rule: with API_KEY, writes need it, and reads too with AUTH_READS; liveness and readiness never. */
function authorize(ctx: ServerContext, metadata: Metadata, access: { public?: boolean; write?: boolean }): void {
  const { apiKey, authReads } = ctx.config;
  if (!apiKey || access.public) return;
  if (!access.write && !authReads) return;
  const header = metadata.get('authorization')[0];
  if (!bearerMatches(typeof header === 'string' ? header : undefined, apiKey)) {
    throw new HttpError(401, 'UNAUTHORIZED', 'this method needs the metadata authorization: Bearer <API_KEY>');
  }
}
