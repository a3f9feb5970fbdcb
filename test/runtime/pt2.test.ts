// The AOTInductor backend through the binding: a .pt2 exported by the exporter (a tiny BERT,
// compiled once by test/fixtures/make_pt2_fixtures.py) loads behind the same ModelHandle as
// TorchScript, equals transformers eager, and refuses shapes outside its exported bounds with
// BAD_INPUT before anything runs (AOTInductor itself would read past its buffers).
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';

import { BadInputError, ForwardError, ModelHandle, ModelLoadError, type Tensor, runtimeInfo, tensor } from '../../src/runtime/index.js';
import { pythonFixtures, readJson } from '../helpers/python-fixtures.js';
import { maxAbsDiff } from '../helpers/tensors.js';

const fixtures = pythonFixtures('test/fixtures/make_pt2_fixtures.py', ['exporter']);
const folder = join(fixtures, 'models', 'pt2-embedder');
const file = join(folder, 'model.pt2');
interface Case {
  input_ids: number[];
  shape: [number, number];
  expected: number[];
  expected_shape: number[];
}
const cases = readJson<{ embedder: Case[]; max_sequence_length: number }>(join(fixtures, 'cases.json'));
const manifest = readJson<{ model_format: string; file: string; inputs: { name: string; min_shape: number[]; max_shape: number[] }[] }>(join(folder, 'atenspace.json'));

function inputs(ids: number[], shape: [number, number]): Tensor[] {
  const n = shape[0] * shape[1];
  return [tensor('int64', shape, ids), tensor('int64', shape, new Array(n).fill(1)), tensor('int64', shape, new Array(n).fill(0))];
}

t.test('the manifest says pt2 and records the exported bounds', async (t) => {
  t.equal(manifest.model_format, 'pt2');
  t.equal(manifest.file, 'model.pt2');
  for (const spec of manifest.inputs) {
    t.same(spec.min_shape, [1, 1], `${spec.name} min_shape`);
    t.same(spec.max_shape, [8, cases.max_sequence_length], `${spec.name} max_shape`);
  }
});

t.test('loads as a ModelHandle and equals transformers eager at untraced shapes', async (t) => {
  const m = await ModelHandle.load(file);
  t.teardown(() => m.dispose());
  t.equal(m.format, 'pt2');
  t.equal(m.device, 'cpu');
  t.equal(m.path, file);
  t.same(
    m.schema.arguments.map((a) => a.name),
    ['input_ids', 'attention_mask', 'token_type_ids'],
  );
  t.same(m.schema.returns, ['Tensor']);
  for (const c of cases.embedder) {
    const out = (await m.forward(inputs(c.input_ids, c.shape))) as Tensor;
    t.same(out.shape, c.expected_shape, `shape at ${c.shape}`);
    const diff = maxAbsDiff(out, { dtype: 'float32', shape: c.expected_shape, data: c.expected });
    t.ok(diff <= 1e-4, `${c.shape}: max |diff| ${diff} vs transformers eager`);
  }
  // Named inputs map to the package's positions.
  const c = cases.embedder[1]!;
  const [ids, mask, types] = inputs(c.input_ids, c.shape);
  const named = (await m.forward({ token_type_ids: types!, input_ids: ids!, attention_mask: mask! })) as Tensor;
  t.ok(maxAbsDiff(named, { dtype: 'float32', shape: c.expected_shape, data: c.expected }) <= 1e-4, 'named inputs');
});

t.test('shapes outside the exported bounds are BAD_INPUT naming the bound, and the process lives on', async (t) => {
  const m = await ModelHandle.load(file);
  t.teardown(() => m.dispose());
  const max = cases.max_sequence_length;
  const long = new Array(max + 1).fill(7);
  await t.rejects(m.forward(inputs(long, [1, max + 1])), { constructor: BadInputError, code: 'BAD_INPUT', message: new RegExp(`dimension 1 \\(${max + 1}\\) is outside the exported bounds 1\\.\\.${max}`) });
  await t.rejects(m.forward(inputs(new Array(9 * 3).fill(7), [9, 3])), { code: 'BAD_INPUT', message: /dimension 0 \(9\) is outside the exported bounds 1\.\.8/ });
  await t.rejects(m.forward(inputs([], [1, 0])), { code: 'BAD_INPUT', message: /dimension 1 \(0\) is outside the exported bounds 1\.\./ });
  const [ids] = inputs([5, 6, 7], [1, 3]);
  const [, mask, types] = inputs([5, 6, 7, 8], [1, 4]);
  await t.rejects(m.forward([ids!, mask!, types!]), { code: 'BAD_INPUT', message: /input 'attention_mask' dimension 1 is 4 but input 'input_ids' dimension 1 is 3; the model needs them equal/ });
  await t.rejects(m.forward([tensor('int32', [1, 3], [5, 6, 7]), mask!, types!]), { code: 'BAD_INPUT', message: /input 'input_ids' has dtype int32, the model expects int64/ });
  await t.rejects(m.forward([ids!]), { code: 'BAD_INPUT', message: /forward takes 3 input\(s\), got 1/ });
  await t.rejects(m.forward({ input_ids: ids! }), { code: 'BAD_INPUT', message: /missing input 'attention_mask'/ });
  await t.rejects(m.forward({ input_idz: ids! }), { code: 'BAD_INPUT', message: /no input named 'input_idz' \(inputs: input_ids, attention_mask, token_type_ids\)/ });
  // A token id past the vocabulary: valid tensors the compiled code refuses (its own index check).
  await t.rejects(m.forward(inputs([5, 999999, 7], [1, 3])), { constructor: ForwardError, code: 'FORWARD_FAILED', message: /index out of bounds/ });
  const c = cases.embedder[0]!;
  const out = (await m.forward(inputs(c.input_ids, c.shape))) as Tensor;
  t.ok(maxAbsDiff(out, { dtype: 'float32', shape: c.expected_shape, data: c.expected }) <= 1e-4, 'still answers after the refusals');
});

t.test('concurrent forwards on the worker pool give the sequential answers', async (t) => {
  const m = await ModelHandle.load(file);
  t.teardown(() => m.dispose());
  const all = [...cases.embedder, ...cases.embedder, ...cases.embedder];
  const outs = (await Promise.all(all.map((c) => m.forward(inputs(c.input_ids, c.shape))))) as Tensor[];
  outs.forEach((out, i) => {
    const c = all[i]!;
    t.ok(maxAbsDiff(out, { dtype: 'float32', shape: c.expected_shape, data: c.expected }) <= 1e-4, `forward ${i}`);
  });
});

t.test('dispose frees the model and removes the extracted package', async (t) => {
  const extracted = () => new Set(readdirSync(tmpdir()).filter((n) => n.startsWith('aotinductor_')));
  const had = extracted();
  const m = await ModelHandle.load(file);
  const mine = [...extracted()].filter((n) => !had.has(n));
  t.equal(mine.length, 1, 'AOTIModelPackageLoader extracts the package into one temporary folder');
  const loaded = runtimeInfo().liveModules;
  t.ok(loaded >= 1, 'counted as a live model');
  m.dispose();
  t.equal(m.disposed, true);
  await t.rejects(m.forward([]), { code: 'MODEL_DISPOSED' });
  for (let i = 0; i < 20 && runtimeInfo().liveModules >= loaded; i++) {
    globalThis.gc?.();
    await new Promise((r) => setTimeout(r, 50));
  }
  t.ok(runtimeInfo().liveModules < loaded, 'freed');
  t.notOk(extracted().has(mine[0]!), `${mine[0]} removed`);
});

t.test('load errors are typed', async (t) => {
  await t.rejects(ModelHandle.load(join(folder, 'missing.pt2')), { code: 'MODEL_FILE_NOT_FOUND', message: /no \.pt2 package at/ });
  // A TorchScript file is no AOTInductor package, and the other way round.
  await t.rejects(ModelHandle.load(join(folder, 'config.json'), { format: 'pt2' }), { constructor: ModelLoadError, code: 'MODEL_LOAD_FAILED', message: /as an AOTInductor package/ });
  await t.rejects(ModelHandle.load(file, { format: 'torchscript' }), { constructor: ModelLoadError, code: 'MODEL_LOAD_FAILED', message: /as TorchScript/ });
  await t.rejects(ModelHandle.load(file, { device: 'tpu' }), { code: 'BAD_INPUT', message: /unknown device 'tpu'/ });
  if (!runtimeInfo().cudaAvailable) {
    await t.rejects(ModelHandle.load(file, { device: 'cuda' }), { code: 'CUDA_UNAVAILABLE' });
  }
});
