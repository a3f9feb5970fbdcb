// The HTTP surface on a .pt2 model: the same routes answer for an AOTInductor export as for
// TorchScript (nothing above src/runtime knows the format), with outputs equal to transformers
// eager, and shapes past the exported bounds are a 400 naming the bound. The OpenAI route is
// driven by the official `openai` client over a real socket.
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

import OpenAI from 'openai';
import t from 'tap';

import { pythonFixtures, readJson } from '../helpers/python-fixtures.js';
import { maxDiff, testApp } from '../helpers/server.js';

const fixtures = pythonFixtures('test/fixtures/make_pt2_fixtures.py', ['exporter']);
interface Case {
  input_ids: number[];
  shape: [number, number];
  expected: number[];
  expected_shape: number[];
}
const cases = readJson<{ embedder: Case[]; sentences: { texts: string[]; normalized: number[][] }; max_sequence_length: number }>(join(fixtures, 'cases.json'));
const MODEL = 'pt2-embedder';

const { app } = await testApp({ MODEL_REPOSITORY: join(fixtures, 'models'), LOAD_MODELS: MODEL });
t.teardown(() => app.close());

function raw(ids: number[], shape: [number, number], extra: object = {}) {
  const n = shape[0] * shape[1];
  return {
    model: MODEL,
    inputs: [
      { name: 'input_ids', shape, datatype: 'INT64', data: ids },
      { name: 'attention_mask', shape, datatype: 'INT64', data: new Array(n).fill(1) },
      { name: 'token_type_ids', shape, datatype: 'INT64', data: new Array(n).fill(0) },
    ],
    ...extra,
  };
}

const flat = (rows: number[][]) => rows.flat();

t.test('the model is ready and described like any other', async (t) => {
  const res = await app.inject(`/models/${MODEL}`);
  t.equal(res.statusCode, 200);
  t.equal(res.json().state, 'ready');
  t.equal(res.json().task, 'embedding');
});

t.test('raw tensors (/infer and KServe v2) equal transformers eager', async (t) => {
  for (const c of cases.embedder) {
    const res = await app.inject({ method: 'POST', url: '/infer', payload: raw(c.input_ids, c.shape) });
    t.equal(res.statusCode, 200, `/infer ${c.shape}`);
    const [out] = res.json().outputs;
    t.same(out.shape, c.expected_shape);
    t.ok(maxDiff(out.data, c.expected) <= 1e-4, `/infer ${c.shape}: max diff ${maxDiff(out.data, c.expected)}`);
  }
  const c = cases.embedder[1]!;
  const { model, ...v2 } = raw(c.input_ids, c.shape);
  const res = await app.inject({ method: 'POST', url: `/v2/models/${model}/infer`, payload: { id: 'pt2', ...v2 } });
  t.equal(res.statusCode, 200);
  t.equal(res.json().id, 'pt2');
  t.ok(maxDiff(res.json().outputs[0].data, c.expected) <= 1e-4, 'KServe v2');
  t.equal((await app.inject(`/v2/models/${model}`)).json().platform, 'pytorch_aoti', 'KServe metadata: an AOTInductor package');
});

t.test('requests batched together give each their own answer', async (t) => {
  const all = [...cases.embedder, ...cases.embedder];
  const answers = await Promise.all(all.map((c) => app.inject({ method: 'POST', url: '/infer', payload: raw(c.input_ids, c.shape) })));
  answers.forEach((res, i) => {
    t.equal(res.statusCode, 200);
    t.ok(maxDiff(res.json().outputs[0].data, all[i]!.expected) <= 1e-4, `request ${i}`);
  });
});

t.test('texts: /infer, /embed (TEI) and /v1/embeddings (the openai client) equal transformers', async (t) => {
  const { texts, normalized } = cases.sentences;
  const infer = await app.inject({ method: 'POST', url: '/infer', payload: { model: MODEL, text: texts } });
  t.equal(infer.statusCode, 200);
  t.ok(maxDiff(flat(infer.json().embeddings), flat(normalized)) <= 1e-4, '/infer text');
  const embed = await app.inject({ method: 'POST', url: '/embed', payload: { model: MODEL, inputs: texts } });
  t.equal(embed.statusCode, 200);
  t.ok(maxDiff(flat(embed.json()), flat(normalized)) <= 1e-4, '/embed');

  await app.listen({ port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'not-needed', maxRetries: 0 });
  const response = await client.embeddings.create({ model: MODEL, input: texts });
  t.ok(maxDiff(flat(response.data.map((d) => d.embedding)), flat(normalized)) <= 1e-4, '/v1/embeddings through openai');
});

t.test('past the exported bounds: 400 naming the bound, before the forward', async (t) => {
  const max = cases.max_sequence_length;
  const long = await app.inject({ method: 'POST', url: '/infer', payload: raw(new Array(max + 1).fill(7), [1, max + 1]) });
  t.equal(long.statusCode, 400);
  t.equal(long.json().code, 'BAD_INPUT');
  t.match(long.json().error, new RegExp(`dimension 1 \\(${max + 1}\\) is outside the exported bounds 1\\.\\.${max}`));
  const wide = await app.inject({ method: 'POST', url: '/infer', payload: raw(new Array(9).fill(7), [9, 1]) });
  t.equal(wide.statusCode, 400);
  t.match(wide.json().error, /dimension 0 \(9\) is outside the exported bounds 1\.\.8|max_batch_size 8/);
  const text = 'word '.repeat(200);
  const tooLong = await app.inject({ method: 'POST', url: '/infer', payload: { model: MODEL, text } });
  t.ok([400, 413].includes(tooLong.statusCode), `a text past the limit: ${tooLong.statusCode}`);
  t.match(tooLong.json().error, new RegExp(`${max}`));
  const cut = await app.inject({ method: 'POST', url: '/infer', payload: { model: MODEL, text, truncate: true } });
  t.equal(cut.statusCode, 200, 'truncated to the bound, it runs');
  // Valid tensors the model refuses: a token id past the vocabulary.
  const oov = await app.inject({ method: 'POST', url: '/infer', payload: raw([5, 999999, 7], [1, 3]) });
  t.equal(oov.statusCode, 422);
  t.equal(oov.json().code, 'FORWARD_FAILED');
  const after = await app.inject({ method: 'POST', url: '/infer', payload: raw(cases.embedder[0]!.input_ids, cases.embedder[0]!.shape) });
  t.equal(after.statusCode, 200, 'and the server keeps serving');
});
