// /infer and KServe v2 inference: outputs equal transformers eager; bad requests get 4xx
// JSON naming the problem.
import t from 'tap';

import { embedderCases, embedderRequest, maxDiff, testApp } from '../helpers/server.js';

const { app } = await testApp({ BODY_LIMIT: '256KiB' });
t.teardown(() => app.close());
const cases = embedderCases();

t.test('served output equals transformers eager', async (t) => {
  for (const c of cases.slice(0, 3)) {
    const res = await app.inject({ method: 'POST', url: '/infer', payload: embedderRequest(c.input_ids) });
    t.equal(res.statusCode, 200);
    const body = res.json();
    t.equal(body.model_name, 'demo-embedder');
    const [out] = body.outputs;
    t.equal(out.name, 'last_hidden_state');
    t.equal(out.datatype, 'FP32');
    t.same(out.shape, c.shape);
    t.ok(maxDiff(out.data, c.expected) <= 1e-4, `length ${c.input_ids.length}: max diff ${maxDiff(out.data, c.expected)}`);
  }
});

t.test('KServe v2 route and metadata', async (t) => {
  const c = cases[3]!;
  const { model, ...v2 } = embedderRequest(c.input_ids);
  const res = await app.inject({ method: 'POST', url: `/v2/models/${model}/infer`, payload: { id: 'req-42', ...v2, outputs: [{ name: 'last_hidden_state' }] } });
  t.equal(res.statusCode, 200);
  t.equal(res.json().id, 'req-42');
  t.ok(maxDiff(res.json().outputs[0].data, c.expected) <= 1e-4);
  const meta = (await app.inject('/v2/models/demo-embedder')).json();
  t.equal(meta.platform, 'pytorch_torchscript');
  t.same(meta.inputs[0], { name: 'input_ids', datatype: 'INT64', shape: [-1, -1] });
  t.same((await app.inject('/v2/models/demo-embedder/ready')).json(), { ready: true });
  t.equal((await app.inject('/v2/health/live')).statusCode, 200);
  t.same((await app.inject('/v2')).json().extensions, ['model_repository', 'binary_tensor_data']);
});

t.test('errors are JSON with a code, naming the problem', async (t) => {
  const ids = [5, 6, 7];
  const req = embedderRequest(ids);
  const expectError = async (payload: unknown, status: number, code: string, message: RegExp, url = '/infer') => {
    const res = await app.inject({ method: 'POST', url, payload: payload as object });
    t.equal(res.statusCode, status, `${code}: status`);
    t.equal(res.json().code, code);
    t.match(res.json().error, message);
  };
  await expectError({ ...req, model: 'nope' }, 404, 'MODEL_NOT_FOUND', /model 'nope'/);
  await expectError({ ...req, inputs: [{ ...req.inputs[0], data: [1, 2] }, ...req.inputs.slice(1)] }, 400, 'BAD_INPUT', /input 'input_ids': shape \[1,3\] needs 3 values/);
  await expectError({ ...req, inputs: [{ ...req.inputs[0], datatype: 'FP128' }, ...req.inputs.slice(1)] }, 400, 'BAD_INPUT', /input 'input_ids': unknown datatype 'FP128'/);
  await expectError({ ...req, inputs: [{ ...req.inputs[0], name: 'input_idz' }, ...req.inputs.slice(1)] }, 400, 'BAD_INPUT', /unknown input 'input_idz'/);
  await expectError({ ...req, inputs: req.inputs.slice(0, 2) }, 400, 'BAD_INPUT', /missing input 'token_type_ids'/);
  await expectError({ ...req, inputs: [{ ...req.inputs[0], datatype: 'INT32' }, ...req.inputs.slice(1)] }, 400, 'BAD_INPUT', /input 'input_ids' has dtype int32, the model expects int64/);
  await expectError({ ...req, inputs: [{ ...req.inputs[0], data: [1.5, 2, 3] }, ...req.inputs.slice(1)] }, 400, 'BAD_INPUT', /data\[0\] = 1.5 is not a valid INT64/);
  await expectError({ ...req, outputs: [{ name: 'pooled' }] }, 400, 'BAD_INPUT', /unknown output 'pooled'/);
  await expectError({ model: 'demo-embedder' }, 400, 'BAD_INPUT', /missing field 'text' for an embedding model/);
  await expectError({ ...embedderRequest([1, 2, 3, 4]), inputs: [embedderRequest([1, 2, 3, 4]).inputs[0], ...req.inputs.slice(1)] }, 400, 'BAD_INPUT', /sequence length|batch/);
  // Token ids past the vocabulary: valid tensors the model cannot run.
  await expectError(embedderRequest([999999, 1, 2]), 422, 'FORWARD_FAILED', /could not run these inputs/);
  const big = embedderRequest(new Array(100000).fill(5));
  await expectError(big, 413, 'LIMIT_EXCEEDED', /larger than BODY_LIMIT \(\d+ bytes\)/);
  const notFound = await app.inject('/nowhere');
  t.equal(notFound.statusCode, 404);
  t.equal(notFound.json().code, 'NOT_FOUND');
  // Still serving after all of that.
  const ok = await app.inject({ method: 'POST', url: '/infer', payload: embedderRequest(ids) });
  t.equal(ok.statusCode, 200);
});
