/** KServe v2 JSON tensors <-> runtime tensors. */
import { type DType, type Tensor, bfloat16BitsToNumber, float16BitsToNumber, float32ToBFloat16Bits, float32ToFloat16Bits, numel, zeros } from '../runtime/index.js';
import { HttpError } from './http-errors.js';

export const DATATYPES = ['BOOL', 'UINT8', 'INT8', 'INT32', 'INT64', 'FP16', 'BF16', 'FP32', 'FP64'] as const;
export type Datatype = (typeof DATATYPES)[number];

const TO_DTYPE: Record<Datatype, DType> = {
  BOOL: 'bool',
  UINT8: 'uint8',
  INT8: 'int8',
  INT32: 'int32',
  INT64: 'int64',
  FP16: 'float16',
  BF16: 'bfloat16',
  FP32: 'float32',
  FP64: 'float64',
};
const TO_DATATYPE = Object.fromEntries(Object.entries(TO_DTYPE).map(([k, v]) => [v, k])) as Record<DType, Datatype>;

export const datatypeOf = (dtype: DType): Datatype => TO_DATATYPE[dtype];
export const dtypeOf = (datatype: Datatype): DType => TO_DTYPE[datatype];

const INT_RANGE: Partial<Record<DType, [number, number]>> = {
  uint8: [0, 255],
  int8: [-128, 127],
  int32: [-(2 ** 31), 2 ** 31 - 1],
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
};

export interface JsonTensor {
  name: string;
  shape: number[];
  datatype: string;
  data: unknown[];
}

function bad(message: string): HttpError {
  return new HttpError(400, 'BAD_INPUT', message);
}

export function decodeTensor(input: JsonTensor): Tensor {
  const { name } = input;
  if (!(DATATYPES as readonly string[]).includes(input.datatype)) {
    throw bad(`input '${name}': unknown datatype '${input.datatype}' (expected one of ${DATATYPES.join(', ')})`);
  }
  const dtype = TO_DTYPE[input.datatype as Datatype];
  const values = (input.data as unknown[]).flat(Infinity as 1) as unknown[];
  const count = numel(input.shape);
  if (values.length !== count) {
    throw bad(`input '${name}': shape [${input.shape}] needs ${count} values of ${input.datatype}, data has ${values.length}`);
  }
  const t = zeros(dtype, input.shape);
  const out = t.data as unknown as { [i: number]: number | bigint };
  const range = INT_RANGE[dtype];
  for (let i = 0; i < count; i++) {
    const v = values[i];
    if (dtype === 'bool') {
      if (typeof v !== 'boolean' && v !== 0 && v !== 1) throw bad(`input '${name}': BOOL data must be true/false, got ${JSON.stringify(v)} at ${i}`);
      out[i] = v === true || v === 1 ? 1 : 0;
      continue;
    }
    if (typeof v !== 'number') throw bad(`input '${name}': data[${i}] is ${JSON.stringify(v)}, not a number`);
    if (range) {
      if (!Number.isInteger(v) || v < range[0] || v > range[1]) throw bad(`input '${name}': data[${i}] = ${v} is not a valid ${input.datatype}`);
      out[i] = dtype === 'int64' ? BigInt(v) : v;
    } else if (dtype === 'float16') {
      out[i] = float32ToFloat16Bits(v);
    } else if (dtype === 'bfloat16') {
      out[i] = float32ToBFloat16Bits(v);
    } else {
      out[i] = v;
    }
  }
  return t;
}

export function encodeTensor(name: string, t: Tensor): { name: string; shape: number[]; datatype: Datatype; data: (number | boolean)[] } {
  let data: (number | boolean)[];
  switch (t.dtype) {
    case 'bool':
      data = Array.from(t.data as Uint8Array, (v) => v !== 0);
      break;
    case 'int64':
      data = Array.from(t.data as BigInt64Array, Number);
      break;
    case 'float16':
      data = Array.from(t.data as Uint16Array, float16BitsToNumber);
      break;
    case 'bfloat16':
      data = Array.from(t.data as Uint16Array, bfloat16BitsToNumber);
      break;
    default:
      data = Array.from(t.data as Float32Array);
  }
  return { name, shape: t.shape, datatype: datatypeOf(t.dtype), data };
}
