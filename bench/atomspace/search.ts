/**
 * Served exact search vs in-process numpy on the same matrix. Starts the real server
 * (dist/src/server/main.js) on a fresh DATA_DIR, imports N clustered D-dimensional vectors
 * (base64 NDJSON; atom i+1 is row i), then measures over HTTP (keep-alive, node:http):
 * one client at a time (p50, numbers and base64 bodies) and 16 concurrent clients (QPS),
 * exact mode, k = 10, checking every answer's top-10 against numpy's. Runs numpy_search.py for
 * the in-process figures, and splits the served time: JSON, queueing and the native call
 * (GEMV + top-k) measured in this process on the same data, the server's own search histogram.
 *
 * Usage: node dist/bench/atomspace/search.js [N=100000] [D=384] [SECONDS=10]
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { topK } from '../../src/runtime/index.js';
import { base64, clustered, importLine, matrix } from './vectors.js';
import { poster } from './http-post.js';

const [nArg, dArg, secondsArg] = process.argv.slice(2);
const N = Number(nArg ?? 100_000);
const D = Number(dArg ?? 384);
const SECONDS = Number(secondsArg ?? 10);
const K = 10;
const root = join(fileURLToPath(import.meta.url), '..', '..', '..', '..');
const work = mkdtempSync(join(tmpdir(), 'search-bench-'));
const PORT = 18_000 + (process.pid % 1000);

const X = matrix(N, D, 1);
const nextQuery = clustered(D, 2); // the same kind of data, other centres and noise
const Q = Array.from({ length: 200 }, () => nextQuery(new Float32Array(D)));
writeFileSync(join(work, 'matrix.f32'), Buffer.from(X.buffer));
writeFileSync(join(work, 'queries.f32'), Buffer.concat(Q.map((q) => Buffer.from(q.buffer))));

const numpy = spawnSync('python3', [join(root, 'bench', 'atomspace', 'numpy_search.py'), join(work, 'matrix.f32'), join(work, 'queries.f32'), String(D), String(K)], { encoding: 'utf8', maxBuffer: 64 * 2 ** 20 });
if (numpy.status !== 0) throw new Error(numpy.stderr);
const inProcess = JSON.parse(numpy.stdout) as { oracle: number[][] } & Record<string, number>;

const server = spawn(process.execPath, [join(root, 'dist', 'src', 'server', 'main.js')], {
  env: { ...process.env, PORT: String(PORT), HOST: '127.0.0.1', MODEL_REPOSITORY: '/nonexistent', LOAD_MODELS: 'none', LOG_LEVEL: 'warn', DATA_DIR: join(work, 'data'), APPROXIMATE_FROM: String(2 ** 31) },
  stdio: ['ignore', 'inherit', 'inherit'],
});
const { post, agent } = poster(PORT, 64);

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${PORT}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(name + '{') && l.includes('mode="exact"'));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

try {
  for (let i = 0; i < 300; i++) {
    if (await post('/atoms/similar', 'application/json', '{}').then(() => true, () => false)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const lines: string[] = [];
  for (let i = 0; i < N; i++) lines.push(importLine(i, X.subarray(i * D, (i + 1) * D)));
  const imported = await post('/atoms/import?group=5000', 'application/x-ndjson', lines.join(''));
  if (imported.status !== 200 || JSON.parse(imported.body).created !== N) throw new Error(`import: ${imported.status} ${imported.body.slice(0, 300)}`);

  const bodies = {
    numbers: Q.map((q) => JSON.stringify({ embedding: Array.from(q), space: 'bench', k: K, mode: 'exact' })),
    base64: Q.map((q) => JSON.stringify({ embedding: base64(q), space: 'bench', k: K, mode: 'exact' })),
  };
  let wrong = 0;
  const check = (qi: number, body: string) => {
    const ids = (JSON.parse(body) as { results: { atom: { id: number } }[] }).results.map((r) => r.atom.id - 1);
    if (ids.join() !== inProcess.oracle[qi]!.join()) wrong++;
  };
  for (const b of bodies.base64.slice(0, 20)) await post('/atoms/similar', 'application/json', b); // warm-up

  const single: Record<string, { p50_ms: number; p90_ms: number; server_mean_ms: number }> = {};
  for (const kind of ['numbers', 'base64'] as const) {
    const times: number[] = [];
    const [sum0, count0] = [await metric('atenspace_similarity_duration_seconds_sum'), await metric('atenspace_similarity_duration_seconds_count')];
    for (let round = 0; round < 3; round++) {
      for (let qi = 0; qi < Q.length; qi++) {
        const t0 = performance.now();
        const res = await post('/atoms/similar', 'application/json', bodies[kind][qi]!);
        times.push(performance.now() - t0);
        check(qi, res.body);
      }
    }
    const [sum1, count1] = [await metric('atenspace_similarity_duration_seconds_sum'), await metric('atenspace_similarity_duration_seconds_count')];
    single[kind] = { p50_ms: median(times), p90_ms: percentile(times, 0.9), server_mean_ms: ((sum1 - sum0) / (count1 - count0)) * 1000 };
  }

  const concurrent: Record<string, { qps: number; p50_ms: number }> = {};
  for (const kind of ['numbers', 'base64'] as const) {
    const times: number[] = [];
    const until = performance.now() + SECONDS * 1000;
    let done = 0;
    const client = async (c: number) => {
      for (let i = c; performance.now() < until; i += 16) {
        const qi = i % Q.length;
        const t0 = performance.now();
        const res = await post('/atoms/similar', 'application/json', bodies[kind][qi]!);
        times.push(performance.now() - t0);
        check(qi, res.body);
        done++;
      }
    };
    const t0 = performance.now();
    await Promise.all(Array.from({ length: 16 }, (_, c) => client(c)));
    concurrent[kind] = { qps: done / ((performance.now() - t0) / 1000), p50_ms: median(times) };
  }

  // Where a served query's time goes, measured here on the same data (no HTTP).
  const normalized = new Float32Array(X);
  for (let i = 0; i < N; i++) {
    const row = normalized.subarray(i * D, (i + 1) * D);
    const norm = Math.hypot(...row);
    for (let j = 0; j < D; j++) row[j]! /= norm;
  }
  const native: number[] = [];
  const native16: number[] = [];
  for (let round = 0; round < 3; round++) {
    for (const q of Q) {
      const t0 = performance.now();
      await topK({ matrix: normalized, rows: N, dim: D, queries: q, k: K });
      native.push(performance.now() - t0);
    }
    for (let b = 0; b + 16 <= Q.length; b += 16) {
      const qs = new Float32Array(16 * D);
      for (let i = 0; i < 16; i++) qs.set(Q[b + i]!, i * D);
      const t0 = performance.now();
      await topK({ matrix: normalized, rows: N, dim: D, queries: qs, k: K });
      native16.push(performance.now() - t0);
    }
  }
  const parse: Record<string, number> = {};
  for (const kind of ['numbers', 'base64'] as const) {
    const t0 = performance.now();
    for (let r = 0; r < 20; r++) for (const b of bodies[kind]) JSON.parse(b);
    parse[kind] = (performance.now() - t0) / (20 * Q.length);
  }

  const summary = {
    rows: N,
    d: D,
    k: K,
    in_process_numpy: Object.fromEntries(Object.entries(inProcess).filter(([key]) => key !== 'oracle')),
    served_single: single,
    served_16_clients: concurrent,
    wrong_answers: wrong,
    ratios: {
      single_p50_served_over_numpy_numbers: single.numbers!.p50_ms / inProcess.single_p50_ms!,
      single_p50_served_over_numpy_base64: single.base64!.p50_ms / inProcess.single_p50_ms!,
      qps16_served_over_numpy_batch_numbers: concurrent.numbers!.qps / inProcess.batch16_qps!,
      qps16_served_over_numpy_batch_base64: concurrent.base64!.qps / inProcess.batch16_qps!,
    },
    breakdown_in_this_process: {
      native_topk_one_query_p50_ms: median(native),
      native_topk_16_queries_p50_ms: median(native16),
      json_parse_body_ms: parse,
    },
  };
  console.log(JSON.stringify(summary, null, 1));
} finally {
  server.kill('SIGTERM');
  agent.destroy();
  await new Promise((r) => server.once('exit', r));
  rmSync(work, { recursive: true, force: true });
}
