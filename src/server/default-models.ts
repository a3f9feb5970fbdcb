/**
 * Which model a request goes to when it names none (TEI's and TGI's routes serve one model and
 * take no model name): EMBED_MODEL or the first embedding model for embeddings, the first
 * text-generation model for generation; ready models first, else any that can still load.
 */
import type { Task } from '../models/manifest.js';
import type { ServerContext } from './context.js';
import { HttpError } from './http-errors.js';

/** The first ready (else loadable, not failed) model of `task`, if any. */
function firstOf(ctx: ServerContext, task: Task): string | undefined {
  const candidates = ctx.registry.list().filter((e) => e.manifest?.task === task);
  return (candidates.find((e) => e.state === 'ready') ?? candidates.find((e) => e.state !== 'failed'))?.name;
}

/** Whether the repository holds a servable embedding model (or EMBED_MODEL names one). */
export function hasEmbeddingModel(ctx: ServerContext): boolean {
  return Boolean(ctx.config.embedModel ?? firstOf(ctx, 'embedding'));
}

/** The model a request names, or EMBED_MODEL, or the first ready (else loadable) embedding model. */
export function embeddingModel(ctx: ServerContext, named: string | undefined): string {
  if (named) return named;
  if (ctx.config.embedModel) return ctx.config.embedModel;
  const first = firstOf(ctx, 'embedding');
  if (!first) throw new HttpError(404, 'MODEL_NOT_FOUND', 'no embedding model in the repository; name one with "model"');
  return first;
}

/** The model a request names, or the first ready (else loadable) text-generation model. */
export function generationModel(ctx: ServerContext, named: string | undefined): string {
  if (named) return named;
  const first = firstOf(ctx, 'text-generation');
  if (!first) throw new HttpError(404, 'MODEL_NOT_FOUND', 'no text-generation model in the repository; name one with "model"');
  return first;
}
