/**
 * gRPC's typed tensor contents (InferTensorContents: one repeated field per kind of datatype)
 * <-> runtime tensors. Values are checked exactly as HTTP's JSON `data` is (kserve-tensors.ts:
 * datatype, count against the shape, integer ranges), with the same messages. FP16 and BF16
 * have no typed field: they travel as raw bytes only.
 */
import type { Tensor } from '../../runtime/index.js';
import { HttpError } from '../http-errors.js';
import { type Datatype, datatypeOf, decodeTensor } from '../kserve-tensors.js';

/** InferTensorContents as proto-loader reads it (keepCase, arrays, longs as numbers). */
export interface TensorContents {
  bool_contents?: boolean[];
  int_contents?: number[];
  int64_contents?: (number | string)[];
  uint_contents?: number[];
  uint64_contents?: (number | string)[];
  fp32_contents?: number[];
  fp64_contents?: number[];
  bytes_contents?: Uint8Array[];
}

type Field = keyof TensorContents;

/** Where each datatype's values go. */
const FIELD: Partial<Record<Datatype, Field>> = {
  BOOL: 'bool_contents',
  INT8: 'int_contents',
  INT32: 'int_contents',
  INT64: 'int64_contents',
  UINT8: 'uint_contents',
  FP32: 'fp32_contents',
  FP64: 'fp64_contents',
};

const FIELDS: Field[] = ['bool_contents', 'int_contents', 'int64_contents', 'uint_contents', 'uint64_contents', 'fp32_contents', 'fp64_contents', 'bytes_contents'];

function bad(message: string): HttpError {
  return new HttpError(400, 'BAD_INPUT', message);
}

/** An input tensor from its typed contents. */
export function tensorFromContents(name: string, datatype: string, shape: number[], contents: TensorContents | null | undefined): Tensor {
  const field = FIELD[datatype as Datatype];
  const given = FIELDS.filter((f) => (contents?.[f]?.length ?? 0) > 0);
  if ((datatype === 'FP16' || datatype === 'BF16') && given.length > 0) {
    throw bad(`input '${name}': ${datatype} has no typed contents field; send it in raw_input_contents`);
  }
  const stray = given.find((f) => f !== field);
  if (field && stray) throw bad(`input '${name}': ${datatype} values go in contents.${field}, the request has contents.${stray}`);
  // decodeTensor names an unknown datatype, a count that does not match the shape, and values out of range.
  return decodeTensor({ name, datatype, shape, data: field ? (contents?.[field] ?? []) : [] });
}

/** An output tensor as typed contents, or undefined for a dtype that has none (FP16, BF16). */
export function contentsOf(t: Tensor): TensorContents | undefined {
  switch (t.dtype) {
    case 'float32':
      return { fp32_contents: Array.from(t.data as Float32Array) };
    case 'float64':
      return { fp64_contents: Array.from(t.data as Float64Array) };
    case 'int64':
      // As decimal strings: protobuf's int64 keeps every value exactly.
      return { int64_contents: Array.from(t.data as BigInt64Array, String) };
    case 'int32':
    case 'int8':
      return { int_contents: Array.from(t.data as Int32Array | Int8Array) };
    case 'uint8':
      return { uint_contents: Array.from(t.data as Uint8Array) };
    case 'bool':
      return { bool_contents: Array.from(t.data as Uint8Array, (v) => v !== 0) };
    default:
      return undefined;
  }
}

export { datatypeOf };
