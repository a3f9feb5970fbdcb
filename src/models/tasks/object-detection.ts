/**
 * The object-detection task (YOLOS): image -> pixel_values (aspect kept, so sizes vary; equal
 * sizes batch together) -> forward -> transformers' post_process_object_detection: softmax over
 * the classes, the last ("no object") dropped, score = best remaining probability, label = its
 * class, boxes from (cx, cy, w, h) relative to corners in the original image's pixels (not
 * clipped to the image, as transformers), kept when score > threshold. Sorted by score.
 */
import type { SubmitOptions } from '../../batching/batcher.js';
import { type Tensor } from '../../runtime/index.js';
import { classLabels, softmax } from './image-classification.js';
import { imageLimits, imageSpec, preprocessImage } from './image-preprocess.js';
import { TaskInputError } from './task-errors.js';
import type { TaskRuntime } from './task-runtime.js';

export interface DetectOptions {
  /** Keep detections scoring above this (0 to 1; default 0.5, transformers' default). */
  threshold?: number;
}

export interface Detection {
  label: string;
  score: number;
  box: { xmin: number; ymin: number; xmax: number; ymax: number };
}

export interface DetectResult {
  detections: Detection[];
}

export const DEFAULT_THRESHOLD = 0.5;

export async function detect(
  runtime: TaskRuntime,
  model: string,
  image: Buffer,
  options: DetectOptions = {},
  submit: SubmitOptions = {},
): Promise<DetectResult> {
  const entry = await runtime.entryForTask(model, 'object-detection');
  const manifest = entry.manifest!;
  const spec = imageSpec(manifest);
  const threshold = options.threshold ?? DEFAULT_THRESHOLD;
  if (typeof threshold !== 'number' || !Number.isFinite(threshold) || threshold < 0 || threshold > 1) {
    throw new TaskInputError(`threshold must be a number from 0 to 1, got ${String(options.threshold)}`);
  }
  const logitsName = manifest.outputs[0]!.name;
  const boxesName = manifest.outputs[1]?.name ?? 'pred_boxes';

  const t0 = performance.now();
  const { tensor, original } = await preprocessImage(image, spec, imageLimits(runtime.limits));
  runtime.observer.stage(model, 'preprocess', (performance.now() - t0) / 1000);

  const outputs = await runtime.infer(entry, new Map<string, Tensor>([[manifest.inputs[0]!.name, tensor]]), submit);

  const t1 = performance.now();
  const logits = outputs.get(logitsName);
  const boxes = outputs.get(boxesName);
  if (!logits || !boxes || logits.shape.length !== 3 || boxes.shape.length !== 3 || boxes.shape[2] !== 4) {
    throw new Error(`model '${model}' did not return logits [1, N, classes] and pred_boxes [1, N, 4]`);
  }
  const queries = logits.shape[1]!;
  const classes = logits.shape[2]!;
  if (classes < 2) throw new Error(`model '${model}' returns ${classes} class(es); object detection needs the "no object" class too`);
  const names = classLabels(manifest.labels ?? undefined, classes, model);
  const l = logits.data as Float32Array;
  const b = boxes.data as Float32Array;
  const { width: w, height: h } = original;
  const detections: Detection[] = [];
  for (let q = 0; q < queries; q++) {
    const probs = softmax(l, q * classes, classes);
    let best = 0;
    for (let c = 1; c < classes - 1; c++) if (probs[c]! > probs[best]!) best = c;
    const score = probs[best]!;
    if (!(score > threshold)) continue;
    const [cx, cy, bw, bh] = [b[q * 4]!, b[q * 4 + 1]!, b[q * 4 + 2]!, b[q * 4 + 3]!];
    detections.push({
      label: names[best]!,
      score,
      box: { xmin: (cx - 0.5 * bw) * w, ymin: (cy - 0.5 * bh) * h, xmax: (cx + 0.5 * bw) * w, ymax: (cy + 0.5 * bh) * h },
    });
  }
  detections.sort((x, y) => y.score - x.score);
  runtime.observer.stage(model, 'postprocess', (performance.now() - t1) / 1000);
  return { detections };
}
