/**
 * POST /infer bodies by task: which schema each task's body follows, plain errors for bodies
 * that do not, and the pieces a body carries (an image as bytes, a multipart form, generation
 * settings in the task's terms).
 */
import type { FastifyRequest } from 'fastify';
import type { TSchema } from 'typebox';
import { Value } from 'typebox/value';

import type { Task } from '../models/manifest.js';
import { aTask, TaskInputError } from '../models/tasks/task-errors.js';
import type { GenerateOptions } from '../models/tasks/text-generation.js';
import { ClassificationInfer, DetectionInfer, EmbeddingInfer, GenerationInfer } from './task-schemas.js';

export const BODY_BY_TASK: Record<Task, TSchema> = {
  embedding: EmbeddingInfer,
  'text-generation': GenerationInfer,
  'image-classification': ClassificationInfer,
  'object-detection': DetectionInfer,
};

const TASK_FIELDS: Record<string, Task> = { image: 'image-classification', max_new_tokens: 'text-generation', top_p: 'text-generation', temperature: 'text-generation', threshold: 'object-detection', dimensions: 'embedding' };

/** The first schema error, said plainly; names the task a stray field belongs to. */
export function describeInvalid(schema: TSchema, body: unknown, model: string, task: Task): string {
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
export function imageOf(body: { image?: string | Buffer }): Buffer {
  if (!body.image) throw new TaskInputError("missing 'image'");
  return Buffer.isBuffer(body.image) ? body.image : imageBytes(body.image);
}

/** Multipart form: fields as strings, the `image` file as a Buffer. */
export async function multipartBody(request: FastifyRequest): Promise<Record<string, unknown>> {
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

/** A generation body's settings, in the task's terms. */
export function generationOptions(b: GenerationInfer): GenerateOptions {
  return {
    maxNewTokens: b.max_new_tokens,
    ...(b.temperature !== undefined ? { temperature: b.temperature } : {}),
    ...(b.top_k !== undefined ? { topK: b.top_k } : {}),
    ...(b.top_p !== undefined ? { topP: b.top_p } : {}),
    ...(b.seed !== undefined ? { seed: b.seed } : {}),
    ...(b.stop !== undefined ? { stop: typeof b.stop === 'string' ? [b.stop] : b.stop } : {}),
  };
}
