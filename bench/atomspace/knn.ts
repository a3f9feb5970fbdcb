/**
 * AtomSpace similarity benchmark: inserts with durability on, exact k-NN (one query and 32
 * concurrent), and the HNSW index's QPS at recall@10 >= 0.95.
 *
 * Usage: node dist/bench/atomspace/knn.js [N=100000] [D=384] [APPROX_N=0]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { AtomSpace } from '../../src/atomspace/atomspace.js';
import { SimilaritySearch } from '../../src/atomspace/similarity.js';
import { configureRuntime } from '../../src/runtime/index.js';

const [nArg, dArg, approxArg] = process.argv.slice(2);
const N = Number(nArg ?? 100_000);
const D = Number(dArg ?? 384);
const APPROX_N = Number(approxArg ?? 0);
configureRuntime({ workers: 2 });

function random(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

/**
 * Random vectors: 'uniform' in the cube (the worst case for HNSW: no structure at all), or
 * 'clustered' around 1000 centres, closer to what sentence embeddings look like.
 */
function generator(kind: 'uniform' | 'clustered', d: number, seed: number) {
  const rand = random(seed);
  const centres = Array.from({ length: 1000 }, () => Float32Array.from({ length: d }, rand));
  let i = 0;
  return () => {
    const v = new Float32Array(d);
    const c = centres[i++ % centres.length]!;
    for (let k = 0; k < d; k++) v[k] = kind === 'uniform' ? rand() : c[k]! + 0.15 * rand();
    return v;
  };
}

async function fill(atomspace: AtomSpace, n: number, d: number, seed: number, batch = 2000, kind: 'uniform' | 'clustered' = 'uniform') {
  const next = generator(kind, d, seed);
  const t0 = performance.now();
  for (let i = 0; i < n; i += batch) {
    const items = [];
    for (let j = i; j < Math.min(n, i + batch); j++) {
      const v = next();
      items.push({ node: { type: 'ConceptNode', name: `n${j}`, embeddings: [{ space: 'bench', model: null, vector: v }] } });
    }
    await atomspace.addBatch(items);
  }
  return (performance.now() - t0) / 1000;
}

const results: Record<string, unknown> = { n: N, d: D };
const dir = mkdtempSync(join(tmpdir(), 'knn-bench-'));
const { atomspace } = await AtomSpace.open({ dataDir: dir, snapshotBytes: 2 ** 40 });

// Inserts, durable: each batch of 2000 is acknowledged after one fdatasync.
const insertSeconds = await fill(atomspace, N, D, 1);
results.insert = { atoms: N, seconds: insertSeconds, per_second: N / insertSeconds, batch: 2000 };
// Single durable inserts, one at a time (each waits for its own fsync).
const single = 300;
const rand = random(9);
let t0 = performance.now();
for (let i = 0; i < single; i++) {
  await atomspace.addNode({ type: 'ConceptNode', name: `single${i}`, embeddings: [{ space: 'bench', model: null, vector: Array.from({ length: D }, rand) }] });
}
results.insert_single = { per_second: single / ((performance.now() - t0) / 1000) };
// 64 concurrent single inserts share group commits.
t0 = performance.now();
await Promise.all(Array.from({ length: 640 }, (_, i) => atomspace.addNode({ type: 'ConceptNode', name: `conc${i}`, embeddings: [{ space: 'bench', model: null, vector: Array.from({ length: D }, rand) }] })));
results.insert_concurrent = { per_second: 640 / ((performance.now() - t0) / 1000), concurrency: 640 };

const search = new SimilaritySearch(atomspace, { approximateFrom: Infinity });
const rows = atomspace.space('bench')!.rows;
const bytes = rows * D * 4;
const queries = Array.from({ length: 64 }, () => Array.from({ length: D }, rand));
for (let i = 0; i < 5; i++) await search.search({ space: 'bench', vector: queries[i]!, k: 10 });
const one: number[] = [];
for (const q of queries.slice(0, 40)) {
  const t = performance.now();
  await search.search({ space: 'bench', vector: q, k: 10 });
  one.push(performance.now() - t);
}
results.exact_one = { rows, median_ms: median(one), gbps: bytes / (median(one) / 1000) / 1e9 };
const rounds: number[] = [];
for (let r = 0; r < 5; r++) {
  const t = performance.now();
  await Promise.all(queries.slice(0, 32).map((q) => search.search({ space: 'bench', vector: q, k: 10 })));
  rounds.push(performance.now() - t);
}
const m32 = median(rounds);
results.exact_32 = { median_ms_for_32: m32, qps: 32 / (m32 / 1000), effective_gbps: (32 * bytes) / (m32 / 1000) / 1e9 };
await atomspace.close();
rmSync(dir, { recursive: true, force: true });

if (APPROX_N > 0) {
  const adir = mkdtempSync(join(tmpdir(), 'ann-bench-'));
  const { atomspace: big } = await AtomSpace.open({ dataDir: adir, snapshotBytes: 2 ** 40 });
  const fillSeconds = await fill(big, APPROX_N, D, 2, 5000, 'clustered');
  const ann = new SimilaritySearch(big, { approximateFrom: 0 });
  const exact = new SimilaritySearch(big, { approximateFrom: Infinity });
  const nextQuery = generator('clustered', D, 2); // same centres, fresh noise
  for (let i = 0; i < 7; i++) nextQuery();
  const qs = Array.from({ length: 200 }, () => Array.from(nextQuery()));
  t0 = performance.now();
  await ann.buildIndex('bench'); // on a worker thread
  const buildSeconds = (performance.now() - t0) / 1000;
  let found = 0;
  const times: number[] = [];
  for (const q of qs) {
    const t = performance.now();
    const a = await ann.search({ space: 'bench', vector: q, k: 10, mode: 'approximate' });
    times.push(performance.now() - t);
    const e = new Set((await exact.search({ space: 'bench', vector: q, k: 10, mode: 'exact' })).map((h) => h.id));
    found += a.filter((h) => e.has(h.id)).length;
  }
  const total = times.reduce((a, b) => a + b, 0) / 1000;
  results.approximate = { n: APPROX_N, data: 'clustered (1000 centres, noise 0.15)', hnsw: 'M=16, efConstruction=128, ef=128', fill_seconds: fillSeconds, index_build_seconds: buildSeconds, recall_at_10: found / (qs.length * 10), qps: qs.length / total, median_ms: median(times) };
  await big.close();
  rmSync(adir, { recursive: true, force: true });
}
console.log(JSON.stringify(results, null, 1));
