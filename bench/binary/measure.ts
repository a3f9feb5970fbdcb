/**
 * The binary tensor data extension, measured (issue 15):
 *   1. service overhead: raw /infer on a 3-layer BERT, one 8-token row, concurrency 1, p50 over
 *      the in-process forward of the same inputs through the binding (awaited one at a time with
 *      a macrotask between calls, as a server's forward is; the better of all intra-op threads and
 *      one), for JSON in/out, JSON in + binary out,
 *      and binary in/out;
 *   2. a 16 MiB float32 tensor through `x + 1`: request + answer time, JSON vs binary.
 *
 * Usage: node dist/bench/binary/measure.js MODELS_DIR BASE_URL [SECONDS] [INTRA_OP_THREADS]
 * Prints one JSON line.
 */
import { Agent, request as httpRequest } from 'node:http';
import { join } from 'node:path';

import { TorchScriptModule, configureRuntime, tensor } from '../../src/runtime/index.js';

const [modelsArg, baseUrl, secondsText, threadsText] = process.argv.slice(2);
if (!modelsArg || !baseUrl) throw new Error('usage: measure.js MODELS_DIR BASE_URL [SECONDS]');
const modelsDir: string = modelsArg;
const SECONDS = Number(secondsText ?? 5);
if (Number(threadsText)) configureRuntime({ intraOpThreads: Number(threadsText) });
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
const url = new URL(baseUrl);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
};
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
const macrotask = () => new Promise((r) => setImmediate(r));

function post(path: string, body: Buffer, headers: Record<string, string>): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, path, method: 'POST', agent, headers: { ...headers, 'content-length': String(body.byteLength) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Latencies (µs) of `call` repeated for SECONDS after a 1 s warm-up. */
async function timeLoop(call: () => Promise<void>, seconds = SECONDS): Promise<number[]> {
  const warm = performance.now() + 1000;
  while (performance.now() < warm) await call();
  const samples: number[] = [];
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    const t0 = performance.now();
    await call();
    samples.push((performance.now() - t0) * 1000);
  }
  return samples;
}

const SEQ = 8;
const ids = Array.from({ length: SEQ }, (_, i) => (i === 0 ? 2 : i === SEQ - 1 ? 3 : 10 + ((i * 37) % 900)));
const int64 = (values: number[]) => Buffer.from(BigInt64Array.from(values.map(BigInt)).buffer);

/** The in-process forward's p50 (µs) on all intra-op threads and on one; the best of the two is what the server is held to. */
async function inProcess(): Promise<{ all: number; single: number }> {
  const module = await TorchScriptModule.load(join(modelsDir, 'tiny-bert', 'model.pt'));
  const inputs = [tensor('int64', [1, SEQ], ids), tensor('int64', [1, SEQ], new Array(SEQ).fill(1)), tensor('int64', [1, SEQ], new Array(SEQ).fill(0))];
  const loop = (options?: { threads: number }) =>
    timeLoop(async () => {
      await module.forward(inputs, options);
      await macrotask();
    });
  const all = median(await loop());
  const single = median(await loop({ threads: 1 }));
  module.dispose();
  return { all, single };
}

function bertBodies() {
  const tensors = [
    { name: 'input_ids', data: ids },
    { name: 'attention_mask', data: new Array(SEQ).fill(1) },
    { name: 'token_type_ids', data: new Array(SEQ).fill(0) },
  ];
  const jsonIn = (extra: object) =>
    Buffer.from(JSON.stringify({ model: 'tiny-bert', ...extra, inputs: tensors.map((t) => ({ name: t.name, shape: [1, SEQ], datatype: 'INT64', data: t.data })) }));
  const header = Buffer.from(
    JSON.stringify({
      model: 'tiny-bert',
      parameters: { binary_data_output: true },
      inputs: tensors.map((t) => ({ name: t.name, shape: [1, SEQ], datatype: 'INT64', parameters: { binary_data_size: SEQ * 8 } })),
    }),
  );
  return {
    json: { body: jsonIn({}), headers: { 'content-type': 'application/json' } },
    jsonInBinaryOut: { body: jsonIn({ parameters: { binary_data_output: true } }), headers: { 'content-type': 'application/json' } },
    binary: {
      body: Buffer.concat([header, ...tensors.map((t) => int64(t.data))]),
      headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.byteLength) },
    },
  };
}

async function served(): Promise<Record<string, { p50_us: number; p99_us: number; requests: number }>> {
  const out: Record<string, { p50_us: number; p99_us: number; requests: number }> = {};
  for (const [mode, { body, headers }] of Object.entries(bertBodies())) {
    const samples = await timeLoop(async () => {
      const res = await post('/infer', body, headers);
      if (res.status !== 200) throw new Error(`${mode}: ${res.status} ${res.body.toString().slice(0, 200)}`);
    });
    out[mode] = { p50_us: median(samples), p99_us: pct(samples, 0.99), requests: samples.length };
  }
  return out;
}

/** A 16 MiB float32 tensor ([1024, 4096]) through x + 1, JSON both ways vs binary both ways. */
async function roundTrip16MiB(): Promise<Record<string, { ms_p50: number; mib_per_s: number; checked: boolean }>> {
  const rows = 1024;
  const cols = 4096;
  const x = new Float32Array(rows * cols);
  for (let i = 0; i < x.length; i++) x[i] = Math.fround(Math.sin(i) * 1000);
  const mib = x.byteLength / 2 ** 20;
  const jsonBody = Buffer.from(JSON.stringify({ model: 'echo', inputs: [{ name: 'x', shape: [rows, cols], datatype: 'FP32', data: Array.from(x) }] }));
  const header = Buffer.from(JSON.stringify({ model: 'echo', parameters: { binary_data_output: true }, inputs: [{ name: 'x', shape: [rows, cols], datatype: 'FP32', parameters: { binary_data_size: x.byteLength } }] }));
  const binaryBody = Buffer.concat([header, Buffer.from(x.buffer)]);
  const modes = {
    json: async () => {
      const res = await post('/infer', jsonBody, { 'content-type': 'application/json' });
      if (res.status !== 200) throw new Error(`json: ${res.status} ${res.body.toString().slice(0, 200)}`);
      return Float32Array.from(JSON.parse(res.body.toString()).outputs[0].data as number[]);
    },
    binary: async () => {
      const res = await post('/infer', binaryBody, { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.byteLength) });
      if (res.status !== 200) throw new Error(`binary: ${res.status} ${res.body.toString().slice(0, 200)}`);
      const n = Number(res.headers['inference-header-content-length']);
      return new Float32Array(res.body.buffer.slice(res.body.byteOffset + n, res.body.byteOffset + res.body.byteLength));
    },
  };
  const out: Record<string, { ms_p50: number; mib_per_s: number; checked: boolean }> = {};
  for (const [mode, call] of Object.entries(modes)) {
    const y = await call();
    let checked = y.length === x.length;
    for (let i = 0; checked && i < x.length; i += 997) checked = y[i] === Math.fround(x[i]! + 1);
    const samples: number[] = [];
    for (let k = 0; k < 5; k++) {
      const t0 = performance.now();
      await call();
      samples.push(performance.now() - t0);
    }
    const ms = median(samples);
    out[mode] = { ms_p50: ms, mib_per_s: (2 * mib) / (ms / 1000), checked };
  }
  return out;
}

const inprocess = await inProcess();
const inprocessUs = Math.min(inprocess.all, inprocess.single);
const http = await served();
const big = await roundTrip16MiB();
const overhead = Object.fromEntries(Object.entries(http).map(([mode, v]) => [mode, v.p50_us - inprocessUs]));
console.log(JSON.stringify({ inprocess_p50_us: inprocessUs, inprocess_all_threads_p50_us: inprocess.all, inprocess_one_thread_p50_us: inprocess.single, http, overhead_us: overhead, roundtrip_16mib: big, speedup_16mib: big.json!.ms_p50 / big.binary!.ms_p50 }));
agent.destroy();
