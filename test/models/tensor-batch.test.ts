// Joining raw-tensor requests into one batch and splitting the outputs back.
import t from 'tap';

import type { Manifest } from '../../src/models/manifest.js';
import { batchKey, InputError, joinBatch, splitBatch, validateInputs } from '../../src/models/tensor-batch.js';
import { type Tensor, tensor } from '../../src/runtime/index.js';

const manifest = {
  name: 'enc',
  inputs: [
    { name: 'input_ids', dtype: 'int64', shape: [-1, -1] },
    { name: 'attention_mask', dtype: 'int64', shape: [-1, -1] },
  ],
  outputs: [{ name: 'hidden', dtype: 'float32', shape: [-1, -1, 2] }],
  max_batch_size: 8,
  max_sequence_length: 16,
} as unknown as Manifest;

const request = (ids: number[][]) => {
  const rows = ids.length;
  const seq = ids[0]!.length;
  return validateInputs(
    manifest,
    new Map([
      ['input_ids', tensor('int64', [rows, seq], ids.flat())],
      ['attention_mask', tensor('int64', [rows, seq], new Array(rows * seq).fill(1))],
    ]),
  );
};

t.test('token inputs of different lengths share a key and are right-padded with a zero mask', async (t) => {
  const a = request([[1, 2, 3]]);
  const b = request([[4], [5]]);
  t.equal(batchKey(manifest, a), batchKey(manifest, b));
  const [ids, mask] = joinBatch(manifest, [a, b]);
  t.same(ids!.shape, [3, 3]);
  t.same(Array.from(ids!.data as BigInt64Array, Number), [1, 2, 3, 4, 0, 0, 5, 0, 0]);
  t.same(Array.from(mask!.data as BigInt64Array, Number), [1, 1, 1, 1, 0, 0, 1, 0, 0]);
});

t.test('outputs split back per request, trimmed to each one length', async (t) => {
  const a = request([[1, 2, 3]]);
  const b = request([[4], [5]]);
  const hidden = tensor('float32', [3, 3, 2], Array.from({ length: 18 }, (_, i) => i));
  const [outA, outB] = splitBatch([a, b], [hidden]);
  t.same(outA![0]!.shape, [1, 3, 2]);
  t.same(Array.from(outA![0]!.data as Float32Array), [0, 1, 2, 3, 4, 5]);
  t.same(outB![0]!.shape, [2, 1, 2]);
  t.same(Array.from(outB![0]!.data as Float32Array), [6, 7, 12, 13]);
});

t.test('validation names the input and the problem', async (t) => {
  const bad = (named: Map<string, Tensor>, re: RegExp) => t.throws(() => validateInputs(manifest, named), new InputError(''), re.source) && t.match(catchMessage(named), re);
  const catchMessage = (named: Map<string, Tensor>) => {
    try {
      validateInputs(manifest, named);
      return '';
    } catch (error) {
      return (error as Error).message;
    }
  };
  const ids = tensor('int64', [1, 2], [1, 2]);
  bad(new Map([['input_ids', ids]]), /missing input 'attention_mask'/);
  bad(new Map([['input_ids', ids], ['attention_mask', tensor('int64', [1, 3], [1, 1, 1])]]), /sequence length 3, other inputs have 2/);
  bad(new Map([['input_ids', ids], ['attention_mask', ids], ['extra', ids]]), /unknown input 'extra'/);
  bad(new Map<string, Tensor>([['input_ids', tensor('int32', [1, 2], [1, 2])], ['attention_mask', ids]]), /dtype int32, the model expects int64/);
  const long = tensor('int64', [1, 17], new Array(17).fill(1));
  bad(new Map([['input_ids', long], ['attention_mask', long]]), /max_sequence_length 16/);
});
