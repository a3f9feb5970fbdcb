/**
 * Raw-tensor requests against a manifest: validation, and joining requests into one batch
 * (concatenated on dim 0, token inputs right-padded on dim 1) and splitting the outputs back.
 */
import { type DType, type Tensor, type TensorData, numel, zeros } from '../runtime/index.js';
import type { Manifest, TensorSpec } from './manifest.js';
import type { StageTrace } from './request-trace.js';

export class InputError extends Error {
  readonly code = 'BAD_INPUT';
}

/** Token-id style inputs: int64 [batch, seq], safe to right-pad because a mask hides the pad. */
const PADDABLE = new Set(['input_ids', 'attention_mask', 'token_type_ids', 'position_ids']);

export function isPaddable(spec: TensorSpec, manifest: Manifest): boolean {
  const hasMask = manifest.inputs.some((i) => i.name === 'attention_mask');
  return hasMask && PADDABLE.has(spec.name) && spec.dtype === 'int64' && spec.shape.length === 2 && spec.shape[1] === -1;
}

/** One request, validated: its tensors in the manifest's input order. */
export interface InferItem {
  inputs: Tensor[];
  rows: number;
  /** Sequence length of the padded inputs (0 when none). */
  seq: number;
  /** The request's trace, when it is traced: gets its queue and compute stages. */
  trace?: StageTrace;
}

export function validateInputs(manifest: Manifest, named: Map<string, Tensor>): InferItem {
  for (const name of named.keys()) {
    if (!manifest.inputs.some((s) => s.name === name)) {
      throw new InputError(`unknown input '${name}' (model '${manifest.name}' takes ${manifest.inputs.map((s) => s.name).join(', ')})`);
    }
  }
  const inputs: Tensor[] = [];
  let rows = -1;
  let seq = 0;
  for (const spec of manifest.inputs) {
    const t = named.get(spec.name);
    if (!t) throw new InputError(`missing input '${spec.name}'`);
    if (t.dtype !== spec.dtype) throw new InputError(`input '${spec.name}' has dtype ${t.dtype}, the model expects ${spec.dtype}`);
    if (t.shape.length !== spec.shape.length) {
      throw new InputError(`input '${spec.name}' has shape [${t.shape}], the model expects rank ${spec.shape.length} ([${spec.shape}])`);
    }
    spec.shape.forEach((dim, i) => {
      if (dim !== -1 && t.shape[i] !== dim) {
        throw new InputError(`input '${spec.name}' has shape [${t.shape}], dimension ${i} must be ${dim}`);
      }
    });
    checkBounds(spec, t.shape);
    if (numel(t.shape) !== t.data.length) {
      throw new InputError(`input '${spec.name}': shape [${t.shape}] needs ${numel(t.shape)} values, data has ${t.data.length}`);
    }
    const batch = t.shape[0] ?? 1;
    if (rows >= 0 && batch !== rows) throw new InputError(`input '${spec.name}' has batch size ${batch}, other inputs have ${rows}`);
    rows = batch;
    if (isPaddable(spec, manifest)) {
      const len = t.shape[1]!;
      if (seq && len !== seq) throw new InputError(`input '${spec.name}' has sequence length ${len}, other inputs have ${seq}`);
      seq = len;
    }
    inputs.push(t);
  }
  if (rows < 1) throw new InputError('inputs have an empty batch dimension');
  if (rows > manifest.max_batch_size) {
    throw new InputError(`batch size ${rows} exceeds the model's max_batch_size ${manifest.max_batch_size}`);
  }
  if (manifest.max_sequence_length && seq > manifest.max_sequence_length) {
    throw new InputError(`sequence length ${seq} exceeds the model's max_sequence_length ${manifest.max_sequence_length}`);
  }
  return { inputs, rows, seq };
}

/**
 * A .pt2 export's bounds (min_shape / max_shape): outside them the compiled code would read past
 * its buffers, so they are refused here, naming the bound, before anything reaches the runtime.
 */
export function checkBounds(spec: TensorSpec, shape: readonly number[]): void {
  const { min_shape: min, max_shape: max } = spec;
  if (!min || !max) return;
  shape.forEach((size, i) => {
    const lo = min[i];
    const hi = max[i];
    if ((lo !== undefined && size < lo) || (hi !== undefined && size > hi)) {
      throw new InputError(
        `input '${spec.name}' has shape [${shape}]: dimension ${i} (${size}) is outside the exported bounds ${lo}..${hi} (min_shape/max_shape of the .pt2 export)`,
      );
    }
  });
}

/** Requests with equal keys may share a batch. */
export function batchKey(manifest: Manifest, item: InferItem): string {
  return manifest.inputs
    .map((spec, i) => item.inputs[i]!.shape.slice(1).map((d, j) => (j === 0 && isPaddable(spec, manifest) ? '*' : d)).join('x'))
    .join('|');
}

function allocate(dtype: DType, shape: number[]): Tensor {
  return zeros(dtype, shape);
}

/** One tensor per input for the whole batch. */
export function joinBatch(manifest: Manifest, items: InferItem[]): Tensor[] {
  if (items.length === 1) return items[0]!.inputs;
  const totalRows = items.reduce((n, it) => n + it.rows, 0);
  const seq = Math.max(...items.map((it) => it.seq));
  return manifest.inputs.map((spec, index) => {
    const first = items[0]!.inputs[index]!;
    const padded = isPaddable(spec, manifest);
    const inner = padded ? [seq, ...first.shape.slice(2)] : first.shape.slice(1);
    const out = allocate(first.dtype, [totalRows, ...inner]);
    const rowSize = numel(inner);
    let row = 0;
    for (const it of items) {
      const t = it.inputs[index]!;
      const srcRow = numel(t.shape.slice(1));
      const data = out.data as TensorData;
      if (srcRow === rowSize) {
        (data as Float32Array).set(t.data as Float32Array, row * rowSize);
      } else {
        for (let r = 0; r < it.rows; r++) {
          (data as Float32Array).set((t.data as Float32Array).subarray(r * srcRow, (r + 1) * srcRow), (row + r) * rowSize);
        }
      }
      row += it.rows;
    }
    return out;
  });
}

/** Split batch outputs back per request (views where possible), trimming padded sequences. */
export function splitBatch(items: InferItem[], outputs: Tensor[]): Tensor[][] {
  if (items.length === 1) return [outputs];
  const seq = Math.max(...items.map((it) => it.seq));
  const results: Tensor[][] = items.map(() => []);
  for (const out of outputs) {
    const rowSize = numel(out.shape.slice(1));
    const padded = seq > 0 && out.shape.length >= 2 && out.shape[1] === seq;
    let row = 0;
    items.forEach((it, i) => {
      const data = out.data as Float32Array;
      if (padded && it.seq !== seq) {
        const inner = numel(out.shape.slice(2));
        const shape = [it.rows, it.seq, ...out.shape.slice(2)];
        const t = zeros(out.dtype, shape);
        for (let r = 0; r < it.rows; r++) {
          const start = (row + r) * rowSize;
          (t.data as Float32Array).set(data.subarray(start, start + it.seq * inner), r * it.seq * inner);
        }
        results[i]!.push(t);
      } else {
        results[i]!.push({
          dtype: out.dtype,
          shape: [it.rows, ...out.shape.slice(1)],
          data: data.subarray(row * rowSize, (row + it.rows) * rowSize),
        } as Tensor);
      }
      row += it.rows;
    });
  }
  return results;
}
