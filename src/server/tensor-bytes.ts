/**
 * Tensors as raw bytes: little-endian, row-major, no padding (the KServe v2 / Triton binary
 * tensor data extension, and gRPC's raw_input_contents / raw_output_contents). An input's
 * bytes are copied once, into a fresh typed array of its dtype; an output's bytes are a view.
 */
import { type DType, type Tensor, numel, zeros } from '../runtime/index.js';
import { HttpError } from './http-errors.js';
import { DATATYPES, type Datatype, datatypeOf, dtypeOf } from './kserve-tensors.js';

const ELEMENT_BYTES: Record<DType, number> = {
  float32: 4,
  float64: 8,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  int8: 1,
  uint8: 1,
  bool: 1,
};

export const elementBytes = (dtype: DType): number => ELEMENT_BYTES[dtype];

/** Where an input's bytes are: one buffer, or a range spread over the chunks a request body arrived in. */
export type ByteSource = Uint8Array | { chunks: readonly Uint8Array[]; offset: number; length: number };

function bad(message: string): HttpError {
  return new HttpError(400, 'BAD_INPUT', message);
}

function sourceLength(source: ByteSource): number {
  return source instanceof Uint8Array ? source.byteLength : source.length;
}

/** Copy `source` into `target` (same length). */
function copyInto(target: Uint8Array, source: ByteSource): void {
  if (source instanceof Uint8Array) {
    target.set(source);
    return;
  }
  let skip = source.offset;
  let written = 0;
  for (const chunk of source.chunks) {
    if (written === source.length) break;
    if (skip >= chunk.byteLength) {
      skip -= chunk.byteLength;
      continue;
    }
    const take = Math.min(chunk.byteLength - skip, source.length - written);
    target.set(chunk.subarray(skip, skip + take), written);
    written += take;
    skip = 0;
  }
}

/** The size in bytes a tensor of this datatype and shape takes, or a 400 naming the input. */
export function expectedBytes(name: string, datatype: string, shape: readonly number[]): number {
  if (!(DATATYPES as readonly string[]).includes(datatype)) {
    throw bad(`input '${name}': unknown datatype '${datatype}' (expected one of ${DATATYPES.join(', ')})`);
  }
  return numel(shape) * ELEMENT_BYTES[dtypeOf(datatype as Datatype)];
}

/**
 * A tensor from its raw bytes. The byte count must be exactly shape × element size, and BOOL
 * bytes must be 0 or 1; anything else is a 400 naming the input.
 */
export function tensorFromBytes(name: string, datatype: string, shape: number[], source: ByteSource): Tensor {
  const want = expectedBytes(name, datatype, shape);
  const have = sourceLength(source);
  if (have !== want) {
    throw bad(`input '${name}': shape [${shape}] of ${datatype} needs ${want} bytes, the request carries ${have}`);
  }
  const dtype = dtypeOf(datatype as Datatype);
  const t = zeros(dtype, shape);
  const target = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  copyInto(target, source);
  if (dtype === 'bool') {
    const at = target.findIndex((b) => b > 1);
    if (at >= 0) throw bad(`input '${name}': BOOL bytes must be 0 or 1, byte ${at} is ${target[at]}`);
  }
  return t;
}

/** An output's bytes, without a copy (the view shares the tensor's memory). */
export function tensorBytes(t: Tensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

export { datatypeOf };
