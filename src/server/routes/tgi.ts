/**
 * text-generation-inference's and text-embeddings-inference's own routes: POST / (generation or
 * embeddings, by the model it goes to), POST /generate, POST /generate_stream and GET /info.
 * Errors carry TGI's `error_type` beside this server's `{error, code}`, so TGI's clients
 * (huggingface_hub, @huggingface/inference) surface the message.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';

import { embed } from '../../models/tasks/embedding.js';
import { TaskInputError } from '../../models/tasks/task-errors.js';
import type { ServerContext } from '../context.js';
import { embeddingModel, generationModel, hasEmbeddingModel } from '../default-models.js';
import { exactValidator } from '../exact-validator.js';
import { namingLimits, toHttp } from '../http-errors.js';
import { disconnectSignal, measured } from '../request-outcome.js';
import { EventStream } from '../sse.js';
import { compatValidator, routeCompat } from '../tgi-dispatch.js';
import { tgiGenerate, tgiStream } from '../tgi-generate.js';
import { describeForTgi } from '../tgi-info.js';
import { TeiRequest, TgiError, TgiInfo, TgiRequest, TgiResponse, TgiStreamEvent } from '../tgi-schemas.js';

/** Our error body with TGI's error_type added. */
export function tgiError(error: unknown, limits: { bodyLimit: number; maxImageBytes: number }) {
  const { status, headers, body } = toHttp(namingLimits(error, limits));
  const errorType = status === 429 || status === 503 ? 'overloaded' : status >= 500 ? 'generation' : 'validation';
  return { status, headers, body: { ...body, error_type: errorType } };
}

const errors = { 400: TgiError, 404: TgiError, 413: TgiError, 422: TgiError, 429: TgiError, 503: TgiError, 504: TgiError };
const SSE = { description: 'Server-Sent Events (text/event-stream): one event per token', content: { 'text/event-stream': { schema: TgiStreamEvent } } };

/** TEI's options (top level, or under `parameters` as huggingface_hub sends them) as embed() options. */
function teiOptions(body: TeiRequest) {
  const p = body.parameters ?? {};
  const direction = body.truncation_direction ?? p.truncation_direction;
  if (direction && direction.toLowerCase() === 'left') throw new TaskInputError('truncation_direction: only right is supported (texts are cut at the end)');
  const promptName = body.prompt_name ?? p.prompt_name;
  if (promptName != null) throw new TaskInputError(`prompt_name: no prompts are configured for this model (got '${promptName}')`);
  const dimensions = body.dimensions ?? p.dimensions;
  return { normalize: body.normalize ?? p.normalize ?? true, truncate: body.truncate ?? p.truncate ?? false, ...(dimensions != null ? { dimensions } : {}) };
}

export async function tgiRoutes(app: FastifyInstance, ctx: ServerContext, version: string): Promise<void> {
  app.setErrorHandler((error, request, reply) => {
    const { status, headers, body } = tgiError(error, ctx.config);
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    else request.log.info({ code: body.code, status }, body.error);
    if (headers) void reply.headers(headers);
    void reply.status(status).send(body);
  });
  const sseErrors = (error: unknown) => tgiError(error, ctx.config).body;

  const generation = (stream: boolean) => async (request: FastifyRequest, reply: FastifyReply) => {
    const body = request.body as TgiRequest;
    const model = generationModel(ctx, body.model);
    const submit = { signal: disconnectSignal(request, reply) };
    return measured(ctx, model, async () => {
      if (!stream) return tgiGenerate(ctx.tasks, model, body, submit);
      await tgiStream(ctx.tasks, model, body, submit, new EventStream(request, reply, sseErrors));
      return reply;
    });
  };

  app.post(
    '/',
    {
      config: { write: false },
      validatorCompiler: compatValidator,
      schema: {
        tags: ['tgi'],
        summary: 'TGI and TEI: generate text, or embed texts, by the model the body goes to',
        description: [
          'As text-generation-inference and text-embeddings-inference serve `POST /`.',
          '- a text-generation model takes TGI’s `{inputs, parameters?, stream?}` and answers `[{generated_text, details?}]` (an array, as TGI), or with `stream: true` the events of POST /generate_stream',
          '- an embedding model takes TEI’s `{inputs, normalize?, truncate?, truncation_direction?, dimensions?}` (also under `parameters`, as huggingface_hub sends them) and answers one vector per input',
          'Which model: the one `model` names (this server’s extension); else a body only generation sends (`stream`, or `parameters` other than TEI’s options) goes to the first text-generation model, any other to EMBED_MODEL or the first embedding model (the first text-generation model when there is no embedding model).',
        ].join('\n'),
        body: Type.Union([TgiRequest, TeiRequest]),
        response: { 200: Type.Union([Type.Array(TgiResponse), Type.Array(Type.Array(Type.Number()))], { description: 'TGI: [{generated_text, details?}]; TEI: one vector per input' }), ...errors },
      },
    },
    async (request, reply) => {
      const routed = await routeCompat(ctx, request.body as TgiRequest | TeiRequest);
      const submit = { signal: disconnectSignal(request, reply) };
      return measured(ctx, routed.model, async () => {
        if (routed.task === 'embedding') {
          const texts = typeof routed.body.inputs === 'string' ? [routed.body.inputs] : routed.body.inputs;
          const result = await embed(ctx.tasks, routed.model, texts, teiOptions(routed.body), submit);
          return result.embeddings.map((v) => Array.from(v));
        }
        if (routed.body.stream) {
          await tgiStream(ctx.tasks, routed.model, routed.body, submit, new EventStream(request, reply, sseErrors));
          return reply;
        }
        return [await tgiGenerate(ctx.tasks, routed.model, routed.body, submit)];
      });
    },
  );

  app.post(
    '/generate',
    {
      config: { write: false },
      validatorCompiler: exactValidator,
      schema: {
        tags: ['tgi'],
        summary: 'TGI: generate text (text-generation models)',
        description:
          'As text-generation-inference: `{inputs, parameters?}` → `{generated_text, details?}`. Greedy unless `do_sample` (or temperature ≠ 1, top_k, top_p < 1); `details: true` adds finish_reason (`length`, `eos_token`, `stop_sequence`), generated_tokens (the EOS included, as TGI counts), the seed of a sampled run, and every token with its log-probability (log softmax of the logits). The model: `model` (this server’s extension), else the first text-generation model.',
        body: TgiRequest,
        response: { 200: TgiResponse, ...errors },
      },
    },
    generation(false),
  );

  app.post(
    '/generate_stream',
    {
      config: { write: false },
      validatorCompiler: exactValidator,
      schema: {
        tags: ['tgi'],
        summary: 'TGI: generate text as Server-Sent Events, one per token',
        description:
          'As text-generation-inference: `data: {index, token: {id, text, logprob, special}, generated_text: null, details: null}` per token; the last event carries `generated_text`, and with `details: true` `{finish_reason, generated_tokens, seed, input_length}`. Errors before the first event are JSON; after it, an `error` event. The model: as POST /generate.',
        body: TgiRequest,
        response: { 200: SSE, ...errors },
      },
    },
    generation(true),
  );

  app.get(
    '/info',
    {
      schema: {
        tags: ['tgi'],
        summary: 'TGI / TEI: the model they serve',
        description:
          'TGI’s /info for a text-generation model, TEI’s for an embedding model. Which: `?model=` (this server’s extension), else the model a POST / without `model` or generation parameters goes to (EMBED_MODEL or the first embedding model, else the first text-generation model).',
        querystring: Type.Object({ model: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })) }),
        response: { 200: TgiInfo, ...errors },
      },
    },
    async (request) => {
      const { model } = request.query as { model?: string };
      const name = model ?? (hasEmbeddingModel(ctx) ? embeddingModel(ctx, undefined) : generationModel(ctx, undefined));
      return describeForTgi(ctx, name, version);
    },
  );
}
