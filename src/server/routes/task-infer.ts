/**
 * POST /infer: one endpoint for every model. A body with `inputs` is raw tensors; otherwise
 * the model's task decides what the body holds (text, image, generation settings). Images
 * may also be uploaded as multipart/form-data.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type TSchema } from 'typebox';
import { Value } from 'typebox/value';

import type { Task } from '../../models/manifest.js';
import { ResponseCache } from '../../models/response-cache.js';
import { embed } from '../../models/tasks/embedding.js';
import { classify } from '../../models/tasks/image-classification.js';
import { detect } from '../../models/tasks/object-detection.js';
import { aTask, TaskInputError } from '../../models/tasks/task-errors.js';
import { generate, isSampling } from '../../models/tasks/text-generation.js';
import type { ServerContext } from '../context.js';
import { HttpError, toHttp } from '../http-errors.js';
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
import { type Body, disconnectSignal, errors, inferTensors, outcomeOf } from './infer.js';

const BODY_BY_TASK: Record<Task, TSchema> = {
  embedding: EmbeddingInfer,
  'text-generation': GenerationInfer,
  'image-classification': ClassificationInfer,
  'object-detection': DetectionInfer,
};

const TASK_FIELDS: Record<string, Task> = { image: 'image-classification', max_new_tokens: 'text-generation', top_p: 'text-generation', temperature: 'text-generation', threshold: 'object-detection', dimensions: 'embedding' };

/** The first schema error, said plainly; names the task a stray field belongs to. */
function describeInvalid(schema: TSchema, body: unknown, model: string, task: Task): string {
  const allowed = Object.keys((schema as { properties?: object }).properties ?? {});
  for (const key of Object.keys((body as object) ?? {})) {
    if (!allowed.includes(key)) {
      const owner = TASK_FIELDS[key];
      return owner && owner !== task
        ? `'${key}' is ${aTask(owner)} field, but model '${model}' is ${aTask(task)} model (fields: ${allowed.join(', ')})`
        : `unknown field '${key}' for ${aTask(task)} model (fields: ${allowed.join(', ')})`;
    }
  }
  const first = [...Value.Errors(schema, body)][0];
  if (!first) return 'invalid request';
  const where = first.instancePath ? first.instancePath.slice(1).replace(/\//g, '.') : 'body';
  const missing = (first.params as { requiredProperties?: string[] } | undefined)?.requiredProperties;
  return missing ? `missing field '${missing.join("', '")}' for ${aTask(task)} model` : `${where} ${first.message}`;
}

/** The image bytes of a JSON body (base64 or data URL). */
function imageBytes(image: string): Buffer {
  const comma = image.startsWith('data:') ? image.indexOf(',') : -1;
  const text = comma >= 0 ? image.slice(comma + 1) : image;
  if (!/^[A-Za-z0-9+/=\s_-]+$/.test(text)) throw new TaskInputError('image must be base64 or a data: URL');
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length === 0) throw new TaskInputError('image is empty');
  return bytes;
}

/** The image of an image-task body: uploaded bytes (multipart), or base64 / a data: URL (JSON). */
function imageOf(body: { image?: string | Buffer }): Buffer {
  if (!body.image) throw new TaskInputError("missing 'image'");
  return Buffer.isBuffer(body.image) ? body.image : imageBytes(body.image);
}

/** Multipart form: fields as strings, the `image` file as a Buffer. */
async function multipartBody(request: FastifyRequest): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for await (const part of request.parts()) {
    if (part.type === 'file') {
      out[part.fieldname] = await part.toBuffer();
    } else {
      out[part.fieldname] = part.value;
    }
  }
  for (const key of ['top_k', 'threshold']) {
    if (typeof out[key] === 'string' && out[key] !== '') out[key] = Number(out[key]);
  }
  return out;
}

export async function taskInferRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  const { registry, tasks, responseCache, metrics } = ctx;

  app.post(
    '/infer',
    {
      config: { write: false },
      attachValidation: true,
      schema: {
        tags: ['inference'],
        summary: 'Run a model: raw tensors, or by its task (text, image)',
        description: [
          'The body depends on the model:',
          '- raw tensors (any model): `{model, inputs: [{name, shape, datatype, data}], outputs?}` → `{model_name, outputs}`',
          '- embedding: `{model, text, normalize?, truncate?, dimensions?}` → `{model, embeddings, usage: {tokens}}`',
          '- text-generation: `{model, text, max_new_tokens, temperature?, top_k?, top_p?, seed?, stop?, stream?}` → `{model, text, tokens, token_ids, finish_reason, usage}` (or Server-Sent Events with `stream: true`)',
          '- image-classification: `{model, image, top_k?}` → `{model, labels: [{label, score}]}`',
          '- object-detection: `{model, image, threshold?}` → `{model, detections: [{label, score, box}]}`',
          'Images are base64 or data: URLs, or a multipart/form-data upload with fields `model`, `image` (file) and `top_k` / `threshold`.',
        ].join('\n'),
        consumes: ['application/json', 'multipart/form-data'],
        body: Type.Union([EmbeddingInfer, GenerationInfer, ClassificationInfer, DetectionInfer, InferRequest]),
        response: {
          200: Type.Union([EmbeddingResponse, GenerationResponse, ClassificationResponse, DetectionResponse, Type.Object({ model_name: Type.String(), outputs: Type.Array(Type.Unknown()) })], {
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
        return inferTensors(ctx, model, body as unknown as Body, request, reply);
      }

      const started = performance.now();
      let status = 200;
      try {
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

        let response: unknown;
        switch (task) {
          case 'embedding': {
            const b = body as EmbeddingInfer;
            const texts = typeof b.text === 'string' ? [b.text] : b.text;
            const result = await embed(tasks, model, texts, { normalize: b.normalize, truncate: b.truncate, dimensions: b.dimensions }, submit);
            response = { model, embeddings: result.embeddings.map((v) => Array.from(v)), usage: { tokens: result.tokens } };
            break;
          }
          case 'text-generation': {
            const b = body as GenerationInfer;
            const result = await generate(tasks, model, b.text, generationOptions(b), submit);
            response = {
              model,
              text: result.text,
              tokens: result.tokenIds.length,
              token_ids: result.tokenIds,
              finish_reason: result.finishReason,
              usage: { prompt_tokens: result.promptTokens, completion_tokens: result.tokenIds.length },
            };
            break;
          }
          case 'image-classification': {
            const b = body as { image?: string | Buffer; top_k?: number };
            response = { model, ...(await classify(tasks, model, imageOf(b), { ...(b.top_k !== undefined ? { topK: b.top_k } : {}) }, submit)) };
            break;
          }
          case 'object-detection': {
            const b = body as { image?: string | Buffer; threshold?: number };
            response = { model, ...(await detect(tasks, model, imageOf(b), { ...(b.threshold !== undefined ? { threshold: b.threshold } : {}) }, submit)) };
            break;
          }
        }
        const text = JSON.stringify(response);
        if (cacheable) responseCache.set(model, key, text);
        return reply.header('content-type', 'application/json; charset=utf-8').header('x-cache', cacheable ? 'miss' : 'off').send(text);
      } catch (error) {
        status = toHttp(error).status;
        throw error;
      } finally {
        if (registry.get(model)) metrics.request(model, outcomeOf(status), (performance.now() - started) / 1000);
      }
    },
  );
}

function generationOptions(b: GenerationInfer) {
  return {
    maxNewTokens: b.max_new_tokens,
    ...(b.temperature !== undefined ? { temperature: b.temperature } : {}),
    ...(b.top_k !== undefined ? { topK: b.top_k } : {}),
    ...(b.top_p !== undefined ? { topP: b.top_p } : {}),
    ...(b.seed !== undefined ? { seed: b.seed } : {}),
    ...(b.stop !== undefined ? { stop: typeof b.stop === 'string' ? [b.stop] : b.stop } : {}),
  };
}

/** text/event-stream: one `data:` event per piece of text, then the summary, then [DONE]. */
async function streamGeneration(ctx: ServerContext, model: string, b: GenerationInfer, request: FastifyRequest, reply: FastifyReply, signal: AbortSignal) {
  let started = false;
  const start = () => {
    if (started) return;
    started = true;
    reply.hijack();
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-request-id': request.id });
  };
  const send = (data: unknown) => {
    start();
    reply.raw.write(`data: ${JSON.stringify(data)}\n\n`);
  };
  let index = 0;
  try {
    const result = await generate(ctx.tasks, model, b.text, generationOptions(b), { signal }, (piece, token) => send({ index: index++, token, text: piece }));
    send({ model, text: result.text, tokens: result.tokenIds.length, finish_reason: result.finishReason, usage: { prompt_tokens: result.promptTokens, completion_tokens: result.tokenIds.length } });
    reply.raw.end('data: [DONE]\n\n');
  } catch (error) {
    if (!started) throw error; // nothing sent yet: an ordinary JSON error
    const { body } = toHttp(error);
    reply.raw.end(`event: error\ndata: ${JSON.stringify(body)}\n\n`);
  }
}
