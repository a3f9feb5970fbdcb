// A snapshot is written off the event loop while writes go on: the file holds exactly the state
// of the instant it was taken (read back record by record and compared with a copy made then),
// the writes made meanwhile land in the next journal, and a reopen recovers the final state.
// The event loop keeps answering while a large snapshot is written. A refused write takes the
// embedding space it created with it.
import t, { type Test } from 'tap';
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';

import { type Atom, AtomSpace } from '../../src/atomspace/atomspace.js';
import { decodeRecords } from '../../src/atomspace/journal.js';

function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), 'snapshot-conc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function vector(i: number, dim: number): number[] {
  return Array.from({ length: dim }, (_, j) => Math.sin(i * 7.1 + j * 1.3) + (j === i % dim ? 2 : 0));
}

interface State {
  atoms: Map<number, { type: string; name?: string; outgoing?: number[]; tv: Atom['tv']; av: Atom['av'] }>;
  vectors: Map<string, Float32Array>;
}

/** Everything the AtomSpace holds now: atoms and (normalised, as stored) vectors. */
function stateOf(as: AtomSpace): State {
  const atoms: State['atoms'] = new Map();
  const vectors: State['vectors'] = new Map();
  for (const a of as.find({ limit: 1_000_000 }).atoms) {
    atoms.set(a.id, { type: a.type, ...(a.name !== undefined ? { name: a.name } : {}), ...(a.outgoing ? { outgoing: a.outgoing } : {}), tv: a.tv, av: a.av });
    for (const s of as.spacesOf(a.id)) vectors.set(`${s}/${a.id}`, as.embedding(a.id, s)!);
  }
  return { atoms, vectors };
}

/** The state a snapshot file holds, read straight from its records. */
function stateOfSnapshot(path: string): State {
  const data = readFileSync(path);
  const { records, validBytes } = decodeRecords(data);
  t.equal(validBytes, data.length, 'every byte of the snapshot is a valid record');
  t.same(records.at(-1)?.json, { end: true }, 'the snapshot is complete');
  const atoms: State['atoms'] = new Map();
  const vectors: State['vectors'] = new Map();
  for (const r of records.slice(0, -1)) {
    const j = r.json as { op: string; id: number; type: string; name?: string; outgoing?: number[]; tv: Atom['tv']; av: Atom['av']; space: string };
    if (j.op === 'node' || j.op === 'link') atoms.set(j.id, { type: j.type, ...(j.name !== undefined ? { name: j.name } : {}), ...(j.outgoing ? { outgoing: j.outgoing } : {}), tv: j.tv, av: j.av });
    else if (j.op === 'embed') vectors.set(`${j.space}/${j.id}`, new Float32Array(r.bytes!.slice().buffer));
  }
  return { atoms, vectors };
}

function sameState(t: Test, got: State, want: State, what: string): void {
  t.equal(got.atoms.size, want.atoms.size, `${what}: as many atoms`);
  const atomDiffs = [...want.atoms].filter(([id, a]) => JSON.stringify(got.atoms.get(id)) !== JSON.stringify(a)).slice(0, 5);
  t.same(atomDiffs, [], `${what}: the same atoms`);
  t.equal(got.vectors.size, want.vectors.size, `${what}: as many vectors`);
  const vectorDiffs = [...want.vectors].filter(([key, v]) => {
    const g = got.vectors.get(key);
    return !g || g.length !== v.length || g.some((x, i) => x !== v[i]);
  });
  t.same(vectorDiffs.map(([key]) => key).slice(0, 5), [], `${what}: the same vectors, bit for bit`);
}

t.test('a snapshot holds the state of the instant it was taken, whatever is written meanwhile', async (t) => {
  const dir = scratch();
  const { atomspace: as } = await AtomSpace.open({ dataDir: dir });
  const dim = 32;
  const ids: number[] = [];
  for (let i = 0; i < 20_000; i += 2000) {
    const results = await as.addBatch(Array.from({ length: 2000 }, (_, j) => ({ node: { type: 'ConceptNode', name: `n${i + j}`, embeddings: [{ space: 's', model: null, vector: vector(i + j, dim) }] } })));
    ids.push(...results.map((r) => r.atom.id));
  }
  const links = await as.addBatch(Array.from({ length: 500 }, (_, i) => ({ link: { type: 'ListLink', outgoing: [ids[i]!, ids[i + 1]!] } })));
  await as.update(ids[3]!, { tv: { strength: 0.5, confidence: 0.5 } });
  const before = stateOf(as);

  const snapshot = as.snapshot();
  t.ok(as.snapshotting, 'the snapshot runs in the background');
  // Changes to atoms early, late and past the end of the id order, while it is being written.
  const writes: Promise<unknown>[] = [];
  for (let round = 0; round < 20; round++) {
    writes.push(as.update(ids[round]!, { tv: { strength: round / 20, confidence: 1 }, av: { sti: round } }));
    writes.push(as.update(ids[19_999 - round]!, { av: { lti: -round } }));
    writes.push(as.setEmbedding(ids[100 + round]!, { space: 's', model: null, vector: vector(50_000 + round, dim) }));
    writes.push(as.setEmbedding(ids[200 + round]!, { space: 'other', model: null, vector: [1, round, 2] }));
    writes.push(as.addNode({ type: 'PredicateNode', name: `late${round}`, embeddings: [{ space: 's', model: null, vector: vector(90_000 + round, dim) }] }));
    writes.push(as.remove(ids[300 + round]!, true)); // a link-free node
    writes.push(as.remove(links[round]!.atom.id, false));
    writes.push(as.remove(ids[19_000 + round]!, true));
    await new Promise((r) => setImmediate(r));
  }
  writes.push(as.remove(ids[1]!, true)); // takes links 0 and 1 with it
  await Promise.all(writes);
  await snapshot;
  const after = stateOf(as);

  const snapshots = readdirSync(dir).filter((f) => /^snapshot-\d+\.bin$/.test(f));
  t.equal(snapshots.length, 1, 'one snapshot');
  sameState(t, stateOfSnapshot(join(dir, snapshots[0]!)), before, 'the snapshot file');
  t.equal(readdirSync(dir).filter((f) => f.startsWith('journal-')).length, 1, 'the journals it covers are deleted');
  await as.close();

  const { atomspace: reopened } = await AtomSpace.open({ dataDir: dir });
  t.teardown(() => reopened.close());
  sameState(t, stateOf(reopened), after, 'snapshot + the next journal after a reopen');
});

t.test('the event loop keeps turning while a large snapshot is written', async (t) => {
  const dir = scratch();
  const { atomspace: as } = await AtomSpace.open({ dataDir: dir });
  t.teardown(() => as.close());
  const dim = 384;
  const v = new Float32Array(dim).map((_, i) => Math.cos(i));
  for (let i = 0; i < 60_000; i += 5000) {
    await as.addBatch(Array.from({ length: 5000 }, (_, j) => ({ node: { type: 'ConceptNode', name: `n${i + j}`, embeddings: [{ space: 'big', model: null, vector: v.map((x, k) => (k === (i + j) % dim ? x + 1 : x)) }] } })));
  }
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const started = performance.now();
  const snapshot = as.snapshot();
  let writes = 0;
  while (as.snapshotting) {
    await as.addNode({ type: 'ConceptNode', name: `during${writes++}` });
  }
  await snapshot;
  delay.disable();
  const seconds = (performance.now() - started) / 1000;
  t.comment(`snapshot of 60k x 384 (${(60_000 * dim * 4) / 2 ** 20} MiB of vectors): ${seconds.toFixed(2)} s, ${writes} writes acknowledged meanwhile, event loop max delay ${(delay.max / 1e6).toFixed(1)} ms`);
  t.ok(writes >= 2, 'writes were acknowledged while it was written');
  // Generous for a shared 2-core machine; encoding on the loop took ~1 s here.
  t.ok(delay.max / 1e6 < 200, `event loop max delay ${(delay.max / 1e6).toFixed(1)} ms`);
});

t.test('an embedding space created by a refused write goes with it', async (t) => {
  const dir = scratch();
  const { atomspace: as } = await AtomSpace.open({ dataDir: dir });
  t.teardown(() => as.close());
  await as.addNode({ type: 'ConceptNode', name: 'kept', embeddings: [{ space: 'old', model: null, vector: [1, 2] }] });
  // The next journal is /dev/full: every write after the rotation fails with ENOSPC.
  const gen = Math.max(...readdirSync(dir).filter((f) => f.startsWith('journal-')).map((f) => Number(/\d+/.exec(f)![0])));
  const full = join(dir, `journal-${gen + 1}.log`);
  symlinkSync('/dev/full', full);
  await as.snapshot();
  await t.rejects(as.addNode({ type: 'ConceptNode', name: 'refused', embeddings: [{ space: 'fresh', model: null, vector: [1, 2, 3] }] }), { code: 'STORAGE_UNAVAILABLE' });
  t.equal(as.space('fresh'), undefined, 'the space is gone');
  t.same(as.spaces().map((s) => s.name), ['old']);
  await t.rejects(as.setEmbedding(1, { space: 'old', model: null, vector: [3, 4] }), { code: 'STORAGE_UNAVAILABLE' });
  t.ok(as.space('old'), 'a space that was there before stays');
  unlinkSync(full);
  const added = await as.addNode({ type: 'ConceptNode', name: 'later', embeddings: [{ space: 'fresh', model: null, vector: [1, 2, 3, 4, 5] }] });
  t.equal(as.space('fresh')!.dim, 5, 'the name can be used again, with another dimension');
  t.ok(as.embedding(added.atom.id, 'fresh'));
});
