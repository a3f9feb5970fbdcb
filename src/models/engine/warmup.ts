/**
 * Warm-up and cost calibration of a freshly loaded module: forwards at a few shapes before the
 * model is ready, so the first user request is not the slow one (TorchScript's profiling
 * executor optimises a graph after a couple of runs at a shape), and so the engine's cost
 * model starts from forwards measured on this machine instead of a guess.
 */
import { type Tensor, tensor, zeros } from '../../runtime/index.js';
import { type Manifest, type PastKeyValuesSection, type TensorSpec } from '../manifest.js';
import { isPaddable } from '../tensor-batch.js';
import type { CostSample } from './cost-model.js';

/** Something that runs a forward (the engine's module). */
export interface Forward {
  forward(inputs: Tensor[]): Promise<unknown>;
}

/** Inputs for every manifest input at `rows` rows and, for token inputs, `length` tokens. */
export function exampleInputs(manifest: Manifest, rows: number, length: number): Tensor[] {
  return manifest.inputs.map((spec) => exampleInput(manifest, spec, rows, length));
}

function exampleInput(manifest: Manifest, spec: TensorSpec, rows: number, length: number): Tensor {
  const image = manifest.image ?? undefined;
  const { shape, dtype, name } = spec;
  const dims = shape.map((d, i) => {
    if (d !== -1) return d;
    if (i === 0) return rows;
    if (shape.length === 4 && i === 2) return image?.height ?? 32;
    if (shape.length === 4 && i === 3) return image?.width ?? 32;
    return length;
  });
  const count = dims.reduce((a, b) => a * b, 1);
  if (name === 'attention_mask' || (dtype === 'int64' && isPaddable(spec, manifest))) return tensor(dtype, dims, new Array<number>(count).fill(1));
  return zeros(dtype, dims);
}

/** Whether the model's inputs have a sequence dimension the engine pads. */
export function hasTokens(manifest: Manifest): boolean {
  return manifest.inputs.some((spec) => isPaddable(spec, manifest));
}

/**
 * Run the warm-up shapes, then time a small grid of (rows, length) shapes for the cost model:
 * each shape runs three times and the fastest of the last two counts (the first run of a new
 * shape may be re-optimised). About a second for a MiniLM-size encoder on two CPU cores.
 */
export async function warmUpAndCalibrate(module: Forward, manifest: Manifest): Promise<CostSample[]> {
  const maxRows = manifest.max_batch_size;
  const maxLength = manifest.max_sequence_length ?? 512;
  const tokens = hasTokens(manifest);
  const shortLength = Math.min(8, maxLength);
  for (const rows of [1, Math.min(2, maxRows)]) {
    for (let i = 0; i < 2; i++) await module.forward(exampleInputs(manifest, rows, shortLength));
  }
  const rowsGrid = [...new Set([1, Math.min(4, maxRows), Math.min(16, maxRows)])];
  const lengthGrid = tokens ? [...new Set([shortLength, Math.min(32, maxLength), Math.min(96, maxLength)])] : [0];
  const samples: CostSample[] = [];
  for (const length of lengthGrid) {
    for (const rows of rowsGrid) {
      // Skip the largest corner for long sequences: it alone would cost more than the rest.
      if (rows === 16 && length > 32) continue;
      const inputs = exampleInputs(manifest, rows, Math.max(1, length));
      let best = Infinity;
      for (let i = 0; i < 3; i++) {
        const t0 = performance.now();
        await module.forward(inputs);
        if (i > 0) best = Math.min(best, performance.now() - t0);
      }
      samples.push({ rows, length, ms: best });
    }
  }
  return samples;
}

/** Warm the past key/values module: a short prefill, then a decode step on its cache, twice. */
export async function warmUpPast(past: Forward, geometry: PastKeyValuesSection): Promise<void> {
  const { n_layer, n_head, head_dim } = geometry;
  for (let i = 0; i < 2; i++) {
    const empty = Array.from({ length: 2 * n_layer }, () => zeros('float32', [1, n_head, 0, head_dim]));
    const out = (await past.forward([tensor('int64', [1, 2], [1, 1]), tensor('int64', [1, 2], [1, 1]), ...empty])) as Tensor[];
    await past.forward([tensor('int64', [1, 1], [1]), tensor('int64', [1, 3], [1, 1, 1]), ...out.slice(1)]);
  }
}
