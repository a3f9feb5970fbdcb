/**
 * OpenAI-compatible routes: /v1/models, /v1/completions, /v1/chat/completions (streamed or
 * not) and /v1/embeddings. Errors keep OpenAI's shape, {error: {message, type, param, code}},
 * with `code` repeated at the top level as every other route has it.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type Static, Type } from 'typebox';

import { MANIFEST_FILE } from '../../models/manifest.js';
import { embed, type EmbedInput } from '../../models/tasks/embedding.js';
import type { ServerContext } from '../context.js';
import { exactValidator } from '../exact-validator.js';
import { namingLimits, toHttp } from '../http-errors.js';
import { complete, streamCompletion } from '../openai-completions.js';
import { ChatCompletionRequest, ChatCompletionResponse, CompletionRequest, CompletionResponse, OpenAiModel, OpenAiModelList } from '../openai-schemas.js';
import { disconnectSignal, measured } from '../request-outcome.js';
import { EventStream } from '../sse.js';
import { OpenAiEmbeddings, OpenAiEmbeddingsResponse, OpenAiError } from '../task-schemas.js';

const errors = { 400: OpenAiError, 404: OpenAiError, 413: OpenAiError, 429: OpenAiError, 503: OpenAiError, 504: OpenAiError };

/** OpenAI's error body for whatever went wrong. */
export function openAiError(error: unknown, limits: { bodyLimit: number; maxImageBytes: number }) {
  const { status, body, headers } = toHttp(namingLimits(error, limits));
  const type = status === 401 ? 'authentication_error' : status === 429 ? 'rate_limit_error' : status >= 500 ? 'server_error' : 'invalid_request_error';
  return { status, headers, body: { error: { message: body.error, type, param: body.limit ?? null, code: body.code }, code: body.code } };
}

/** OpenAI's `input`: a text, texts, one array of token ids, or an array of them. */
function embedInput(input: Static<typeof OpenAiEmbeddings>['input']): EmbedInput {
  if (typeof input === 'string') return [input];
  if (input.every((x) => typeof x === 'string')) return input as string[];
  if (input.every((x) => typeof x === 'number')) return { tokenIds: [input as number[]] };
  return { tokenIds: input as number[][] };
}

export async function openAiRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  app.setErrorHandler((error, request, reply) => {
    const { status, headers, body } = openAiError(error, ctx.config);
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    else request.log.info({ code: body.code, status }, body.error.message);
    if (headers) void reply.headers(headers);
    void reply.status(status).send(body);
  });

  /** A model as OpenAI lists it; `created` is when its manifest was written. */
  const describe = (name: string, folder: string) => {
    let created = 0;
    try {
      created = Math.floor(statSync(join(folder, MANIFEST_FILE)).mtimeMs / 1000);
    } catch {
      // gone meanwhile: 0
    }
    return { id: name, object: 'model' as const, created, owned_by: 'atenspace' };
  };
  const servable = () => ctx.registry.list().filter((e) => e.state !== 'failed' && e.manifest);

  app.get(
    '/v1/models',
    { schema: { tags: ['openai'], summary: 'Every servable model (not failed), as OpenAI lists models', response: { 200: OpenAiModelList } } },
    async () => {
      await ctx.registry.refresh();
      return { object: 'list' as const, data: servable().map((e) => describe(e.name, e.folder)) };
    },
  );

  app.get(
    '/v1/models/:id',
    {
      schema: {
        tags: ['openai'],
        summary: 'One model, as OpenAI describes it',
        params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) }),
        response: { 200: OpenAiModel, 404: OpenAiError },
      },
    },
    async (request) => {
      const { id } = request.params as { id: string };
      const entry = await ctx.registry.find(id);
      if (entry.state === 'failed' || !entry.manifest) throw Object.assign(new Error(`model '${id}' failed to load: ${entry.error}`), { code: 'MODEL_NOT_READY' });
      return describe(entry.name, entry.folder);
    },
  );

  const generation = (kind: 'completion' | 'chat') => async (request: FastifyRequest, reply: FastifyReply) => {
    const body = request.body as CompletionRequest | ChatCompletionRequest;
    const submit = { signal: disconnectSignal(request, reply) };
    return measured(ctx, body.model, async () => {
      if (body.stream) {
        await streamCompletion(ctx.tasks, kind, body, submit, new EventStream(request, reply, (error) => openAiError(error, ctx.config).body));
        return reply;
      }
      return complete(ctx.tasks, kind, body, submit);
    });
  };

  app.post(
    '/v1/completions',
    {
      config: { write: false },
      schema: {
        tags: ['openai'],
        summary: 'OpenAI-compatible text completions (text-generation models)',
        description: 'Greedy with `temperature: 0` (token-identical to transformers generate(do_sample=False)); `stream: true` answers with Server-Sent Events ending in `data: [DONE]`.',
        body: CompletionRequest,
        response: { 200: CompletionResponse, ...errors },
      },
    },
    generation('completion'),
  );

  app.post(
    '/v1/chat/completions',
    {
      config: { write: false },
      schema: {
        tags: ['openai'],
        summary: 'OpenAI-compatible chat completions (text-generation models with a chat template)',
        description: "Messages are rendered with the model's own chat template (exported from its tokenizer config); a model without one answers 400. `stream: true` answers with `chat.completion.chunk` events ending in `data: [DONE]`.",
        body: ChatCompletionRequest,
        response: { 200: ChatCompletionResponse, ...errors },
      },
    },
    generation('chat'),
  );

  app.post(
    '/v1/embeddings',
    {
      config: { write: false },
      // Checked without the app's type coercion: `input` may be texts or token ids, and coercion
      // would turn the ids into strings of the first branch that accepts them.
      validatorCompiler: exactValidator,
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
        // OpenAI's embeddings are unit length, and `dimensions` shortens then re-normalises.
        const result = await embed(ctx.tasks, body.model, embedInput(body.input), { normalize: true, dimensions: body.dimensions }, { signal: disconnectSignal(request, reply) });
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
}
