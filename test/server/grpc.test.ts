// KServe v2 over gRPC, driven by a client we did not write: Python grpcio with stubs that
// grpcio-tools generates from the repository's .proto. Every RPC; results equal HTTP's (and
// transformers') for the same tensors; bad requests get the status and the message HTTP gives
// them and leave the server serving; health (grpc.health.v1) and reflection as Kubernetes
// probes and grpcurl use them; auth as over HTTP; metrics labelled by protocol; drain on close.
import t from 'tap';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { credentials, loadPackageDefinition, Metadata, type ServiceClientConstructor, status } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

import { GrpcServer } from '../../src/server/grpc/server.js';
import { PREDICT_PROTO } from '../../src/server/grpc/proto.js';
import { embedderCases, embedderRequest, maxDiff, metricValue, testApp } from '../helpers/server.js';
import { repoRoot } from '../helpers/python-fixtures.js';

const client = join(repoRoot, 'test', 'server', 'grpc_client.py');
const pythonGrpc = spawnSync('python3', ['-c', 'import grpc, grpc_tools'], { stdio: 'ignore' }).status === 0;

interface Result {
  ok: boolean;
  code?: string;
  details?: string;
  trailing?: Record<string, string>;
  response?: any;
  responses?: any[];
  status?: string;
  services?: string[];
  described?: Record<string, string[]>;
}

/** Run calls through the Python client (asynchronously: the server answers on this event loop); one result per call. */
async function python(port: number, calls: object[]): Promise<Result[]> {
  const file = join(mkdtempSync(join(tmpdir(), 'grpc-calls-')), 'calls.json');
  writeFileSync(file, JSON.stringify(calls));
  const { stdout } = await promisify(execFile)('python3', [client, `127.0.0.1:${port}`, file], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return JSON.parse(stdout) as Result[];
}

const int64Bytes = (values: number[]) => Buffer.from(new BigInt64Array(values.map(BigInt)).buffer).toString('base64');
const float32s = (b64: string) => {
  const bytes = Buffer.from(b64, 'base64');
  return Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4));
};

/** The embedder's three inputs, as typed contents or as raw bytes. */
function typedRequest(ids: number[], extra: object = {}) {
  const n = ids.length;
  const input = (name: string, data: number[]) => ({ name, datatype: 'INT64', shape: [1, n], contents: { int64_contents: data } });
  return { model_name: 'demo-embedder', inputs: [input('input_ids', ids), input('attention_mask', ids.map(() => 1)), input('token_type_ids', ids.map(() => 0))], ...extra };
}
function rawRequest(ids: number[], extra: object = {}) {
  const n = ids.length;
  const input = (name: string) => ({ name, datatype: 'INT64', shape: [1, n] });
  return {
    model_name: 'demo-embedder',
    inputs: [input('input_ids'), input('attention_mask'), input('token_type_ids')],
    raw_input_contents: [int64Bytes(ids), int64Bytes(ids.map(() => 1)), int64Bytes(ids.map(() => 0))],
    ...extra,
  };
}

t.test('every RPC through Python grpcio', { skip: pythonGrpc ? false : 'python3 has no grpcio/grpcio-tools (pip install -r test/requirements.txt)' }, async (t) => {
  const { app, context } = await testApp();
  const grpc = await GrpcServer.start(context, { port: 0, host: '127.0.0.1', maxMessageBytes: 1 << 20 });
  t.teardown(async () => {
    await grpc.close();
    await app.close();
  });
  const cases = embedderCases();
  const c = cases[0]!;
  const ids = c.input_ids;
  // HTTP's answers for the same tensors, and its errors, to compare with.
  const http = async (payload: object) => {
    const { model, ...body } = payload as { model: string };
    return (await app.inject({ method: 'POST', url: `/v2/models/${model}/infer`, payload: body })).json();
  };
  const httpOut = (await http(embedderRequest(ids))).outputs[0];
  const wrongDtype = embedderRequest(ids);
  wrongDtype.inputs[0]!.datatype = 'INT32';
  const httpWrongDtype = await http(wrongDtype);
  const short = embedderRequest(ids);
  short.inputs[0]!.data = ids.slice(1);
  const httpShort = await http(short);
  const httpUnknown = await http({ ...embedderRequest(ids), model: 'nope' });

  const badRaw = rawRequest(ids);
  badRaw.raw_input_contents[0] = int64Bytes(ids.slice(1));
  const results = await python(grpc.port, [
    { rpc: 'ServerLive' },
    { rpc: 'ServerReady' },
    { rpc: 'ServerMetadata' },
    { rpc: 'ModelReady', request: { name: 'demo-embedder' } },
    { rpc: 'ModelMetadata', request: { name: 'demo-embedder' } },
    { rpc: 'ModelInfer', request: typedRequest(ids, { id: 'typed-1' }) },
    { rpc: 'ModelInfer', request: rawRequest(ids, { id: 'raw-1' }) },
    { rpc: 'ModelInfer', request: { ...typedRequest(ids), model_name: 'nope' } },
    { rpc: 'ModelInfer', request: (() => { const r = typedRequest(ids); r.inputs[0]!.datatype = 'INT32'; (r.inputs[0]!.contents as any) = { int_contents: ids }; return r; })() },
    { rpc: 'ModelInfer', request: (() => { const r = typedRequest(ids); r.inputs[0]!.contents.int64_contents = ids.slice(1); return r; })() },
    { rpc: 'ModelInfer', request: badRaw },
    { rpc: 'ModelInfer', request: (() => { const r = typedRequest(ids); r.inputs[0]!.contents = { fp32_contents: ids } as any; return r; })() },
    { rpc: 'ModelInfer', request: { model_name: 'demo-embedder', inputs: [{ name: 'input_ids', datatype: 'INT64', shape: [1, 1 << 19] }] }, zeros: 1 << 22 },
    { rpc: 'ModelInfer', request: typedRequest(ids, { id: 'after-errors' }) },
    { rpc: 'ModelStreamInfer', requests: [typedRequest(ids, { id: 's1' }), { ...typedRequest(ids, { id: 's2' }), model_name: 'nope' }, rawRequest(ids, { id: 's3' })] },
    { rpc: 'Health/Check', service: '' },
    { rpc: 'Health/Check', service: 'inference.GRPCInferenceService' },
    { rpc: 'Health/Check', service: 'liveness' },
    { rpc: 'Health/Check', service: 'no.such.Service' },
    { rpc: 'Health/Watch', service: '' },
    { rpc: 'Reflection' },
    { rpc: 'RepositoryModelUnload', request: { model_name: 'demo-embedder' } },
    { rpc: 'ModelReady', request: { name: 'demo-embedder' } },
    { rpc: 'RepositoryModelLoad', request: { model_name: 'demo-embedder' } },
    { rpc: 'ModelReady', request: { name: 'demo-embedder' } },
  ]);
  const [live, ready, meta, modelReady, modelMeta, typed, raw, unknown, dtype, mismatch, rawMismatch, wrongField, oversized, after, stream, health, healthInference, liveness, healthUnknown, watch, reflection, unload, readyAfterUnload, load, readyAfterLoad] = results;

  t.same(live!.response, { live: true }, 'ServerLive');
  t.same(ready!.response, { ready: true }, 'ServerReady');
  t.equal(meta!.response.name, 'atenspace-serve');
  t.same(meta!.response.extensions, ['model_repository']);
  t.same(modelReady!.response, { ready: true }, 'ModelReady');
  t.equal(modelMeta!.response.platform, 'pytorch_torchscript');
  t.same(modelMeta!.response.inputs[0], { name: 'input_ids', datatype: 'INT64', shape: ['-1', '-1'] }, 'ModelMetadata: int64 shapes, -1 for variable');
  t.same(modelMeta!.response.versions, ['1']);

  t.ok(typed!.ok, `typed ModelInfer: ${typed!.details ?? ''}`);
  const typedOut = typed!.response.outputs[0];
  t.equal(typed!.response.id, 'typed-1', 'id echoed');
  t.equal(typedOut.datatype, 'FP32');
  t.same(typedOut.shape.map(Number), c.shape, 'shape');
  t.notOk(typed!.response.raw_output_contents, 'typed request, typed answer');
  // Python prints a float32 in its shortest form; as float32 the values are HTTP's, bit for bit.
  t.ok(maxDiff(typedOut.contents.fp32_contents.map(Math.fround), httpOut.data) === 0, 'typed contents equal HTTP JSON exactly (as float32)');
  t.ok(maxDiff(typedOut.contents.fp32_contents, c.expected) <= 1e-4, 'and transformers eager');

  t.ok(raw!.ok, `raw ModelInfer: ${raw!.details ?? ''}`);
  t.equal(raw!.response.id, 'raw-1');
  t.notOk(raw!.response.outputs[0].contents, 'raw request, raw answer');
  const rawOut = float32s(raw!.response.raw_output_contents[0]);
  t.equal(rawOut.length, c.expected.length, 'raw_output_contents holds shape x 4 bytes');
  t.ok(maxDiff(rawOut, httpOut.data) === 0, 'raw bytes equal HTTP JSON exactly');

  const expectFailure = (r: Result | undefined, code: string, errorCode: string, message: RegExp | string, what: string) => {
    t.equal(r?.ok, false, `${what}: fails`);
    t.equal(r?.code, code, `${what}: ${code}`);
    if (errorCode) t.equal(r?.trailing?.['error-code'], errorCode, `${what}: error-code ${errorCode}`);
    if (typeof message === 'string') t.equal(r?.details, message, `${what}: HTTP's message`);
    else t.match(r?.details, message, `${what}: message`);
  };
  expectFailure(unknown, 'NOT_FOUND', 'MODEL_NOT_FOUND', httpUnknown.error, 'unknown model');
  expectFailure(dtype, 'INVALID_ARGUMENT', 'BAD_INPUT', httpWrongDtype.error, 'wrong dtype');
  expectFailure(mismatch, 'INVALID_ARGUMENT', 'BAD_INPUT', httpShort.error, 'shape x data mismatch (typed)');
  expectFailure(rawMismatch, 'INVALID_ARGUMENT', 'BAD_INPUT', /input 'input_ids': shape \[1,\d+\] of INT64 needs \d+ bytes, the request carries \d+/, 'shape x data mismatch (raw)');
  expectFailure(wrongField, 'INVALID_ARGUMENT', 'BAD_INPUT', /INT64 values go in contents.int64_contents, the request has contents.fp32_contents/, 'values in the wrong typed field');
  expectFailure(oversized, 'RESOURCE_EXHAUSTED', '', /larger than max/i, 'message past GRPC_MAX_MESSAGE_BYTES');
  t.ok(after!.ok && after!.response.id === 'after-errors', 'still serving after the bad requests');

  t.ok(stream!.ok, 'ModelStreamInfer');
  const byId = new Map(stream!.responses!.map((r) => [r.infer_response?.id, r]));
  t.equal(stream!.responses!.length, 3, 'one answer per request');
  t.ok(maxDiff(byId.get('s1').infer_response.outputs[0].contents.fp32_contents.map(Math.fround), httpOut.data) === 0, 'stream: typed answer');
  t.ok(maxDiff(float32s(byId.get('s3').infer_response.raw_output_contents[0]), httpOut.data) === 0, 'stream: raw answer');
  t.equal(byId.get('s2').error_message, httpUnknown.error, 'stream: the failed request answers error_message, the stream goes on');

  t.equal(health!.status, 'SERVING', 'grpc.health.v1 Check(""): SERVING');
  t.equal(healthInference!.status, 'SERVING', 'Check(inference.GRPCInferenceService)');
  t.equal(liveness!.status, 'SERVING', 'Check(liveness)');
  t.equal(healthUnknown!.code, 'NOT_FOUND', 'an unknown service name is NOT_FOUND');
  t.equal(watch!.status, 'SERVING', 'Watch');

  t.ok(reflection!.ok, 'reflection');
  for (const s of ['inference.GRPCInferenceService', 'grpc.health.v1.Health']) t.ok(reflection!.services!.includes(s), `reflection lists ${s}`);
  t.same(
    reflection!.described!['inference.GRPCInferenceService'],
    ['ServerLive', 'ServerReady', 'ModelReady', 'ServerMetadata', 'ModelMetadata', 'ModelInfer', 'ModelStreamInfer', 'RepositoryModelLoad', 'RepositoryModelUnload'],
    'reflection describes every method',
  );
  t.ok(reflection!.described!['inference.ModelInferRequest']!.includes('raw_input_contents=7'), 'and the messages, field numbers included');

  t.same(unload!.response, { model_name: 'demo-embedder' , isUnloaded: true }, 'RepositoryModelUnload');
  t.same(readyAfterUnload!.response, {}, 'ModelReady false after unload (proto3 leaves false out)');
  t.same(load!.response, { model_name: 'demo-embedder', isLoaded: true }, 'RepositoryModelLoad');
  t.same(readyAfterLoad!.response, { ready: true });

  const metrics = (await app.inject('/metrics')).body;
  t.ok(metricValue(metrics, 'atenspace_requests_total', { model: 'demo-embedder', outcome: 'success', protocol: 'grpc' }) >= 5, 'gRPC successes counted with protocol="grpc"');
  t.ok(metricValue(metrics, 'atenspace_requests_total', { model: 'demo-embedder', outcome: 'client_error', protocol: 'grpc' }) >= 4, 'and its client errors');
  t.ok(metricValue(metrics, 'atenspace_requests_total', { model: 'demo-embedder', outcome: 'success', protocol: 'http' }) >= 1, 'HTTP keeps protocol="http"');
});

t.test('auth: the authorization metadata, under the HTTP rule', { skip: pythonGrpc ? false : 'python3 has no grpcio/grpcio-tools' }, async (t) => {
  const { app, context } = await testApp({ API_KEY: 'sekret', AUTH_READS: 'true' });
  const grpc = await GrpcServer.start(context, { port: 0, host: '127.0.0.1', maxMessageBytes: 1 << 20 });
  t.teardown(async () => {
    await grpc.close();
    await app.close();
  });
  const ids = [2, 15, 27, 3];
  const key = [['authorization', 'Bearer sekret']];
  const [noKey, wrongKey, withKey, live, health, loadNoKey] = await python(grpc.port, [
    { rpc: 'ModelInfer', request: typedRequest(ids) },
    { rpc: 'ModelInfer', request: typedRequest(ids), metadata: [['authorization', 'Bearer nope']] },
    { rpc: 'ModelInfer', request: typedRequest(ids), metadata: key },
    { rpc: 'ServerLive' },
    { rpc: 'Health/Check', service: '' },
    { rpc: 'RepositoryModelLoad', request: { model_name: 'demo-embedder' } },
  ]);
  t.equal(noKey!.code, 'UNAUTHENTICATED');
  t.equal(noKey!.trailing?.['error-code'], 'UNAUTHORIZED');
  t.match(noKey!.details, /authorization: Bearer <API_KEY>/);
  t.equal(wrongKey!.code, 'UNAUTHENTICATED', 'a wrong key is refused');
  t.ok(withKey!.ok, 'the right key passes');
  t.ok(live!.ok, 'liveness is open, as /v2/health/live');
  t.equal(health!.status, 'SERVING', 'health is open (Kubernetes probes send no key)');
  t.equal(loadNoKey!.code, 'UNAUTHENTICATED', 'a write needs the key');
});

t.test('load shedding: an overloaded process answers UNAVAILABLE, as HTTP answers 503, health still answers', { skip: pythonGrpc ? false : 'python3 has no grpcio/grpcio-tools' }, async (t) => {
  const { app, context } = await testApp({ MAX_HEAP_USED: '1' }); // always over: any heap is more than 1 byte
  const grpc = await GrpcServer.start(context, { port: 0, host: '127.0.0.1', maxMessageBytes: 1 << 20 });
  t.teardown(async () => {
    await grpc.close();
    await app.close();
  });
  await new Promise((r) => setTimeout(r, 700)); // one memory sample
  const ids = [2, 15, 27, 3];
  const [infer, stream, live, health] = await python(grpc.port, [
    { rpc: 'ModelInfer', request: typedRequest(ids) },
    { rpc: 'ModelStreamInfer', requests: [typedRequest(ids, { id: 's1' })] },
    { rpc: 'ServerLive' },
    { rpc: 'Health/Check', service: '' },
  ]);
  t.equal(infer!.code, 'UNAVAILABLE');
  t.equal(infer!.trailing?.['error-code'], 'OVERLOADED');
  t.match(infer!.details, /heapUsedBytes is \d+ bytes, more than MAX_HEAP_USED \(1 bytes\)/);
  t.match(stream!.responses![0].error_message, /the server is overloaded/, 'a stream request is refused on the stream');
  t.ok(live!.ok, 'liveness still answers');
  t.equal(health!.status, 'SERVING', 'health still answers');
  const http = await app.inject({ method: 'POST', url: '/v2/models/demo-embedder/infer', payload: embedderRequest(ids) });
  t.equal(http.statusCode, 503, 'HTTP sheds the same request');
});

t.test('drain: calls in flight finish, new ones are refused, health says NOT_SERVING', async (t) => {
  const { app, context, closeFirst } = await testApp();
  const grpc = await GrpcServer.start(context, { port: 0, host: '127.0.0.1', maxMessageBytes: 1 << 20 });
  closeFirst(() => grpc.close());
  // @grpc/grpc-js's own client over the same .proto.
  const loaded = loadPackageDefinition(loadSync(PREDICT_PROTO, { keepCase: true, longs: Number, defaults: true, arrays: true })) as any;
  const Client = loaded.inference.GRPCInferenceService as ServiceClientConstructor;
  const stub = new Client(`127.0.0.1:${grpc.port}`, credentials.createInsecure()) as any;
  t.teardown(() => stub.close());
  const call = (request: object) =>
    new Promise<{ error: any; response: any }>((resolve) => stub.ModelInfer(request, new Metadata(), (error: any, response: any) => resolve({ error, response })));
  const request = typedRequest(new Array(64).fill(7));
  await call(request); // connected
  const inFlight = Array.from({ length: 16 }, () => call(request));
  // Close once the server has every call (answered or still running), not while some are still on the wire.
  const received = async () => {
    const count = async (metric: { get(): Promise<{ values: { value: number; labels: Record<string, unknown> }[] }> }) =>
      (await metric.get()).values.filter((v) => v.labels.model === 'demo-embedder' && (v.labels.protocol ?? 'grpc') === 'grpc').reduce((n, v) => n + v.value, 0);
    return (await count(context.metrics.inflightRequests)) + (await count(context.metrics.requests));
  };
  while ((await received()) < 17) await new Promise((resolve) => setImmediate(resolve));
  const closing = app.close();
  const answers = await Promise.all(inFlight);
  t.same(answers.map((a) => a.error?.code ?? 0), new Array(16).fill(0), 'every call in flight was answered');
  await closing;
  const late = await call(request);
  t.equal(late.error?.code, status.UNAVAILABLE, 'a call after close is refused (UNAVAILABLE)');
});
