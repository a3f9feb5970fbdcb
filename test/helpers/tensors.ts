/** Test helpers: build tensors from the JSON that Python wrote, and compare results. */
import { type DType, type Tensor, type TorchValue, toFloat64, zeros } from '../../src/runtime/index.js';

export interface JsonTensor {
  dtype: DType;
  shape: number[];
  data: number[];
}

export function fromJson(t: JsonTensor): Tensor {
  const out = zeros(t.dtype, t.shape);
  const data = out.data as unknown as { [i: number]: number | bigint };
  t.data.forEach((v, i) => {
    data[i] = t.dtype === 'int64' ? BigInt(v) : v;
  });
  return out;
}

export function isTensor(value: unknown): value is Tensor {
  return typeof value === 'object' && value !== null && 'dtype' in value && 'shape' in value && 'data' in value;
}

/**
 * Largest absolute difference between a runtime value and Python's JSON, walking tuples,
 * lists and dicts in step. Throws when structure, dtype or shape differ.
 */
export function maxAbsDiff(actual: TorchValue, expected: unknown, path = 'output'): number {
  if (isTensor(actual)) {
    const want = expected as JsonTensor;
    if (actual.dtype !== want.dtype) throw new Error(`${path}: dtype ${actual.dtype} != ${want.dtype}`);
    if (actual.shape.join(',') !== want.shape.join(',')) {
      throw new Error(`${path}: shape [${actual.shape}] != [${want.shape}]`);
    }
    // float16/bfloat16 compare bit patterns (the exact values Python produced).
    const got = actual.dtype === 'float16' || actual.dtype === 'bfloat16' ? Float64Array.from(actual.data as Uint16Array) : toFloat64(actual);
    let max = 0;
    for (let i = 0; i < got.length; i++) max = Math.max(max, Math.abs(got[i]! - want.data[i]!));
    return max;
  }
  if (Array.isArray(actual)) {
    const want = expected as unknown[];
    if (!Array.isArray(want) || want.length !== actual.length) throw new Error(`${path}: expected ${want?.length} items`);
    return Math.max(0, ...actual.map((v, i) => maxAbsDiff(v, want[i], `${path}[${i}]`)));
  }
  if (actual && typeof actual === 'object') {
    const want = expected as Record<string, unknown>;
    const keys = Object.keys(actual).sort();
    if (keys.join(',') !== Object.keys(want).sort().join(',')) throw new Error(`${path}: keys ${keys} != ${Object.keys(want)}`);
    return Math.max(0, ...keys.map((k) => maxAbsDiff((actual as Record<string, TorchValue>)[k]!, want[k], `${path}.${k}`)));
  }
  if (actual !== expected) throw new Error(`${path}: ${String(actual)} != ${String(expected)}`);
  return 0;
}
