// The KServe v2 binary tensor data extension: raw little-endian bytes after a JSON header, in
// requests and answers. The oracle is transformers eager (the fixture's expected outputs) and
// the same request as JSON; a numpy client over a real socket checks the byte layout from the
// outside. (No KServe/Triton client package is installable here: tritonclient and kserve are not
// on the package mirror, so numpy encodes and decodes the bytes.)
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';

import t from 'tap';

import { embedderCases, embedderRequest, maxDiff, testApp } from '../helpers/server.js';

const { app } = await testApp({ BODY_LIMIT: '256KiB' });
t.teardown(() => app.close());
const cases = embedderCases();

interface BinaryInput {
  name: string;
  datatype: string;
  shape: number[];
  bytes: Uint8Array;
}

const int64Bytes = (values: number[]) => new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer);

function embedderInputs(ids: number[]): BinaryInput[] {
  const n = ids.length;
  return [
    { name: 'input_ids', datatype: 'INT64', shape: [1, n], bytes: int64Bytes(ids) },
    { name: 'attention_mask', datatype: 'INT64', shape: [1, n], bytes: int64Bytes(new Array(n).fill(1)) },
    { name: 'token_type_ids', datatype: 'INT64', shape: [1, n], bytes: int64Bytes(new Array(n).fill(0)) },
  ];
}

/** A binary request body: the JSON header, then each input's bytes. */
function binaryBody(inputs: BinaryInput[], extra: Record<string, unknown> = {}) {
  const header = Buffer.from(
    JSON.stringify({ ...extra, inputs: inputs.map(({ name, datatype, shape, bytes }) => ({ name, datatype, shape, parameters: { binary_data_size: bytes.byteLength } })) }),
  );
  return { header, payload: Buffer.concat([header, ...inputs.map((i) => Buffer.from(i.bytes))]) };
}

/** Split a binary answer into its JSON header and each binary output as float32 numbers. */
function readBinaryAnswer(body: Buffer, headerLength: number) {
  const header = JSON.parse(body.subarray(0, headerLength).toString('utf8'));
  let offset = headerLength;
  const values = new Map<string, number[]>();
  for (const output of header.outputs) {
    const size = output.parameters?.binary_data_size;
    if (size === undefined) continue;
    const copy = new Uint8Array(body.subarray(offset, offset + size));
    values.set(output.name, Array.from(new Float32Array(copy.buffer)));
    offset += size;
  }
  return { header, values, rest: body.byteLength - offset };
}

const post = (url: string, payload: Buffer, headers: Record<string, string>) => app.inject({ method: 'POST', url, payload, headers });

t.test('binary inputs and outputs equal transformers eager and the JSON answer, bit for bit', async (t) => {
  const c = cases[1]!;
  const json = await app.inject({ method: 'POST', url: '/v2/models/demo-embedder/infer', payload: (({ model: _m, ...rest }) => rest)(embedderRequest(c.input_ids)) });
  t.equal(json.statusCode, 200);
  const jsonData: number[] = json.json().outputs[0].data;

  for (const url of ['/v2/models/demo-embedder/infer', '/v2/models/demo-embedder/versions/1/infer']) {
    const { header, payload } = binaryBody(embedderInputs(c.input_ids), { id: 'b-1', parameters: { binary_data_output: true } });
    const res = await post(url, payload, { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.byteLength) });
    t.equal(res.statusCode, 200, url);
    t.equal(res.headers['content-type'], 'application/octet-stream');
    const { header: answer, values, rest } = readBinaryAnswer(res.rawPayload, Number(res.headers['inference-header-content-length']));
    t.equal(answer.id, 'b-1');
    t.equal(answer.model_version, '1');
    t.same(answer.outputs[0].shape, c.shape);
    t.equal(answer.outputs[0].datatype, 'FP32');
    t.equal(answer.outputs[0].data, undefined, 'a binary output has no JSON data');
    t.equal(rest, 0, 'the body ends with the last output');
    const data = values.get('last_hidden_state')!;
    t.ok(maxDiff(data, c.expected) <= 1e-4, `eager max diff ${maxDiff(data, c.expected)}`);
    t.same(data, jsonData.map((v) => Math.fround(v)), 'the same float32 values as the JSON answer');
  }
});

t.test('raw /infer takes binary bodies too, and mixes JSON and binary inputs', async (t) => {
  const c = cases[2]!;
  const [ids, mask, types] = embedderInputs(c.input_ids);
  const header = Buffer.from(
    JSON.stringify({
      model: 'demo-embedder',
      inputs: [
        { name: 'input_ids', datatype: 'INT64', shape: ids!.shape, parameters: { binary_data_size: ids!.bytes.byteLength } },
        { name: 'attention_mask', datatype: 'INT64', shape: mask!.shape, data: new Array(c.input_ids.length).fill(1) },
        { name: 'token_type_ids', datatype: 'INT64', shape: types!.shape, parameters: { binary_data_size: types!.bytes.byteLength } },
      ],
      outputs: [{ name: 'last_hidden_state', parameters: { binary_data: true } }],
    }),
  );
  const res = await post('/infer', Buffer.concat([header, ids!.bytes, types!.bytes]), {
    'content-type': 'application/octet-stream',
    'inference-header-content-length': String(header.byteLength),
  });
  t.equal(res.statusCode, 200);
  const { values } = readBinaryAnswer(res.rawPayload, Number(res.headers['inference-header-content-length']));
  t.ok(maxDiff(values.get('last_hidden_state')!, c.expected) <= 1e-4);

  // The length header with a JSON content type (or none) is read as a binary body all the same.
  const again = await post('/infer', Buffer.concat([header, ids!.bytes, types!.bytes]), {
    'content-type': 'application/json',
    'inference-header-content-length': String(header.byteLength),
  });
  t.equal(again.statusCode, 200);

  // An output may stay JSON while the request asks for binary outputs.
  const { header: h2, payload } = binaryBody(embedderInputs(c.input_ids), { model: 'demo-embedder', parameters: { binary_data_output: true }, outputs: [{ name: 'last_hidden_state', parameters: { binary_data: false } }] });
  const json = await post('/infer', payload, { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(h2.byteLength) });
  t.equal(json.statusCode, 200);
  t.match(json.headers['content-type'], /application\/json/);
  t.ok(maxDiff(json.json().outputs[0].data, c.expected) <= 1e-4);
});

t.test('bad binary bodies are 400s naming the problem, and the server keeps serving', async (t) => {
  const c = cases[0]!;
  const inputs = embedderInputs(c.input_ids);
  const { header, payload } = binaryBody(inputs);
  const url = '/v2/models/demo-embedder/infer';
  const expect = async (res: Awaited<ReturnType<typeof post>>, pattern: RegExp, what: string) => {
    t.equal(res.statusCode, 400, what);
    t.match(res.json().error, pattern, what);
    t.ok(res.json().code, `${what}: a code`);
  };
  const octet = (h: number | string) => ({ 'content-type': 'application/octet-stream', 'inference-header-content-length': String(h) });

  await expect(await post(url, payload, { 'content-type': 'application/octet-stream' }), /inference-header-content-length/, 'no length header');
  await expect(await post(url, payload, octet(payload.byteLength + 10)), /says \d+ bytes of JSON, the body has only/, 'header longer than the body');
  await expect(await post(url, payload, octet('twelve')), /must be a byte count/, 'a length that is not a number');
  await expect(await post(url, payload, octet(header.byteLength - 3)), /not valid JSON/, 'a header cut short');
  await expect(await post(url, payload.subarray(0, payload.byteLength - 8), octet(header.byteLength)), /token_type_ids.*reaches past the end of the body/, 'bytes missing');
  await expect(await post(url, Buffer.concat([payload, Buffer.alloc(4)]), octet(header.byteLength)), /carries \d+ bytes after its JSON header, .* add up to \d+/, 'bytes left over');

  const wrongSize = Buffer.from(
    JSON.stringify({ inputs: inputs.map((i, k) => ({ name: i.name, datatype: i.datatype, shape: i.shape, parameters: { binary_data_size: i.bytes.byteLength - (k === 1 ? 8 : 0) } })) }),
  );
  await expect(await post(url, Buffer.concat([wrongSize, ...inputs.map((i) => i.bytes)]), octet(wrongSize.byteLength)), /input 'attention_mask': binary_data_size is \d+, but shape \[1,\d+\] of INT64 takes \d+ bytes/, 'size ≠ shape × dtype');

  const asJson = await app.inject({ method: 'POST', url, payload: JSON.parse(header.toString()) });
  await expect(asJson, /input 'input_ids' has parameters.binary_data_size but the body has no binary section/, 'binary_data_size in a JSON body');

  const both = JSON.parse(header.toString());
  both.inputs[0].data = c.input_ids;
  await expect(await app.inject({ method: 'POST', url, payload: both }), /input 'input_ids' has both data and parameters.binary_data_size/, 'data and binary_data_size');

  const neither = embedderRequest(c.input_ids);
  delete (neither.inputs[2] as { data?: unknown }).data;
  await expect(await app.inject({ method: 'POST', url, payload: neither }), /input 'token_type_ids' has neither data nor/, 'neither');

  const bools = Buffer.from(JSON.stringify({ inputs: [{ name: 'input_ids', datatype: 'BOOL', shape: [1, 3], parameters: { binary_data_size: 3 } }] }));
  await expect(await post(url, Buffer.concat([bools, Buffer.from([1, 0, 2])]), octet(bools.byteLength)), /BOOL bytes must be 0 or 1, byte 2 is 2/, 'a BOOL byte of 2');

  const big = await post(url, Buffer.concat([header, Buffer.alloc(300 * 1024)]), octet(header.byteLength));
  t.equal(big.statusCode, 413, 'past BODY_LIMIT');

  const ok = await post(url, payload, octet(header.byteLength));
  t.equal(ok.statusCode, 200, 'still serving');
  t.same((await app.inject('/v2')).json().extensions, ['model_repository', 'binary_tensor_data']);
});

t.test('a numpy client over a real socket: bytes in, bytes out', async (t) => {
  try {
    execFileSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' });
  } catch {
    t.pass('numpy client', { skip: 'python3 with numpy is not installed' });
    return;
  }
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as { port: number };
  const c = cases[3]!;
  const script = `
import json, sys, http.client, numpy as np
ids = np.array([${JSON.stringify(c.input_ids)}], dtype='<i8')
arrays = [('input_ids', ids), ('attention_mask', np.ones_like(ids)), ('token_type_ids', np.zeros_like(ids))]
header = json.dumps({'inputs': [{'name': n, 'shape': list(a.shape), 'datatype': 'INT64', 'parameters': {'binary_data_size': a.nbytes}} for n, a in arrays],
                     'outputs': [{'name': 'last_hidden_state', 'parameters': {'binary_data': True}}]}).encode()
conn = http.client.HTTPConnection('127.0.0.1', ${port})
conn.request('POST', '/v2/models/demo-embedder/infer', body=header + b''.join(a.tobytes() for _, a in arrays),
             headers={'Content-Type': 'application/octet-stream', 'Inference-Header-Content-Length': str(len(header))})
r = conn.getresponse(); body = r.read()
assert r.status == 200, (r.status, body[:300])
n = int(r.getheader('Inference-Header-Content-Length'))
meta = json.loads(body[:n])
out = meta['outputs'][0]
values = np.frombuffer(body[n:n + out['parameters']['binary_data_size']], dtype='<f4').reshape(out['shape'])
print(json.dumps({'shape': list(values.shape), 'data': values.ravel().tolist()}))
`;
  // Asynchronously: the server answering it runs in this process.
  const { stdout } = await promisify(execFile)('python3', ['-c', script], { encoding: 'utf8' });
  const result = JSON.parse(stdout);
  t.same(result.shape, c.shape);
  t.ok(maxDiff(result.data, c.expected) <= 1e-4, `max diff ${maxDiff(result.data, c.expected)}`);
});
