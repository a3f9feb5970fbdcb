/**
 * POST /infer: one endpoint for every model. A body with `inputs` is raw tensors; otherwise
 * the model's task decides what the body holds (text, image, generation settings). Images
 * may also be uploaded as multipart/form-data.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { Value } from 'typebox/value';

import { ResponseCache } from '../../models/response-cache.js';
import { generate, isSampling } from '../../models/tasks/text-generation.js';
import type { ServerContext } from '../context.js';
import { HttpError } from '../http-errors.js';
import { InferRequest } from '../schemas.js';
import {
  ClassificationInfer,
  ClassificationResponse,
  DetectionInfer,
  DetectionResponse,
  EmbeddingInfer,
  EmbeddingResponse,
  GenerationInfer,
  GenerationResponse,
} from '../task-schemas.js';
import { acceptBinaryBodies, BINARY_CONTENT_TYPE, registerBinaryBodies } from '../kserve-binary.js';
import { type Body, inferTensors } from '../kserve-infer.js';
import { disconnectSignal, errors, measured } from '../request-outcome.js';
import { answerTask } from '../task-answers.js';
import { EventStream } from '../sse.js';
import { BODY_BY_TASK, describeInvalid, generationOptions, multipartBody } from '../task-bodies.js';

export async function taskInferRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  const { registry, tasks, responseCache } = ctx;
  registerBinaryBodies(app, ctx.config.bodyLimit);

  app.post(
    '/infer',
    {
      config: { write: false },
      ...acceptBinaryBodies,
      attachValidation: true,
      schema: {
        tags: ['inference'],
        summary: 'Run a model: raw tensors, or by its task (text, image)',
        description: [
          'The body depends on the model:',
          '- raw tensors (any model): `{model, version?, inputs: [{name, shape, datatype, data}], outputs?}` → `{model_name, model_version, outputs}`; tensors may also travel as raw bytes (the KServe v2 binary tensor data extension: an `application/octet-stream` body with the `Inference-Header-Content-Length` header, see POST /v2/models/{name}/infer)',
          '- embedding: `{model, text, normalize?, truncate?, dimensions?}` → `{model, embeddings, usage: {tokens}}`',
          '- text-generation: `{model, text, max_new_tokens, temperature?, top_k?, top_p?, seed?, stop?, stream?}` → `{model, text, tokens, token_ids, finish_reason, usage}` (or Server-Sent Events with `stream: true`)',
          '- image-classification: `{model, image, top_k?}` → `{model, labels: [{label, score}]}`',
          '- object-detection: `{model, image, threshold?}` → `{model, detections: [{label, score, box}]}`',
          'Images are base64 or data: URLs, or a multipart/form-data upload with fields `model`, `image` (file) and `top_k` / `threshold`.',
        ].join('\n'),
        consumes: ['application/json', 'multipart/form-data', BINARY_CONTENT_TYPE],
        produces: ['application/json', 'text/event-stream', BINARY_CONTENT_TYPE],
        body: Type.Union([EmbeddingInfer, GenerationInfer, ClassificationInfer, DetectionInfer, InferRequest]),
        response: {
          200: Type.Union([EmbeddingResponse, GenerationResponse, ClassificationResponse, DetectionResponse, Type.Object({ model_name: Type.String(), model_version: Type.Optional(Type.String()), id: Type.Optional(Type.String()), outputs: Type.Array(Type.Unknown()) })], {
            description: 'depends on the task (see above)',
          }),
          ...errors,
        },
      },
    },
    async (request, reply) => {
      const multipart = request.isMultipart();
      const body = (multipart ? await multipartBody(request) : request.body) as Record<string, unknown> | null;
      if (!body || typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, 'BAD_REQUEST', 'the body must be a JSON object');
      const model = body.model;
      if (typeof model !== 'string' || model === '') throw new HttpError(400, 'BAD_REQUEST', "missing field 'model'");
      if ('inputs' in body) {
        if (request.validationError) {
          const first = [...Value.Errors(InferRequest, body)][0];
          throw new HttpError(400, 'BAD_REQUEST', `invalid raw-tensor request: ${first ? `${first.instancePath || 'body'} ${first.message}` : 'malformed'}`);
        }
        const version = body.version;
        return inferTensors(ctx, model, body as unknown as Body, request, reply, typeof version === 'string' ? version : undefined);
      }

      return measured(ctx, model, async () => {
        const entry = await registry.find(model);
        const task = entry.manifest?.task;
        if (!task) throw new HttpError(503, 'MODEL_NOT_READY', `model '${model}' failed: ${entry.error}`);
        const schema = BODY_BY_TASK[task];
        if (!multipart && !Value.Check(schema, body)) throw new HttpError(400, 'BAD_INPUT', describeInvalid(schema, body, model, task));
        const signal = disconnectSignal(request, reply);
        const submit = { signal };

        if (task === 'text-generation' && (body as GenerationInfer).stream) {
          await streamGeneration(ctx, model, body as GenerationInfer, request, reply, signal);
          return reply;
        }
        const cacheable = responseCache.enabled && !(task === 'text-generation' && isSampling(body as GenerationInfer));
        const key = cacheable ? ResponseCache.key(model, 'infer', { ...body, image: multipart ? (body.image as Buffer | undefined)?.toString('base64') : body.image }) : '';
        const cached = cacheable ? responseCache.get(model, key) : undefined;
        if (cached !== undefined) {
          return reply.header('content-type', 'application/json; charset=utf-8').header('x-cache', 'hit').send(cached);
        }

        const response = await answerTask(tasks, task, model, body, submit);
        const text = JSON.stringify(response);
        if (cacheable) responseCache.set(model, key, text);
        return reply.header('content-type', 'application/json; charset=utf-8').header('x-cache', cacheable ? 'miss' : 'off').send(text);
      });
    },
  );
}

/** text/event-stream: one `data:` event per piece of text, then the summary, then [DONE]. */
async function streamGeneration(ctx: ServerContext, model: string, b: GenerationInfer, request: FastifyRequest, reply: FastifyReply, signal: AbortSignal) {
  const stream = new EventStream(request, reply);
  let index = 0;
  await stream.run(async () => {
    const result = await generate(ctx.tasks, model, b.text, generationOptions(b), { signal }, (piece, token) => stream.send({ index: index++, token, text: piece }));
    stream.send({ model, text: result.text, tokens: result.tokenIds.length, finish_reason: result.finishReason, usage: { prompt_tokens: result.promptTokens, completion_tokens: result.tokenIds.length } });
    stream.end('[DONE]');
  });
}
