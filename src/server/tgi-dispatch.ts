/**
 * POST / as text-generation-inference and text-embeddings-inference both serve it: which model a
 * body goes to, and whether the body fits that model's task.
 *
 * The rule: the model the body names (`model`, this server's extension); else a body only text
 * generation sends (`stream`, or `parameters` other than TEI's options) goes to the first
 * text-generation model; any other body to the embedding default (EMBED_MODEL or the first
 * embedding model), or, with no embedding model, to the first text-generation model.
 */
import { Compile } from 'typebox/compile';

import type { Task } from '../models/manifest.js';
import { TaskInputError } from '../models/tasks/task-errors.js';
import type { ServerContext } from './context.js';
import { embeddingModel, generationModel, hasEmbeddingModel } from './default-models.js';
import { badRequest, firstError } from './exact-validator.js';
import { TEI_OPTIONS, TeiRequest, TgiRequest } from './tgi-schemas.js';

const tgiCheck = Compile(TgiRequest);
const teiCheck = Compile(TeiRequest);
const TEI_PARAMETERS = new Set([...TEI_OPTIONS, 'encoding_format']);

/** Whether only text generation would send this body (TEI's `truncate` is a boolean, TGI's a number). */
export function looksLikeGeneration(body: unknown): boolean {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return false;
  if ('stream' in body) return true;
  const parameters = (body as { parameters?: unknown }).parameters;
  if (!parameters || typeof parameters !== 'object' || Array.isArray(parameters)) return false;
  return Object.entries(parameters).some(([key, value]) => !TEI_PARAMETERS.has(key) || (key === 'truncate' && typeof value === 'number'));
}

/** POST /'s validatorCompiler: a TGI or a TEI body, checked exactly (no coercion); else a 400 from the shape it resembles. */
export function compatValidator() {
  return (data: unknown) => {
    if (tgiCheck.Check(data) || teiCheck.Check(data)) return { value: data };
    return {
      error: badRequest(
        looksLikeGeneration(data) ? `not a TGI generate request ({inputs, parameters?, stream?}): ${firstError(tgiCheck, data)}` : `not a TEI embed request ({inputs, normalize?, truncate?, ...}): ${firstError(teiCheck, data)}`,
      ),
    };
  };
}

export type Routed = { task: 'text-generation'; model: string; body: TgiRequest } | { task: 'embedding'; model: string; body: TeiRequest };

/** The model and task a POST / body goes to; a 400 when the body does not fit the model's task. */
export async function routeCompat(ctx: ServerContext, body: TgiRequest | TeiRequest): Promise<Routed> {
  let model: string;
  let task: Task;
  if (body.model) {
    const entry = await ctx.registry.find(body.model);
    if (!entry.manifest) throw Object.assign(new Error(`model '${body.model}' failed to load: ${entry.error}`), { code: 'MODEL_NOT_READY' });
    model = entry.name;
    task = entry.manifest.task;
  } else if (looksLikeGeneration(body) || !hasEmbeddingModel(ctx)) {
    model = generationModel(ctx, undefined);
    task = 'text-generation';
  } else {
    model = embeddingModel(ctx, undefined);
    task = 'embedding';
  }
  if (task === 'text-generation') {
    if (!tgiCheck.Check(body)) throw badRequest(`model '${model}' is a text-generation model, which takes TGI's {inputs, parameters?, stream?}: ${firstError(tgiCheck, body)}`);
    return { task, model, body };
  }
  if (task === 'embedding') {
    if (!teiCheck.Check(body)) throw badRequest(`model '${model}' is an embedding model, which takes TEI's {inputs, normalize?, truncate?, ...}: ${firstError(teiCheck, body)}`);
    return { task, model, body };
  }
  throw new TaskInputError(`model '${model}' is a ${task} model; POST / serves text-generation and embedding models`);
}
