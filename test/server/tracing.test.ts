// OpenTelemetry tracing: the server exports real OTLP/HTTP (protobuf) to a receiver in this test,
// whose bodies are decoded with OpenTelemetry's own protobuf classes (Python opentelemetry-proto).
// A request's span continues the caller's traceparent (HTTP header or gRPC metadata), its stages
// are child spans (queue, compute with batch size, preprocess, postprocess), and its log lines
// carry the trace id. Without an endpoint, tracing is off.
import t from 'tap';
import { execFile, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';

import { credentials, loadPackageDefinition, Metadata, type ServiceClientConstructor } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

import { currentTrace } from '../../src/models/request-trace.js';
import { buildApp } from '../../src/server/app.js';
import { loadConfig } from '../../src/server/config.js';
import { PREDICT_PROTO } from '../../src/server/grpc/proto.js';
import { GrpcServer } from '../../src/server/grpc/server.js';
import { embedderRequest, serverFixtures, testApp } from '../helpers/server.js';
import { repoRoot } from '../helpers/python-fixtures.js';

const otelProto = spawnSync('python3', ['-c', 'import opentelemetry.proto.collector.trace.v1.trace_service_pb2'], { stdio: 'ignore' }).status === 0;

interface DecodedSpan {
  trace_id: string;
  span_id: string;
  parent_span_id: string;
  name: string;
  kind: string;
  start: number;
  end: number;
  attributes: Record<string, unknown>;
  status: number;
  service: string;
}

/** A local OTLP/HTTP receiver: keeps every body POSTed to /v1/traces. */
async function receiver() {
  const bodies: Buffer[] = [];
  const contentTypes: string[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/v1/traces') {
        bodies.push(Buffer.concat(chunks));
        contentTypes.push(String(req.headers['content-type']));
      }
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, bodies, contentTypes, close: () => new Promise((r) => server.close(r)) };
}

async function decode(bodies: Buffer[]): Promise<DecodedSpan[]> {
  const dir = mkdtempSync(join(tmpdir(), 'otlp-'));
  mkdirSync(dir, { recursive: true });
  const files = bodies.map((b, i) => {
    const file = join(dir, `${i}.bin`);
    writeFileSync(file, b);
    return file;
  });
  const { stdout } = await promisify(execFile)('python3', [join(repoRoot, 'test', 'server', 'tracing_otlp_decode.py'), ...files], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return JSON.parse(stdout) as DecodedSpan[];
}

t.test('spans over OTLP continue traceparent, with a child span per stage and the trace id in the logs', { skip: otelProto ? false : 'python3 has no opentelemetry-proto (pip install -r test/requirements.txt)' }, async (t) => {
  const otlp = await receiver();
  t.teardown(otlp.close);
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  const config = loadConfig(
    {
      MODEL_REPOSITORY: join(serverFixtures(), 'models'),
      LOAD_MODELS: 'demo-embedder',
      DEVICE: 'cpu',
      DATA_DIR: mkdtempSync(join(tmpdir(), 'atenspace-data-')),
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
      OTEL_SERVICE_NAME: 'atenspace-test',
    },
    [],
  );
  const built = await buildApp(config, { logger: { level: 'info', stream } });
  await built.loadStartupModels();
  const { app, context } = built;
  t.ok(context.tracing, 'tracing is on with an endpoint');
  const grpc = await GrpcServer.start(context, { port: 0, host: '127.0.0.1', maxMessageBytes: 1 << 20 });
  built.closeFirst(() => grpc.close());

  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const parentId = '00f067aa0ba902b7';
  const { model, ...body } = embedderRequest([2, 15, 27, 3]);
  const infer = await app.inject({ method: 'POST', url: `/v2/models/${model}/infer`, payload: body, headers: { traceparent: `00-${traceId}-${parentId}-01`, 'x-request-id': 'traced-1' } });
  t.equal(infer.statusCode, 200);
  const embedTrace = 'a3ce929d0e0e47364bf92f3577b34da6';
  const embed = await app.inject({ method: 'POST', url: '/embed', payload: { inputs: 'hello world' }, headers: { traceparent: `00-${embedTrace}-${parentId}-01` } });
  t.equal(embed.statusCode, 200);
  const untraced = await app.inject({ method: 'POST', url: `/v2/models/${model}/infer`, payload: body });
  t.equal(untraced.statusCode, 200);
  const missing = await app.inject({ method: 'POST', url: '/v2/models/nope/infer', payload: body, headers: { traceparent: `00-${traceId}-${parentId}-01` } });
  t.equal(missing.statusCode, 404);

  // gRPC, with the trace context in the call's metadata (@grpc/grpc-js's client).
  const loaded = loadPackageDefinition(loadSync(PREDICT_PROTO, { keepCase: true, longs: Number, defaults: true, arrays: true })) as any;
  const stub = new (loaded.inference.GRPCInferenceService as ServiceClientConstructor)(`127.0.0.1:${grpc.port}`, credentials.createInsecure()) as any;
  const grpcTrace = '0af7651916cd43dd8448eb211c80319c';
  const metadata = new Metadata();
  metadata.set('traceparent', `00-${grpcTrace}-b7ad6b7169203331-01`);
  const ids = [2, 15, 27, 3];
  const raw = (v: number[]) => Buffer.from(new BigInt64Array(v.map(BigInt)).buffer);
  const grpcAnswer = await new Promise<any>((resolve, reject) =>
    stub.ModelInfer(
      {
        model_name: model,
        inputs: ['input_ids', 'attention_mask', 'token_type_ids'].map((name) => ({ name, datatype: 'INT64', shape: [1, 4] })),
        raw_input_contents: [raw(ids), raw([1, 1, 1, 1]), raw([0, 0, 0, 0])],
      },
      metadata,
      (error: Error | null, response: unknown) => (error ? reject(error) : resolve(response)),
    ),
  );
  t.equal(grpcAnswer.model_name, model);
  stub.close();

  await app.close(); // flushes the exporter
  t.ok(otlp.bodies.length > 0, 'the receiver got OTLP exports');
  t.ok(otlp.contentTypes.every((c) => c === 'application/x-protobuf'), 'as protobuf');
  const spans = await decode(otlp.bodies);
  const byTrace = (id: string) => spans.filter((s) => s.trace_id === id);
  const childrenOf = (span: DecodedSpan) => spans.filter((s) => s.parent_span_id === span.span_id);
  t.ok(spans.every((s) => s.service === 'atenspace-test'), 'service.name from OTEL_SERVICE_NAME');

  // HTTP raw inference: the request span continues the caller's trace; queue and compute are its children.
  const httpRoot = byTrace(traceId).find((s) => s.name === 'POST /v2/models/:name/infer' && s.attributes['http.response.status_code'] === 200);
  t.ok(httpRoot, 'HTTP request span in the caller\'s trace');
  t.equal(httpRoot?.parent_span_id, parentId, 'its parent is the caller\'s span');
  t.equal(httpRoot?.kind, 'SPAN_KIND_SERVER');
  const httpStages = childrenOf(httpRoot!);
  t.same(httpStages.map((s) => s.name).sort(), ['compute', 'queue'], 'queue and compute child spans');
  const compute = httpStages.find((s) => s.name === 'compute')!;
  t.equal(compute.attributes.batch_size, 1, 'compute carries its batch size');
  for (const s of httpStages) t.ok(s.start >= httpRoot!.start && s.end <= httpRoot!.end, `${s.name} lies within the request`);
  const queue = httpStages.find((s) => s.name === 'queue')!;
  t.ok(queue.end <= compute.start + 1000, `queue wait ends where compute starts (${queue.start} ${queue.end} ${compute.start} ${compute.end})`);

  // Task route: preprocess (tokenize) and postprocess (pooling) too.
  const embedRoot = byTrace(embedTrace).find((s) => s.name === 'POST /embed');
  t.ok(embedRoot, '/embed span');
  t.same(childrenOf(embedRoot!).map((s) => s.name).sort(), ['compute', 'postprocess', 'preprocess', 'queue'], 'preprocess, queue, compute, postprocess');

  // No traceparent: a new trace of its own.
  const fresh = spans.filter((s) => s.name === 'POST /v2/models/:name/infer' && s.trace_id !== traceId);
  t.equal(fresh.length, 1, 'the request without traceparent has its own trace');
  t.equal(fresh[0]?.parent_span_id, '', 'and no parent');

  // A failed request: the span names the error code (a client error is not a span error).
  const failed = byTrace(traceId).find((s) => s.attributes['http.response.status_code'] === 404);
  t.equal(failed?.attributes['error.type'], 'MODEL_NOT_FOUND', '404 span names MODEL_NOT_FOUND');

  // gRPC: the same shape.
  const grpcRoot = byTrace(grpcTrace).find((s) => s.name === 'inference.GRPCInferenceService/ModelInfer');
  t.ok(grpcRoot, 'gRPC request span in the caller\'s trace');
  t.equal(grpcRoot?.parent_span_id, 'b7ad6b7169203331');
  t.equal(grpcRoot?.attributes['rpc.system'], 'grpc');
  t.equal(grpcRoot?.attributes['rpc.grpc.status_code'], 0);
  t.same(childrenOf(grpcRoot!).map((s) => s.name).sort(), ['compute', 'postprocess', 'preprocess', 'queue'], 'gRPC: decode, queue, compute, encode');

  // Logs: every line of the traced request carries its trace id.
  const logged = lines.map((l) => JSON.parse(l) as { reqId?: string; trace_id?: string; msg?: string });
  const traced = logged.filter((l) => l.reqId === 'traced-1' && l.msg === 'request completed');
  t.equal(traced.length, 1, 'the completion log line of the traced request');
  t.equal(traced[0]?.trace_id, traceId, 'carries the trace id');
});

t.test('off without an endpoint: no tracer, no trace looked up', async (t) => {
  const { app, context } = await testApp();
  t.teardown(() => app.close());
  t.equal(context.tracing, undefined, 'no tracing');
  const { model, ...body } = embedderRequest([2, 15, 27, 3]);
  const res = await app.inject({ method: 'POST', url: `/v2/models/${model}/infer`, payload: body, headers: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' } });
  t.equal(res.statusCode, 200, 'a traceparent is simply ignored');
  t.equal(currentTrace(), undefined);
});
