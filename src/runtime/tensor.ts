/**
 * Tensors as they cross the binding: a dtype, a shape and a flat typed array in row-major
 * order. float16 and bfloat16 carry their raw 16-bit patterns in a Uint16Array (Node 20
 * has no Float16Array); bool carries 0/1 in a Uint8Array; int64 uses BigInt64Array.
 */
export const DTYPES = ['float32', 'float64', 'float16', 'bfloat16', 'int64', 'int32', 'int8', 'uint8', 'bool'] as const;
export type DType = (typeof DTYPES)[number];

export interface DataOf {
  float32: Float32Array;
  float64: Float64Array;
  float16: Uint16Array;
  bfloat16: Uint16Array;
  int64: BigInt64Array;
  int32: Int32Array;
  int8: Int8Array;
  uint8: Uint8Array;
  bool: Uint8Array;
}

export type TensorData = DataOf[DType];

export interface Tensor<D extends DType = DType> {
  dtype: D;
  shape: number[];
  data: DataOf[D];
}

/** What forward() returns: tensors nested in arrays (tuples, lists) and objects (dicts). */
export type TorchValue = Tensor | TorchValue[] | { [key: string]: TorchValue } | number | bigint | boolean | string | null;

/** A positional or named forward argument: tensors, tensor lists, or plain scalars. */
export type TorchArgument = Tensor | Tensor[] | number | bigint | boolean | string | null | number[];

const arrayConstructors = {
  float32: Float32Array,
  float64: Float64Array,
  float16: Uint16Array,
  bfloat16: Uint16Array,
  int64: BigInt64Array,
  int32: Int32Array,
  int8: Int8Array,
  uint8: Uint8Array,
  bool: Uint8Array,
} as const;

export function isDType(value: unknown): value is DType {
  return typeof value === 'string' && (DTYPES as readonly string[]).includes(value);
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Allocate a zero-filled tensor. */
export function zeros<D extends DType>(dtype: D, shape: number[]): Tensor<D> {
  const Ctor = arrayConstructors[dtype];
  return { dtype, shape, data: new Ctor(numel(shape)) as DataOf[D] };
}

/** Build a tensor from plain numbers (or bigints for int64). */
export function tensor<D extends DType>(dtype: D, shape: number[], values: ArrayLike<number | bigint>): Tensor<D> {
  const out = zeros(dtype, shape);
  if (values.length !== out.data.length) {
    throw new RangeError(`shape [${shape.join(', ')}] needs ${out.data.length} values, got ${values.length}`);
  }
  const data = out.data as unknown as { [i: number]: number | bigint };
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (dtype === 'int64') data[i] = typeof v === 'bigint' ? v : BigInt(Math.trunc(v));
    else if (dtype === 'float16') data[i] = float32ToFloat16Bits(Number(v));
    else if (dtype === 'bfloat16') data[i] = float32ToBFloat16Bits(Number(v));
    else if (dtype === 'bool') data[i] = Number(v) ? 1 : 0;
    else data[i] = Number(v);
  }
  return out;
}

/** Read any tensor as float64 numbers (decoding float16/bfloat16 bit patterns). */
export function toFloat64(t: Tensor): Float64Array {
  const out = new Float64Array(t.data.length);
  if (t.dtype === 'float16') {
    for (let i = 0; i < out.length; i++) out[i] = float16BitsToNumber((t.data as Uint16Array)[i]!);
  } else if (t.dtype === 'bfloat16') {
    for (let i = 0; i < out.length; i++) out[i] = bfloat16BitsToNumber((t.data as Uint16Array)[i]!);
  } else if (t.dtype === 'int64') {
    for (let i = 0; i < out.length; i++) out[i] = Number((t.data as BigInt64Array)[i]!);
  } else {
    const data = t.data as Exclude<TensorData, BigInt64Array>;
    for (let i = 0; i < out.length; i++) out[i] = data[i]!;
  }
  return out;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function bfloat16BitsToNumber(bits: number): number {
  u32[0] = bits << 16;
  return f32[0]!;
}

/** Round-to-nearest-even float32 -> bfloat16, as torch does. */
export function float32ToBFloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  if (Number.isNaN(value)) return 0x7fc0;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

export function float16BitsToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

/** Round-to-nearest-even float -> IEEE half. */
export function float32ToFloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  let mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  let e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - e;
    let half = mantissa >>> shift;
    const rest = mantissa & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++;
  return sign | half;
}
