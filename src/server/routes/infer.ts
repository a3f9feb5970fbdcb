/** Raw-tensor inference (KServe v2 JSON tensors): POST /v2/models/:name/infer, and /infer bodies with `inputs`. */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

import { enforce } from '../../models/limits.js';
import type { Outcome } from '../../models/observer.js';
import { numel, type Tensor } from '../../runtime/index.js';
import type { ServerContext } from '../context.js';
import { HttpError, toHttp } from '../http-errors.js';
import { decodeTensor, encodeTensor, type JsonTensor } from '../kserve-tensors.js';
import { ErrorResponse, InferResponse, KServeInferRequest, ModelName } from '../schemas.js';

export const errors = { 400: ErrorResponse, 404: ErrorResponse, 413: ErrorResponse, 422: ErrorResponse, 429: ErrorResponse, 503: ErrorResponse, 504: ErrorResponse };

export function outcomeOf(status: number): Outcome {
  if (status < 400) return 'success';
  if (status === 429) return 'rejected';
  if (status === 499) return 'cancelled';
  if (status === 504) return 'timeout';
  return status < 500 ? 'client_error' : 'server_error';
}

/**
 * An AbortSignal that fires when the client goes away before the response is sent. The
 * response's 'close' is the signal: the request's own 'close' also fires once its body has
 * been read (Node destroys a finished IncomingMessage), which is no disconnect at all.
 */
export function disconnectSignal(_request: FastifyRequest, reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  return controller.signal;
}

export interface Body {
  id?: string;
  parameters?: { timeout?: number };
  inputs: JsonTensor[];
  outputs?: { name: string }[];
}

export async function inferTensors(ctx: ServerContext, model: string, body: Body, request: FastifyRequest, reply: FastifyReply) {
  const started = performance.now();
  let status = 200;
  try {
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
    const outputs = await ctx.registry.infer(model, named, {
      signal: disconnectSignal(request, reply),
      ...(timeoutUs ? { timeoutMs: Math.max(1, Math.ceil(timeoutUs / 1000)) } : {}),
    });
    return {
      model_name: model,
      model_version: '1',
      ...(body.id !== undefined ? { id: body.id } : {}),
      outputs: wanted.map((name) => encodeTensor(name, outputs.get(name)!)),
    };
  } catch (error) {
    status = toHttp(error).status;
    throw error;
  } finally {
    if (ctx.registry.get(model)) ctx.metrics.request(model, outcomeOf(status), (performance.now() - started) / 1000);
  }
}

export async function inferRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  app.post(
    '/v2/models/:name/infer',
    {
      config: { write: false },
      schema: {
        tags: ['kserve-v2'],
        summary: 'KServe v2 inference',
        params: ModelName,
        body: KServeInferRequest,
        response: { 200: InferResponse, ...errors },
      },
    },
    async (request, reply) => {
      const { name } = request.params as { name: string };
      return inferTensors(ctx, name, request.body as Body, request, reply);
    },
  );
}
