// Nearest atoms equal a brute-force oracle (float64 dot products in plain JS over the raw
// vectors, independent of the native kernel): the same ids in the same order, the same scores.
// The HNSW index reaches recall@10 >= 0.95.
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { AtomSpace } from '../../src/atomspace/atomspace.js';
import { SimilaritySearch } from '../../src/atomspace/similarity.js';

function random(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

async function build(n: number, dim: number, seed: number) {
  const { atomspace } = await AtomSpace.open({ dataDir: mkdtempSync(join(tmpdir(), 'sim-')) });
  const rand = random(seed);
  const raw = new Map<number, Float64Array>();
  const items = Array.from({ length: n }, (_, i) => {
    const v = Array.from({ length: dim }, rand);
    return { v, node: { type: i % 3 === 0 ? 'PredicateNode' : 'ConceptNode', name: `n${i}`, embeddings: [{ space: 'rand', model: null, vector: v }] } };
  });
  for (let i = 0; i < items.length; i += 5000) {
    const results = await atomspace.addBatch(items.slice(i, i + 5000).map((x) => ({ node: x.node })));
    results.forEach((r, j) => raw.set(r.atom.id, Float64Array.from(items[i + j]!.v)));
  }
  return { atomspace, raw, rand };
}

/** The oracle: cosine of every vector with the query, in float64, sorted. */
function bruteForce(raw: Map<number, Float64Array>, query: number[], k: number, keep: (id: number) => boolean = () => true, threshold = -Infinity) {
  const qn = Math.sqrt(query.reduce((a, b) => a + b * b, 0));
  const scored: { id: number; score: number }[] = [];
  for (const [id, v] of raw) {
    if (!keep(id)) continue;
    let dot = 0;
    let norm = 0;
    for (let i = 0; i < v.length; i++) {
      dot += v[i]! * query[i]!;
      norm += v[i]! * v[i]!;
    }
    const score = dot / (Math.sqrt(norm) * qn);
    if (score >= threshold) scored.push({ id, score });
  }
  return scored.sort((a, b) => b.score - a.score || a.id - b.id).slice(0, k);
}

t.test('exact search equals the brute-force oracle: ids, order and scores', async (t) => {
  const { atomspace, raw, rand } = await build(3000, 48, 1);
  t.teardown(() => atomspace.close());
  const search = new SimilaritySearch(atomspace, { approximateFrom: Infinity });
  const queries = Array.from({ length: 40 }, () => Array.from({ length: 48 }, rand));
  // 40 at once: they are batched into a few native calls and must each get their own answer.
  const results = await Promise.all(queries.map((q, i) => search.search({ space: 'rand', vector: q, k: 10, ...(i % 2 ? { type: 'PredicateNode' } : {}) })));
  results.forEach((hits, i) => {
    const keep = i % 2 ? (id: number) => atomspace.get(id)!.type === 'PredicateNode' : undefined;
    const want = bruteForce(raw, queries[i]!, 10, keep);
    t.same(hits.map((h) => h.id), want.map((w) => w.id), `query ${i}: ids in order`);
    const worst = Math.max(...hits.map((h, j) => Math.abs(h.score - want[j]!.score)));
    t.ok(worst < 1e-5, `query ${i}: scores within 1e-5 (${worst.toExponential(1)})`);
  });

  const q = queries[0]!;
  const thresholded = await search.search({ space: 'rand', vector: q, k: 1000, threshold: 0.3 });
  t.same(thresholded.map((h) => h.id), bruteForce(raw, q, 1000, undefined, 0.3).map((w) => w.id), 'threshold keeps exactly the scores above it');
  t.ok(thresholded.every((h) => h.score >= 0.3));

  const self = [...raw.keys()][17]!;
  const own = await search.search({ space: 'rand', vector: Array.from(raw.get(self)!), k: 3 });
  t.equal(own[0]!.id, self, 'a vector finds its own atom first');
  t.ok(Math.abs(own[0]!.score - 1) < 1e-5);
  const excluded = await search.search({ space: 'rand', vector: Array.from(raw.get(self)!), k: 3, exclude: self });
  t.notOk(excluded.some((h) => h.id === self), 'exclude leaves the query atom out');
  t.equal(excluded.length, 3);

  await atomspace.remove(self, false);
  const afterRemove = await search.search({ space: 'rand', vector: Array.from(raw.get(self)!), k: 3 });
  t.notOk(afterRemove.some((h) => h.id === self), 'removed atoms are not found');
});

t.test('approximate (HNSW) search: recall@10 >= 0.95 on a random set', async (t) => {
  const { atomspace, raw, rand } = await build(20000, 32, 2);
  t.teardown(() => atomspace.close());
  const search = new SimilaritySearch(atomspace, { approximateFrom: 0 });
  let found = 0;
  const n = 100;
  for (let i = 0; i < n; i++) {
    const q = Array.from({ length: 32 }, rand);
    const approx = await search.search({ space: 'rand', vector: q, k: 10, mode: 'approximate' });
    const exact = new Set(bruteForce(raw, q, 10).map((w) => w.id));
    found += approx.filter((h) => exact.has(h.id)).length;
  }
  const recall = found / (n * 10);
  t.ok(recall >= 0.95, `recall@10 = ${recall.toFixed(3)}`);
  // Concurrent queries are searched as batches: each still gets its own answer, the one it gets alone.
  const queries = Array.from({ length: 40 }, () => Array.from({ length: 32 }, rand));
  const together = await Promise.all(queries.map((q, i) => search.search({ space: 'rand', vector: q, k: 10, mode: 'approximate', ...(i % 3 === 0 ? { type: 'PredicateNode' } : {}) })));
  for (const [i, q] of queries.entries()) {
    const alone = await search.search({ space: 'rand', vector: q, k: 10, mode: 'approximate', ...(i % 3 === 0 ? { type: 'PredicateNode' } : {}) });
    t.same(together[i]!.map((h) => h.id), alone.map((h) => h.id), `query ${i}: the same answer in a batch as alone`);
    if (i % 3 === 0) t.ok(alone.every((h) => atomspace.get(h.id)!.type === 'PredicateNode'), `query ${i}: the type filter holds`);
  }
});

t.test('auto mode searches exactly until the index is built, then uses it', async (t) => {
  const { atomspace, raw, rand } = await build(2000, 16, 3);
  t.teardown(() => atomspace.close());
  const search = new SimilaritySearch(atomspace, { approximateFrom: 1000 });
  const q = Array.from({ length: 16 }, rand);
  const first = await search.search({ space: 'rand', vector: q, k: 5 });
  t.same(first.map((h) => h.id), bruteForce(raw, q, 5).map((w) => w.id), 'exact while the index builds in the background');
  await search.buildIndex('rand');
  t.ok(search.indexReady('rand'));
  const later = await search.search({ space: 'rand', vector: q, k: 5 });
  t.equal(later.length, 5);
  // Atoms added after the build are found too (the index is kept in step).
  const added = (await atomspace.addNode({ type: 'ConceptNode', name: 'late', embeddings: [{ space: 'rand', model: null, vector: q }] })).atom.id;
  const withNew = await search.search({ space: 'rand', vector: q, k: 1 });
  t.equal(withNew[0]!.id, added);
});
