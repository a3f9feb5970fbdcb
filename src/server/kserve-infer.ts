/**
 * KServe v2 raw-tensor inference. `runInference` is the protocol-neutral core (tensors in, the
 * model's named outputs back); `inferTensors` is its HTTP face behind /v2/models/:name/infer
 * and raw /infer: JSON tensors, or raw bytes through the binary tensor data extension.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';

import { enforce } from '../models/limits.js';
import type { Manifest } from '../models/manifest.js';
import { numel, type Tensor } from '../runtime/index.js';
import type { ServerContext } from './context.js';
import { HttpError } from './http-errors.js';
import { type BinarySection, binarySection, type OutputPart, sendInferAnswer } from './kserve-binary.js';
import { decodeTensor, encodeTensor, type JsonTensor } from './kserve-tensors.js';
import { disconnectSignal, measured } from './request-outcome.js';
import { datatypeOf, expectedBytes, tensorBytes, tensorFromBytes } from './tensor-bytes.js';

type Parameters = Record<string, unknown>;

export interface Body {
  id?: string;
  parameters?: { timeout?: number; binary_data_output?: boolean } & Parameters;
  inputs: (Omit<JsonTensor, 'data'> & { data?: unknown[]; parameters?: Parameters })[];
  outputs?: { name: string; parameters?: Parameters }[];
}

export interface InferenceCall {
  /** A version of the model; its default (newest ready) version when absent. */
  version?: string;
  inputs: Map<string, Tensor>;
  /** Outputs to return, in this order; all of the model's when absent. */
  outputs?: string[];
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface InferenceResult {
  model: string;
  version: string;
  /** The outputs asked for, in the order asked. */
  outputs: Map<string, Tensor>;
}

function bad(message: string): HttpError {
  return new HttpError(400, 'BAD_INPUT', message);
}

/** Refuse inputs whose shapes claim more elements than MAX_TENSOR_ELEMENTS, before anything is allocated. */
export function enforceTensorElements(ctx: ServerContext, shapes: readonly (readonly number[])[]): void {
  const elements = shapes.reduce((n, shape) => n + numel(shape), 0);
  enforce(ctx.config, 'maxTensorElements', elements, 'the elements of the input tensors');
}

/** Named tensors through one version of a model: the protocol-neutral core of KServe inference (HTTP and gRPC). */
export async function runInference(ctx: ServerContext, model: string, call: InferenceCall): Promise<InferenceResult> {
  const check = (manifest: Manifest | undefined) => {
    const known = manifest?.outputs.map((o) => o.name) ?? [];
    for (const name of call.outputs ?? []) {
      if (!known.includes(name)) throw bad(`unknown output '${name}' (model '${model}' has ${known.join(', ')})`);
    }
    return call.outputs ?? known;
  };
  // Before the forward when the manifest is at hand, and again against the version that ran.
  const entry = await ctx.registry.find(model, call.version);
  if (entry.manifest) check(entry.manifest);
  const { version, outputs } = await ctx.tasks.inferRaw(model, call.inputs, {
    ...(call.signal ? { signal: call.signal } : {}),
    ...(call.timeoutMs ? { timeoutMs: call.timeoutMs } : {}),
    ...(call.version !== undefined ? { version: call.version } : {}),
  });
  const wanted = check(ctx.registry.get(model, version)?.manifest);
  return { model, version, outputs: new Map(wanted.map((name) => [name, outputs.get(name)!])) };
}

/** The request's tensors: JSON data, or bytes from the binary section (consumed in input order). */
function decodeInputs(body: Body, binary: BinarySection | undefined): Map<string, Tensor> {
  const named = new Map<string, Tensor>();
  let offset = 0;
  for (const input of body.inputs) {
    if (named.has(input.name)) throw bad(`input '${input.name}' appears twice`);
    const size = input.parameters?.binary_data_size;
    if (size === undefined) {
      if (input.data === undefined) throw bad(`input '${input.name}' has neither data nor parameters.binary_data_size`);
      named.set(input.name, decodeTensor(input as JsonTensor));
      continue;
    }
    if (input.data !== undefined) throw bad(`input '${input.name}' has both data and parameters.binary_data_size`);
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
      throw bad(`input '${input.name}': parameters.binary_data_size must be a byte count, got ${JSON.stringify(size)}`);
    }
    if (!binary) {
      throw bad(`input '${input.name}' has parameters.binary_data_size but the body has no binary section (send it as application/octet-stream with the inference-header-content-length header)`);
    }
    const want = expectedBytes(input.name, input.datatype, input.shape);
    if (size !== want) throw bad(`input '${input.name}': binary_data_size is ${size}, but shape [${input.shape}] of ${input.datatype} takes ${want} bytes`);
    if (offset + size > binary.length) {
      throw bad(`input '${input.name}': binary_data_size ${size} reaches past the end of the body (${binary.length - offset} bytes left after the earlier inputs)`);
    }
    named.set(input.name, tensorFromBytes(input.name, input.datatype, input.shape, { chunks: binary.chunks, offset: binary.offset + offset, length: size }));
    offset += size;
  }
  if (binary && offset !== binary.length) {
    throw bad(`the body carries ${binary.length} bytes after its JSON header, the inputs' binary_data_size add up to ${offset}`);
  }
  return named;
}

/** Whether an output is sent as raw bytes: its own `binary_data`, else the request's `binary_data_output`. */
function wantsBinary(body: Body, name: string): boolean {
  const own = body.outputs?.find((o) => o.name === name)?.parameters?.binary_data;
  if (typeof own === 'boolean') return own;
  return body.parameters?.binary_data_output === true;
}

/** A KServe v2 request for `model` over HTTP: tensors decoded, run through the model, outputs encoded as asked. */
export async function inferTensors(ctx: ServerContext, model: string, body: Body, request: FastifyRequest, reply: FastifyReply, version?: string) {
  return measured(ctx, model, async () => {
    enforceTensorElements(ctx, body.inputs.map((i) => i.shape));
    const inputs = decodeInputs(body, binarySection(request));
    const timeoutUs = body.parameters?.timeout;
    const result = await runInference(ctx, model, {
      inputs,
      signal: disconnectSignal(request, reply),
      ...(version !== undefined ? { version } : {}),
      ...(body.outputs ? { outputs: body.outputs.map((o) => o.name) } : {}),
      ...(timeoutUs ? { timeoutMs: Math.max(1, Math.ceil(timeoutUs / 1000)) } : {}),
    });
    const parts: OutputPart[] = [...result.outputs].map(([name, t]) => {
      if (!wantsBinary(body, name)) return { json: encodeTensor(name, t) };
      const bytes = tensorBytes(t);
      return { json: { name, shape: t.shape, datatype: datatypeOf(t.dtype), parameters: { binary_data_size: bytes.byteLength } }, bytes };
    });
    const answer = { model_name: model, model_version: result.version, ...(body.id !== undefined ? { id: body.id } : {}) };
    return sendInferAnswer(reply, answer, parts);
  });
}
