/**
 * The embedding task: text -> tokens -> (batched) forward -> pooled, normalised vectors.
 * Each text is queued on its own, so texts of one request batch with those of others, and
 * the batcher pads each batch only to its own longest text.
 */
import type { SubmitOptions } from '../../batching/batcher.js';
import type { ModelEntry } from '../registry.js';
import { type Tensor, tensor } from '../../runtime/index.js';
import { enforce } from '../limits.js';
import { sectionOf } from '../manifest.js';
import { finish, pool } from './pooling.js';
import { TaskInputError } from './task-errors.js';
import type { TaskRuntime } from './task-runtime.js';

export interface EmbedOptions {
  normalize?: boolean;
  truncate?: boolean;
  dimensions?: number;
}

export interface EmbedResult {
  embeddings: Float32Array[];
  tokens: number;
}

/** Texts, or token-id arrays given by the caller (used as given, no special tokens added). */
export type EmbedInput = string[] | { tokenIds: number[][] };

export async function embed(runtime: TaskRuntime, model: string, input: EmbedInput, options: EmbedOptions, submit: SubmitOptions = {}): Promise<EmbedResult> {
  const entry = await runtime.entryForTask(model, 'embedding');
  const section = sectionOf(entry.manifest!, 'embedding');
  const count = Array.isArray(input) ? input.length : input.tokenIds.length;
  if (count === 0) throw new TaskInputError('no text to embed');
  enforce(runtime.limits, 'maxTextsPerRequest', count, 'the number of texts');
  if (Array.isArray(input)) {
    input.forEach((t, i) => {
      if (typeof t !== 'string' || t.trim() === '') throw new TaskInputError(`text ${i} is empty`);
    });
  }
  const { dimensions } = options;
  if (dimensions !== undefined && (!Number.isInteger(dimensions) || dimensions < 1 || dimensions > section.dimension)) {
    throw new TaskInputError(`dimensions must be an integer from 1 to the model's ${section.dimension}`);
  }

  const t0 = performance.now();
  const tokenizer = runtime.tokenizer(entry);
  const encoded = Array.isArray(input) ? await tokenizer.encode(input, options.truncate ?? false) : tokenizer.fromIds(input.tokenIds);
  const withTypes = entry.manifest!.inputs.some((i) => i.name === 'token_type_ids');
  runtime.observer.stage(model, 'preprocess', (performance.now() - t0) / 1000);
  const tokens = encoded.reduce((n, e) => n + e.ids.length, 0);
  runtime.tokensPerRequest(model, tokens);

  const hidden = await Promise.all(
    encoded.map((e) => {
      const n = e.ids.length;
      const inputs = new Map<string, Tensor>([
        ['input_ids', tensor('int64', [1, n], e.ids)],
        ['attention_mask', tensor('int64', [1, n], new Array<number>(n).fill(1))],
      ]);
      if (withTypes) inputs.set('token_type_ids', tensor('int64', [1, n], e.typeIds));
      return runtime.infer(entry, inputs, submit);
    }),
  );

  const t1 = performance.now();
  const normalize = options.normalize ?? section.normalize;
  const embeddings = hidden.map((outputs, i) => {
    const state = outputs.get(entry.manifest!.outputs[0]!.name)!;
    const width = state.shape[state.shape.length - 1]!;
    const seq = encoded[i]!.ids.length;
    return finish(pool(state.data as Float32Array, seq, width, section.pooling), dimensions, normalize);
  });
  runtime.observer.stage(model, 'postprocess', (performance.now() - t1) / 1000);
  return { embeddings, tokens };
}

export function embeddingDimension(entry: ModelEntry): number {
  return sectionOf(entry.manifest!, 'embedding').dimension;
}
