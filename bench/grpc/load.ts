/**
 * Load for bench/grpc/run.sh: N clients each keep one request in flight for a fixed time (after
 * a warm-up) and one JSON line reports requests/s and exact latency percentiles (ms).
 *
 *   load.ts grpc   --port P --model tiny|minilm --connections N --duration S   (@grpc/grpc-js, raw_input_contents)
 *   load.ts http   --port P --model tiny|minilm --connections N --duration S   (KServe v2 JSON, keep-alive)
 *   load.ts inproc --model-dir DIR --model tiny --duration S                     (the addon's forward, same tensors)
 *   load.ts otlp   --port P                                                      (an OTLP/HTTP receiver that drops what it gets)
 * Only 127.0.0.1 is used.
 */
import { createServer } from 'node:http';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { credentials, loadPackageDefinition, Metadata, type ServiceClientConstructor } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

import { PREDICT_PROTO } from '../../src/server/grpc/proto.js';
import { TorchScriptModule, tensor } from '../../src/runtime/index.js';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { port: { type: 'string' }, model: { type: 'string', default: 'tiny' }, connections: { type: 'string', default: '1' }, duration: { type: 'string', default: '8' }, warmup: { type: 'string', default: '2' }, 'model-dir': { type: 'string' } },
});
const mode = positionals[0];
const SEQ = 32;
const ids = Array.from({ length: SEQ }, (_, i) => 1000 + ((i * 7919) % 29000));

/** The same tensors for every path (the serving benchmark's). */
function tensors(model: string): { name: string; datatype: string; shape: number[]; values: number[] }[] {
  if (model === 'tiny') return [{ name: 'x', datatype: 'FP32', shape: [1, 4], values: [1, 2, 3, 4] }];
  return [
    { name: 'input_ids', datatype: 'INT64', shape: [1, SEQ], values: ids },
    { name: 'attention_mask', datatype: 'INT64', shape: [1, SEQ], values: new Array(SEQ).fill(1) },
  ];
}

function bytesOf(t: { datatype: string; values: number[] }): Buffer {
  return t.datatype === 'INT64' ? Buffer.from(new BigInt64Array(t.values.map(BigInt)).buffer) : Buffer.from(new Float32Array(t.values).buffer);
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

/** `connections` loops of `once` for warm-up + duration; latencies of the measured window only. */
async function closedLoop(once: () => Promise<void>, connections: number, warmupS: number, durationS: number) {
  const latencies: number[] = [];
  let measuring = false;
  let stop = false;
  let errors = 0;
  const loops = Array.from({ length: connections }, async () => {
    while (!stop) {
      const t0 = performance.now();
      try {
        await once();
      } catch {
        errors++;
      }
      if (measuring) latencies.push(performance.now() - t0);
    }
  });
  await new Promise((r) => setTimeout(r, warmupS * 1000));
  measuring = true;
  const started = performance.now();
  await new Promise((r) => setTimeout(r, durationS * 1000));
  measuring = false;
  const seconds = (performance.now() - started) / 1000;
  stop = true;
  await Promise.all(loops);
  latencies.sort((a, b) => a - b);
  return { requests: latencies.length, rps: latencies.length / seconds, p50: percentile(latencies, 50), p90: percentile(latencies, 90), p99: percentile(latencies, 99), errors };
}

const connections = Number(values.connections);
const warmup = Number(values.warmup);
const duration = Number(values.duration);
const model = values.model!;
const label = { mode, model, connections };

if (mode === 'grpc') {
  const loaded = loadPackageDefinition(loadSync(PREDICT_PROTO, { keepCase: true, longs: Number, defaults: true, arrays: true })) as any;
  const stub = new (loaded.inference.GRPCInferenceService as ServiceClientConstructor)(`127.0.0.1:${values.port}`, credentials.createInsecure()) as any;
  const ts = tensors(model);
  const request = { model_name: model, inputs: ts.map(({ name, datatype, shape }) => ({ name, datatype, shape })), raw_input_contents: ts.map(bytesOf) };
  const once = () => new Promise<void>((resolve, reject) => stub.ModelInfer(request, new Metadata(), (error: Error | null) => (error ? reject(error) : resolve())));
  console.log(JSON.stringify({ ...label, ...(await closedLoop(once, connections, warmup, duration)) }));
  stub.close();
} else if (mode === 'http') {
  const body = JSON.stringify({ inputs: tensors(model).map(({ name, datatype, shape, values: data }) => ({ name, datatype, shape, data })) });
  const url = `http://127.0.0.1:${values.port}/v2/models/${model}/infer`;
  const once = async () => {
    const res = await fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`status ${res.status}`);
  };
  console.log(JSON.stringify({ ...label, ...(await closedLoop(once, connections, warmup, duration)) }));
} else if (mode === 'inproc') {
  const module = await TorchScriptModule.load(join(values['model-dir']!, model, 'model.pt'), { device: 'cpu' });
  const inputs = tensors(model).map((t) => (t.datatype === 'INT64' ? tensor('int64', t.shape, t.values.map(BigInt)) : tensor('float32', t.shape, t.values)));
  const once = async () => {
    await module.forward(inputs);
  };
  console.log(JSON.stringify({ ...label, ...(await closedLoop(once, 1, warmup, duration)) }));
  module.dispose();
} else if (mode === 'otlp') {
  let spans = 0;
  const server = createServer((req, res) => {
    req.on('data', () => undefined);
    req.on('end', () => {
      spans++;
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  server.listen(Number(values.port), '127.0.0.1');
  process.on('SIGTERM', () => {
    console.error(`otlp receiver: ${spans} exports`);
    process.exit(0);
  });
} else {
  console.error('usage: load.ts grpc|http|inproc|otlp ...');
  process.exit(2);
}
