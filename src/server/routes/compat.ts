/**
 * Familiar endpoints: TEI's POST /embed and POST /tokenize, over the same embedding pipeline as
 * /infer. (OpenAI's routes are in openai.ts.)
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type Static, Type } from 'typebox';

import { enforce } from '../../models/limits.js';
import { embed } from '../../models/tasks/embedding.js';
import { TaskInputError } from '../../models/tasks/task-errors.js';
import type { ServerContext } from '../context.js';
import { embeddingModel } from '../default-models.js';
import { ErrorResponse } from '../schemas.js';
import { TeiEmbed, TeiToken, TeiTokenize } from '../task-schemas.js';
import { disconnectSignal, measured } from '../request-outcome.js';

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
      const model = embeddingModel(ctx, body.model);
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
      const model = embeddingModel(ctx, body.model);
      const entry = await ctx.registry.find(model);
      if (!entry.manifest?.tokenizer) throw new TaskInputError(`model '${model}' has no tokenizer`);
      const ready = await ctx.registry.acquire(model);
      const tokenizer = ctx.tasks.tokenizer(ready);
      const texts = typeof body.inputs === 'string' ? [body.inputs] : body.inputs;
      enforce(ctx.config, 'maxTextsPerRequest', texts.length, 'the number of texts');
      return Promise.all(texts.map((t) => tokenizer.tokenize(t, body.add_special_tokens ?? true)));
    },
  );
}
