// Outputs through Node equal what PyTorch (and transformers eager) computed in Python.
import t from 'tap';
import { join } from 'node:path';

import { type Tensor, TorchScriptModule, tensor, zeros, DTYPES } from '../../src/runtime/index.js';
import { pythonFixtures, readJson } from '../helpers/python-fixtures.js';
import { fromJson, isTensor, type JsonTensor, maxAbsDiff } from '../helpers/tensors.js';

const dir = pythonFixtures('test/fixtures/make_runtime_fixtures.py');
interface Cases {
  multi_output: { inputs: JsonTensor[]; expected_default_scale: unknown; expected_scale_half: unknown };
  bert: { inputs: JsonTensor[]; expected: unknown }[];
}
const cases = readJson<Cases>(join(dir, 'cases.json'));

t.test('scripted module: tuple of tensor, dict and list in several dtypes', async (t) => {
  const m = await TorchScriptModule.load(join(dir, 'multi_output.pt'));
  t.equal(m.device, 'cpu');
  t.same(
    m.schema.arguments.map((a) => [a.name, a.type, a.hasDefault]),
    [
      ['x', 'Tensor', false],
      ['ids', 'Tensor', false],
      ['scale', 'float', true],
    ],
  );
  const inputs = cases.multi_output.inputs.map(fromJson);
  const out = await m.forward(inputs);
  t.ok(maxAbsDiff(out, cases.multi_output.expected_default_scale) <= 1e-6, 'positional, default scale');
  const named = await m.forward({ ids: inputs[1]!, x: inputs[0]!, scale: 0.5 });
  t.ok(maxAbsDiff(named, cases.multi_output.expected_scale_half) <= 1e-6, 'named inputs, scale=0.5');
  const withScale = await m.forward([inputs[0]!, inputs[1]!, 0.5]);
  t.ok(maxAbsDiff(withScale, cases.multi_output.expected_scale_half) <= 1e-6, 'positional scale');
  // The oracle differs between the two scales: the comparison can fail.
  t.ok(maxAbsDiff(named, cases.multi_output.expected_default_scale) > 1e-3, 'scale changes the output');
  const [, dict] = out as [Tensor, Record<string, Tensor>];
  t.equal(dict.sum!.data.constructor, BigInt64Array);
  t.equal(dict.mask!.dtype, 'bool');
});

t.test('traced HuggingFace BERT equals transformers eager within 1e-5, at traced and other shapes', async (t) => {
  const m = await TorchScriptModule.load(join(dir, 'bert.pt'));
  t.same(
    m.schema.arguments.map((a) => a.name),
    ['input_ids', 'attention_mask', 'token_type_ids'],
  );
  for (const c of cases.bert) {
    const inputs = c.inputs.map(fromJson);
    const out = await m.forward(inputs);
    const diff = maxAbsDiff(out, c.expected);
    t.ok(diff <= 1e-5, `shape [${inputs[0]!.shape}] max abs diff ${diff.toExponential(2)}`);
  }
});

t.test('every dtype round-trips through a flip', async (t) => {
  const m = await TorchScriptModule.load(join(dir, 'flip.pt'));
  for (const dtype of DTYPES) {
    const values = [1, 0, 3, 2, 5, 4].map((v) => (dtype === 'bool' ? v % 2 : v - 2));
    const input = tensor(dtype, [2, 3], values);
    const out = (await m.forward([input])) as Tensor;
    t.equal(out.dtype, dtype, `${dtype}: dtype`);
    t.same(out.shape, [2, 3], `${dtype}: shape`);
    t.equal(out.data.constructor, input.data.constructor, `${dtype}: typed array class`);
    const expected = [2, 1, 0, 5, 4, 3].map((i) => input.data[i]);
    t.same(Array.from(out.data as ArrayLike<unknown>), expected, `${dtype}: values`);
  }
  const empty = (await m.forward([zeros('float32', [0, 3])])) as Tensor;
  t.same(empty.shape, [0, 3], 'empty tensors work');
  t.equal(empty.data.length, 0);
});

t.test('outputs never alias module state', async (t) => {
  const m = await TorchScriptModule.load(join(dir, 'returns_weight.pt'));
  const first = (await m.forward([zeros('float32', [1])])) as Tensor<'float32'>;
  t.same(Array.from(first.data), [0, 1, 2, 3, 4, 5]);
  first.data.fill(42);
  const second = (await m.forward([zeros('float32', [1])])) as Tensor<'float32'>;
  t.same(Array.from(second.data), [0, 1, 2, 3, 4, 5], 'writing to an output did not change the weight');
});

t.test('inputs are copied: changing them after forward() returns does not change the result', async (t) => {
  const m = await TorchScriptModule.load(join(dir, 'flip.pt'));
  const input = tensor('float32', [3], [1, 2, 3]);
  const pending = m.forward([input]);
  input.data.fill(0);
  const out = await pending;
  t.ok(isTensor(out));
  t.same(Array.from((out as Tensor).data as Float32Array), [3, 2, 1]);
});
