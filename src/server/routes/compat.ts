/**
 * Familiar endpoints: TEI's POST /embed and POST /tokenize, and OpenAI's POST /v1/embeddings
 * (with OpenAI-shaped errors), over the same embedding pipeline as /infer.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type Static, Type } from 'typebox';

import { enforce } from '../../models/limits.js';
import { embed } from '../../models/tasks/embedding.js';
import { TaskInputError } from '../../models/tasks/task-errors.js';
import type { ServerContext } from '../context.js';
import { HttpError, namingLimits, toHttp } from '../http-errors.js';
import { ErrorResponse } from '../schemas.js';
import { OpenAiEmbeddings, OpenAiEmbeddingsResponse, OpenAiError, TeiEmbed, TeiToken, TeiTokenize } from '../task-schemas.js';
import { disconnectSignal, measured } from '../request-outcome.js';

/** The model a request names, or EMBED_MODEL, or the first ready (else loadable) embedding model. */
async function embeddingModel(ctx: ServerContext, named: string | undefined): Promise<string> {
  if (named) return named;
  if (ctx.config.embedModel) return ctx.config.embedModel;
  const candidates = ctx.registry.list().filter((e) => e.manifest?.task === 'embedding');
  const first = candidates.find((e) => e.state === 'ready') ?? candidates.find((e) => e.state !== 'failed');
  if (!first) throw new HttpError(404, 'MODEL_NOT_FOUND', 'no embedding model in the repository; name one with "model"');
  return first.name;
}

const errors = { 400: ErrorResponse, 404: ErrorResponse, 413: ErrorResponse, 429: ErrorResponse, 503: ErrorResponse };

export async function compatRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  app.post(
    '/embed',
    {
      config: { write: false },
      schema: {
        tags: ['embeddings'],
        summary: 'TEI-style embeddings',
        description: 'As text-embeddings-inference: `normalize` defaults to true. Returns one vector per input.',
        body: TeiEmbed,
        response: { 200: Type.Array(Type.Array(Type.Number())), ...errors },
      },
    },
    async (request: FastifyRequest, reply: FastifyReply) => {
      const body = request.body as Static<typeof TeiEmbed>;
      const model = await embeddingModel(ctx, body.model);
      return measured(ctx, model, async () => {
        const texts = typeof body.inputs === 'string' ? [body.inputs] : body.inputs;
        const result = await embed(
          ctx.tasks,
          model,
          texts,
          { normalize: body.normalize ?? true, truncate: body.truncate ?? false, dimensions: body.dimensions },
          { signal: disconnectSignal(request, reply) },
        );
        return result.embeddings.map((v) => Array.from(v));
      });
    },
  );

  app.post(
    '/tokenize',
    {
      config: { write: false },
      schema: {
        tags: ['embeddings'],
        summary: 'TEI-style tokenization',
        body: TeiTokenize,
        response: { 200: Type.Array(Type.Array(TeiToken)), ...errors },
      },
    },
    async (request) => {
      const body = request.body as Static<typeof TeiTokenize>;
      const model = await embeddingModel(ctx, body.model);
      const entry = await ctx.registry.find(model);
      if (!entry.manifest?.tokenizer) throw new TaskInputError(`model '${model}' has no tokenizer`);
      const ready = await ctx.registry.acquire(model);
      const tokenizer = ctx.tasks.tokenizer(ready);
      const texts = typeof body.inputs === 'string' ? [body.inputs] : body.inputs;
      enforce(ctx.config, 'maxTextsPerRequest', texts.length, 'the number of texts');
      return Promise.all(texts.map((t) => tokenizer.tokenize(t, body.add_special_tokens ?? true)));
    },
  );

  // OpenAI errors are {error: {message, type, param, code}}; `code` is repeated at the top level, as every other route has it.
  app.register(async (openai) => {
    openai.setErrorHandler((error, request, reply) => {
      const { status, body, headers } = toHttp(namingLimits(error, ctx.config));
      if (status >= 500) request.log.error({ err: error }, 'request failed');
      if (headers) void reply.headers(headers);
      const type = status === 401 ? 'authentication_error' : status === 429 ? 'rate_limit_error' : status >= 500 ? 'server_error' : 'invalid_request_error';
      void reply.status(status).send({ error: { message: body.error, type, param: body.limit ?? null, code: body.code }, code: body.code });
    });
    openai.post(
      '/v1/embeddings',
      {
        config: { write: false },
        schema: {
          tags: ['embeddings'],
          summary: 'OpenAI-compatible embeddings',
          body: OpenAiEmbeddings,
          response: { 200: OpenAiEmbeddingsResponse, 400: OpenAiError, 404: OpenAiError, 413: OpenAiError, 429: OpenAiError, 503: OpenAiError },
        },
      },
      async (request, reply) => {
        const body = request.body as Static<typeof OpenAiEmbeddings>;
        return measured(ctx, body.model, async () => {
          const texts = typeof body.input === 'string' ? [body.input] : body.input;
          // OpenAI's embeddings are unit length, and `dimensions` shortens then re-normalises.
          const result = await embed(ctx.tasks, body.model, texts, { normalize: true, dimensions: body.dimensions }, { signal: disconnectSignal(request, reply) });
          return {
            object: 'list' as const,
            data: result.embeddings.map((v, index) => ({
              object: 'embedding' as const,
              index,
              embedding: body.encoding_format === 'base64' ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') : Array.from(v),
            })),
            model: body.model,
            usage: { prompt_tokens: result.tokens, total_tokens: result.tokens },
          };
        });
      },
    );
  });
}


