/**
 * Served approximate search at scale: the real server (dist/src/server/main.js), N clustered
 * D-dimensional vectors imported over HTTP (base64 NDJSON), the HNSW index built on a worker
 * thread (the first `mode: "approximate"` query waits for it), then recall@10 of 200 queries
 * against the server's exact answers and QPS with 16 concurrent clients for SECONDS.
 *
 * Usage: node dist/bench/atomspace/hnsw.js [N=1000000] [D=384] [SECONDS=10] [EF=128]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { base64, clustered, importLine } from './vectors.js';
import { poster } from './http-post.js';

const [nArg, dArg, secondsArg, efArg] = process.argv.slice(2);
const N = Number(nArg ?? 1_000_000);
const D = Number(dArg ?? 384);
const SECONDS = Number(secondsArg ?? 10);
const EF = Number(efArg ?? 128);
const root = join(fileURLToPath(import.meta.url), '..', '..', '..', '..');
const work = mkdtempSync(join(process.env.BENCH_DATA ?? tmpdir(), 'hnsw-bench-'));
const PORT = 17_000 + (process.pid % 1000);
const server = spawn(process.execPath, [join(root, 'dist', 'src', 'server', 'main.js')], {
  env: { ...process.env, PORT: String(PORT), HOST: '127.0.0.1', MODEL_REPOSITORY: '/nonexistent', LOAD_MODELS: 'none', LOG_LEVEL: 'warn', DATA_DIR: join(work, 'data'), APPROXIMATE_FROM: '100000', HNSW_EXPANSION_SEARCH: String(EF) },
  stdio: ['ignore', 'inherit', 'inherit'],
});
const { post, agent } = poster(PORT, 64);
const ids = (body: string) => (JSON.parse(body) as { results: { atom: { id: number } }[] }).results.map((r) => r.atom.id);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

try {
  for (let i = 0; i < 300; i++) {
    if (await post('/atoms/similar', 'application/json', '{}').then(() => true, () => false)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  let t0 = performance.now();
  const next = clustered(D, 1);
  const v = new Float32Array(D);
  async function* lines() {
    let piece = '';
    for (let i = 0; i < N; i++) {
      piece += importLine(i, next(v));
      if (piece.length > 1 << 20) {
        yield piece;
        piece = '';
      }
    }
    yield piece;
  }
  const imported = await post('/atoms/import?group=1000', 'application/x-ndjson', lines());
  if (imported.status !== 200) throw new Error(`import: ${imported.status} ${imported.body.slice(0, 300)}`);
  const importSeconds = (performance.now() - t0) / 1000;

  const nextQuery = clustered(D, 1); // the same centres, fresh noise: skip the first N draws' order by using other noise
  for (let i = 0; i < 7; i++) nextQuery(v);
  const queries = Array.from({ length: 200 }, () => base64(new Float32Array(nextQuery(new Float32Array(D)).map((x, j) => x + 0.05 * Math.sin(j * 7.3 + 1)))));
  const body = (q: string, mode: string) => JSON.stringify({ embedding: q, space: 'bench', k: 10, mode });

  t0 = performance.now();
  const first = await post('/atoms/similar', 'application/json', body(queries[0]!, 'approximate')); // waits for the index
  if (first.status !== 200) throw new Error(`approximate: ${first.status} ${first.body.slice(0, 300)}`);
  const buildSeconds = (performance.now() - t0) / 1000;

  let found = 0;
  const single: number[] = [];
  for (const q of queries) {
    const exact = new Set(ids((await post('/atoms/similar', 'application/json', body(q, 'exact'))).body));
    const t = performance.now();
    const approx = ids((await post('/atoms/similar', 'application/json', body(q, 'approximate'))).body);
    single.push(performance.now() - t);
    found += approx.filter((id) => exact.has(id)).length;
  }
  const times: number[] = [];
  let done = 0;
  const until = performance.now() + SECONDS * 1000;
  t0 = performance.now();
  await Promise.all(
    Array.from({ length: 16 }, async (_, c) => {
      for (let i = c; performance.now() < until; i += 16) {
        const t = performance.now();
        const res = await post('/atoms/similar', 'application/json', body(queries[i % queries.length]!, 'approximate'));
        if (res.status !== 200) throw new Error(res.body);
        times.push(performance.now() - t);
        done++;
      }
    }),
  );
  const qps = done / ((performance.now() - t0) / 1000);
  console.log(
    JSON.stringify(
      {
        n: N,
        d: D,
        data: 'clustered (1000 centres, noise 0.15); queries: fresh noise',
        hnsw: `M=16, efConstruction=128, ef=${EF}`,
        import_seconds: importSeconds,
        import_per_second: N / importSeconds,
        index_build_seconds: buildSeconds,
        recall_at_10: found / (queries.length * 10),
        one_client_p50_ms: median(single),
        clients16: { qps, p50_ms: median(times) },
      },
      null,
      1,
    ),
  );
} finally {
  server.kill('SIGTERM');
  agent.destroy();
  await new Promise((r) => server.once('exit', r));
  rmSync(work, { recursive: true, force: true });
}
