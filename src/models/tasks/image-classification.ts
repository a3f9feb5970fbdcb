/**
 * The image-classification task (ViT): image -> pixel_values -> (batched) forward -> softmax
 * over the logits -> the top_k labels, as transformers' image-classification pipeline.
 * Same-size inputs (a fixed-size model's always are) batch with other requests.
 */
import type { SubmitOptions } from '../../batching/batcher.js';
import { type Tensor } from '../../runtime/index.js';
import { imageLimits, imageSpec, preprocessImage } from './image-preprocess.js';
import { TaskInputError } from './task-errors.js';
import type { TaskRuntime } from './task-runtime.js';

export interface ClassifyOptions {
  /** How many labels to return, best first: 1 to the number of labels (default 5, or all when fewer). */
  topK?: number;
}

export interface ClassifyResult {
  labels: { label: string; score: number }[];
}

export const DEFAULT_TOP_K = 5;

/** Class names from the manifest (HF's LABEL_i when it has none). */
export function classLabels(labels: string[] | undefined, count: number, model: string): string[] {
  if (!labels) return Array.from({ length: count }, (_, i) => `LABEL_${i}`);
  if (labels.length !== count) throw new Error(`model '${model}' has ${labels.length} labels in its manifest but outputs ${count} classes`);
  return labels;
}

/** Numerically stable softmax over `n` values starting at `offset`, in float64. */
export function softmax(values: ArrayLike<number>, offset = 0, n = values.length - offset): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, values[offset + i]!);
  const out = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += out[i] = Math.exp(values[offset + i]! - max);
  for (let i = 0; i < n; i++) out[i]! /= sum;
  return out;
}

export async function classify(
  runtime: TaskRuntime,
  model: string,
  image: Buffer,
  options: ClassifyOptions = {},
  submit: SubmitOptions = {},
): Promise<ClassifyResult> {
  const entry = await runtime.entryForTask(model, 'image-classification');
  const manifest = entry.manifest!;
  const spec = imageSpec(manifest);
  const logitsSpec = manifest.outputs[0]!;
  // -1 (dynamic) when the manifest has neither labels nor a static class dimension
  const classes = manifest.labels?.length ?? logitsSpec.shape[logitsSpec.shape.length - 1]!;
  const { topK } = options;
  if (topK !== undefined && (!Number.isInteger(topK) || topK < 1 || (classes > 0 && topK > classes))) {
    throw new TaskInputError(`top_k must be an integer from 1 to the model's ${classes} labels, got ${topK}`);
  }

  const t0 = performance.now();
  const { tensor } = await preprocessImage(image, spec, imageLimits(runtime.limits));
  runtime.observer.stage(model, 'preprocess', (performance.now() - t0) / 1000);

  const outputs = await runtime.infer(entry, new Map<string, Tensor>([[manifest.inputs[0]!.name, tensor]]), submit);

  const t1 = performance.now();
  const logits = outputs.get(logitsSpec.name)!;
  const count = logits.shape[logits.shape.length - 1]!;
  const names = classLabels(manifest.labels ?? undefined, count, model);
  const probs = softmax(logits.data as Float32Array, 0, count);
  const order = Array.from(probs.keys()).sort((a, b) => probs[b]! - probs[a]! || a - b);
  const labels = order.slice(0, Math.min(topK ?? DEFAULT_TOP_K, count)).map((i) => ({ label: names[i]!, score: probs[i]! }));
  runtime.observer.stage(model, 'postprocess', (performance.now() - t1) / 1000);
  return { labels };
}
