// Acknowledged writes survive: a torn or corrupt journal tail is cut off, never misread;
// snapshots replace old journals; a server killed with SIGKILL right after acknowledging
// writes comes back with every acknowledged atom and embedding.
import t from 'tap';
import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, statSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { AtomSpace } from '../../src/atomspace/atomspace.js';
import { encodeRecord } from '../../src/atomspace/journal.js';
import { repoRoot } from '../helpers/python-fixtures.js';
import { serverFixtures } from '../helpers/server.js';

const dataDir = () => mkdtempSync(join(tmpdir(), 'durable-'));
const journalOf = (dir: string) => join(dir, readdirSync(dir).filter((f) => f.startsWith('journal-')).sort().at(-1)!);

t.test('a torn tail record is detected and dropped', async (t) => {
  const dir = dataDir();
  const first = (await AtomSpace.open({ dataDir: dir })).atomspace;
  const a = (await first.addNode({ type: 'ConceptNode', name: 'a', embeddings: [{ space: 's', model: null, vector: [1, 2, 3] }] })).atom.id;
  const b = (await first.addNode({ type: 'ConceptNode', name: 'b' })).atom.id;
  await first.close();
  const journal = journalOf(dir);
  const goodSize = statSync(journal).size;
  // Half of a well-formed record: what a crash in the middle of a write leaves.
  const record = encodeRecord({ json: { op: 'node', id: 99, type: 'ConceptNode', name: 'torn', tv: { strength: 1, confidence: 0 } } });
  appendFileSync(journal, record.subarray(0, record.length - 7));
  const { atomspace, recovered } = await AtomSpace.open({ dataDir: dir });
  t.equal(recovered.truncatedBytes, record.length - 7, 'the torn bytes were cut');
  t.equal(statSync(journal).size, goodSize, 'the file ends at the last good record');
  t.ok(atomspace.get(a) && atomspace.get(b), 'acknowledged atoms are there');
  t.equal(atomspace.find({ name: 'torn' }).total, 0, 'the torn record is not read');
  t.same(Array.from(atomspace.embedding(a, 's')!).map((v) => +v.toFixed(6)), [1, 2, 3].map((v) => +(v / Math.sqrt(14)).toFixed(6)), 'the embedding is back');
  const c = (await atomspace.addNode({ type: 'ConceptNode', name: 'c' })).atom.id;
  await atomspace.close();
  const reopened = (await AtomSpace.open({ dataDir: dir })).atomspace;
  t.ok(reopened.get(c), 'writes after a repair are durable too');
  await reopened.close();
});

t.test('a record whose checksum fails is dropped with everything after it', async (t) => {
  const dir = dataDir();
  const first = (await AtomSpace.open({ dataDir: dir })).atomspace;
  await first.addNode({ type: 'ConceptNode', name: 'keep' });
  await first.close();
  const journal = journalOf(dir);
  const good = readFileSync(journal);
  const bad = encodeRecord({ json: { op: 'node', id: 50, type: 'ConceptNode', name: 'flipped', tv: { strength: 1, confidence: 0 } } });
  bad[bad.length - 3] = bad[bad.length - 3]! ^ 0x20; // a flipped bit inside the payload
  writeFileSync(journal, Buffer.concat([good, bad, encodeRecord({ json: { op: 'node', id: 51, type: 'ConceptNode', name: 'after', tv: { strength: 1, confidence: 0 } } })]));
  const { atomspace, recovered } = await AtomSpace.open({ dataDir: dir });
  t.ok(recovered.truncatedBytes > 0);
  t.equal(atomspace.find({ name: 'keep' }).total, 1);
  t.equal(atomspace.find({ name: 'flipped' }).total, 0);
  t.equal(atomspace.find({ name: 'after' }).total, 0, 'nothing past a bad record is trusted');
  await atomspace.close();
});

t.test('snapshots replace old journals and recover everything', async (t) => {
  const dir = dataDir();
  const first = (await AtomSpace.open({ dataDir: dir, snapshotBytes: 20_000 })).atomspace;
  const ids: number[] = [];
  for (let i = 0; i < 300; i++) {
    ids.push((await first.addNode({ type: 'ConceptNode', name: `n${i}`, embeddings: [{ space: 's', model: null, vector: [i + 1, 1, 0, 0] }] })).atom.id);
  }
  await first.addLink({ type: 'ListLink', outgoing: [ids[0]!, ids[1]!] });
  await first.remove(ids[5]!, false);
  await first.update(ids[6]!, { tv: { strength: 0.25, confidence: 0.75 } });
  await first.snapshot();
  await first.close();
  const files = readdirSync(dir);
  t.ok(files.some((f) => f.startsWith('snapshot-')), 'a snapshot exists');
  t.ok(files.filter((f) => f.startsWith('journal-')).length <= 2, `old journals were dropped (${files.join(', ')})`);
  const { atomspace } = await AtomSpace.open({ dataDir: dir });
  t.equal(atomspace.find({ type: 'ConceptNode', limit: 1000 }).total, 299);
  t.equal(atomspace.get(ids[5]!), undefined, 'the removed atom stays removed');
  t.same(atomspace.get(ids[6]!)!.tv, { strength: 0.25, confidence: 0.75 });
  t.equal(atomspace.find({ type: 'ListLink' }).total, 1);
  t.equal(atomspace.space('s')!.size, 299, 'every embedding is back');
  const next = (await atomspace.addNode({ type: 'ConceptNode', name: 'fresh' })).atom.id;
  t.ok(next > Math.max(...ids) + 1, 'ids keep increasing after recovery');
  await atomspace.close();
});

t.test('kill -9 right after acknowledged writes: every acknowledged atom and embedding survives', async (t) => {
  const dir = dataDir();
  const port = 19000 + (process.pid % 1000);
  const child = spawn(process.execPath, [...process.execArgv, join(repoRoot, 'src', 'server', 'main.ts'), '--port', String(port), '--host', '127.0.0.1'], {
    env: { ...process.env, GRPC_PORT: '0', MODEL_REPOSITORY: join(serverFixtures(), 'models'), LOAD_MODELS: 'demo-embedder', DATA_DIR: dir, LOG_LEVEL: 'warn' },
    stdio: 'ignore',
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 600; i++) {
    if (await fetch(`${base}/health/ready`).then((r) => r.status === 200, () => false)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const acked = new Map<number, string>();
  const post = (body: object) =>
    fetch(`${base}/atoms`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then(async (r) => {
      if (r.status === 201) {
        const atom = (await r.json()) as { id: number; name: string };
        acked.set(atom.id, atom.name);
      }
    }, () => undefined);
  // Writes keep flowing; the kill lands while some are in flight.
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < 300; i++) {
    inFlight.push(post({ type: 'ConceptNode', name: `text-${i}`, text: `sentence number ${i}`, model: 'demo-embedder' }));
    inFlight.push(post({ type: 'ConceptNode', name: `vec-${i}`, embedding: [i + 1, 2, 3, 4] }));
  }
  // Kill as soon as some writes are acknowledged, with most still in flight.
  const started = Date.now();
  while (acked.size < 50 && Date.now() - started < 30_000) await new Promise((r) => setImmediate(r));
  child.kill('SIGKILL');
  const ackedAtKill = new Map(acked);
  await exited;
  await Promise.allSettled(inFlight);
  t.ok(ackedAtKill.size >= 50, `${ackedAtKill.size} writes acknowledged before the kill`);
  t.ok(ackedAtKill.size < 600, 'the kill landed while writes were in flight');

  const { atomspace } = await AtomSpace.open({ dataDir: dir });
  t.teardown(() => atomspace.close());
  const missing = [...ackedAtKill].filter(([id, name]) => atomspace.get(id)?.name !== name);
  t.same(missing, [], 'every acknowledged atom is back');
  const withoutVector = [...ackedAtKill].filter(([id, name]) => !atomspace.embedding(id, name.startsWith('text-') ? 'demo-embedder' : 'default'));
  t.same(withoutVector, [], 'with its embedding');
});

t.test('kill -9 while a snapshot is being written (on its worker thread): every acknowledged atom survives', async (t) => {
  const dir = dataDir();
  const port = 20000 + (process.pid % 1000);
  const child = spawn(process.execPath, [...process.execArgv, join(repoRoot, 'src', 'server', 'main.ts'), '--port', String(port), '--host', '127.0.0.1'], {
    env: { ...process.env, GRPC_PORT: '0', MODEL_REPOSITORY: join(serverFixtures(), 'models'), LOAD_MODELS: 'none', DATA_DIR: dir, LOG_LEVEL: 'warn', SNAPSHOT_BYTES: '1MiB' },
    stdio: 'ignore',
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 600; i++) {
    if (await fetch(`${base}/health/ready`).then((r) => r.status === 200, () => false)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const acked = new Map<number, { name: string; first: number }>();
  let batch = 0;
  const post = async () => {
    const b = batch++;
    const atoms = Array.from({ length: 250 }, (_, i) => ({ type: 'ConceptNode', name: `b${b}-${i}`, embedding: Array.from({ length: 64 }, (_, j) => Math.sin(b * 7 + i + j) + 2), space: 's' }));
    const res = await fetch(`${base}/atoms/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ atoms }) }).catch(() => undefined);
    if (res?.status !== 200) return false;
    const body = (await res.json()) as { atoms: { atom: { id: number; name: string } }[] };
    body.atoms.forEach((a, i) => acked.set(a.atom.id, { name: a.atom.name, first: atoms[i]!.embedding[0]! }));
    return true;
  };
  // Kill the moment a snapshot file is being written (the journal passes 1 MiB every ~15 batches).
  let killedDuring: string | undefined;
  const watcher = watch(dir, (_event, file) => {
    if (killedDuring || !file || !/^snapshot-\d+\.bin\.tmp$/.test(file) || acked.size < 10_000) return;
    killedDuring = file;
    child.kill('SIGKILL');
  });
  t.teardown(() => watcher.close());
  const writers = Array.from({ length: 2 }, async () => {
    while (!killedDuring && batch < 2000) if (!(await post())) break;
  });
  await Promise.all(writers);
  await exited;
  t.ok(killedDuring, `killed while ${killedDuring} was being written`);
  t.ok(acked.size >= 10_000, `${acked.size} atoms acknowledged before the kill`);

  const { atomspace } = await AtomSpace.open({ dataDir: dir });
  t.teardown(() => atomspace.close());
  const missing = [...acked].filter(([id, a]) => atomspace.get(id)?.name !== a.name);
  t.same(missing.slice(0, 5), [], 'every acknowledged atom is back');
  const wrongVector = [...acked].filter(([id]) => atomspace.embedding(id, 's')?.length !== 64);
  t.same(wrongVector.slice(0, 5), [], 'with its vector');
  await atomspace.snapshot();
  t.ok(readdirSync(dir).some((f) => /^snapshot-\d+\.bin$/.test(f)), 'a snapshot can be written after the crash');
});
