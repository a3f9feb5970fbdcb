/** KServe v2 JSON tensors in and out of a model: the raw-tensor service behind /v2/models/:name/infer and raw /infer. */
import type { FastifyReply, FastifyRequest } from 'fastify';

import { enforce } from '../models/limits.js';
import { numel, type Tensor } from '../runtime/index.js';
import type { ServerContext } from './context.js';
import { HttpError } from './http-errors.js';
import { decodeTensor, encodeTensor, type JsonTensor } from './kserve-tensors.js';
import { disconnectSignal, measured } from './request-outcome.js';

export interface Body {
  id?: string;
  parameters?: { timeout?: number };
  inputs: JsonTensor[];
  outputs?: { name: string }[];
}

/** A KServe v2 JSON request for `model`: tensors decoded, run through the model's engine, outputs encoded. */
export async function inferTensors(ctx: ServerContext, model: string, body: Body, request: FastifyRequest, reply: FastifyReply) {
  return measured(ctx, model, async () => {
    // Before anything is allocated: shapes may claim more than the body holds, or overflow.
    const elements = body.inputs.reduce((n, input) => n + numel(input.shape), 0);
    enforce(ctx.config, 'maxTensorElements', elements, 'the elements of the input tensors');
    const named = new Map<string, Tensor>();
    for (const input of body.inputs) {
      if (named.has(input.name)) throw new HttpError(400, 'BAD_INPUT', `input '${input.name}' appears twice`);
      named.set(input.name, decodeTensor(input));
    }
    const entry = await ctx.registry.find(model);
    const known = entry.manifest?.outputs.map((o) => o.name) ?? [];
    const wanted = body.outputs?.map((o) => o.name) ?? known;
    for (const name of wanted) {
      if (!known.includes(name)) throw new HttpError(400, 'BAD_INPUT', `unknown output '${name}' (model '${model}' has ${known.join(', ')})`);
    }
    const timeoutUs = body.parameters?.timeout;
    const outputs = await ctx.tasks.inferRaw(model, named, {
      signal: disconnectSignal(request, reply),
      ...(timeoutUs ? { timeoutMs: Math.max(1, Math.ceil(timeoutUs / 1000)) } : {}),
    });
    return {
      model_name: model,
      model_version: '1',
      ...(body.id !== undefined ? { id: body.id } : {}),
      outputs: wanted.map((name) => encodeTensor(name, outputs.get(name)!)),
    };
  });
}
