// A data directory that cannot be written (full, read-only) turns AtomSpace writes into 503
// STORAGE_UNAVAILABLE: the refused change is undone in memory (never visible, never on disk
// after a restart), acknowledged data is never lost, reads keep working, snapshots that fail
// delete nothing, and once the directory can be written again, writes succeed without a restart.
//
// The faults are the kernel's: a small tmpfs filled to ENOSPC (blocks or inodes) and remounted
// read-only (EROFS). Where mounting is not allowed, /dev/full stands in for the full disk (a
// real ENOSPC from the kernel too) and the read-only cases run with that weaker fault; the two
// checks that need a real file system (a partial write, starting read-only) say so and stop.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, statSync, symlinkSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { AtomSpace, type AtomSpaceError } from '../../src/atomspace/atomspace.js';
import type { App } from '../../src/server/app.js';
import { testApp } from '../helpers/server.js';

// Nothing below may end as an unhandled rejection (a crash in production).
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
process.on('unhandledRejection', onUnhandled);
t.teardown(() => {
  process.off('unhandledRejection', onUnhandled);
});

/** A directory on the ordinary file system, removed after the test. */
function scratch(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'storage-faults-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const journals = (dir: string) => readdirSync(dir).filter((f) => /^journal-\d+\.log$/.test(f)).sort((a, b) => Number(a.match(/\d+/)![0]) - Number(b.match(/\d+/)![0]));
const currentGeneration = (dir: string) => Number(journals(dir).at(-1)!.match(/\d+/)![0]);

/**
 * A data directory whose storage the test can break. On a tmpfs (`real`): `fill` takes every
 * free block, `fillInodes` every free inode, `readOnly` remounts it read-only. Without mount
 * privilege: `fill` moves the journal onto /dev/full (every write: ENOSPC).
 */
class FaultyDir {
  readonly data: string;
  #fillers: string[] = [];
  #devFull: string | undefined;

  private constructor(
    readonly mount: string,
    readonly real: boolean,
  ) {
    this.data = join(mount, 'data');
    mkdirSync(this.data);
  }

  static create(t: Test, options = 'size=512k'): FaultyDir {
    const mount = mkdtempSync(join(tmpdir(), 'storage-faults-'));
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', mount], { encoding: 'utf8' });
    if (mounted.status !== 0) t.comment(`cannot mount a tmpfs (${mounted.stderr.trim().split('\n')[0] || mounted.error?.message}): /dev/full stands in for the full disk`);
    t.teardown(() => {
      if (mounted.status === 0) spawnSync('umount', ['-l', mount]);
      rmSync(mount, { recursive: true, force: true });
    });
    return new FaultyDir(mount, mounted.status === 0);
  }

  /**
   * Fill the disk. `rotate` first moves the AtomSpace to a fresh, empty journal (a snapshot):
   * a file system fills by blocks, and a journal's last block has room for small records even
   * on a full disk, so only an empty journal makes every later write fail.
   */
  async fill(atomspace: AtomSpace, { rotate = true } = {}): Promise<void> {
    if (!this.real) {
      this.#devFull = join(this.data, `journal-${currentGeneration(this.data) + 1}.log`);
      symlinkSync('/dev/full', this.#devFull);
      await atomspace.snapshot();
      return;
    }
    if (rotate) await atomspace.snapshot();
    const path = join(this.mount, `filler-${this.#fillers.length}`);
    this.#fillers.push(path);
    const fd = openSync(path, 'w');
    const chunk = Buffer.alloc(64 * 1024, 7);
    try {
      for (;;) writeSync(fd, chunk);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
    } finally {
      closeSync(fd);
    }
  }

  /** Take every free inode (a tmpfs mounted with nr_inodes): no new file can be created. */
  fillInodes(): void {
    for (let i = 0; ; i++) {
      const path = join(this.mount, `inode-${i}`);
      try {
        closeSync(openSync(path, 'w'));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
        return;
      }
      this.#fillers.push(path);
    }
  }

  free(): void {
    for (const f of this.#fillers.splice(0)) unlinkSync(f);
    if (this.#devFull) unlinkSync(this.#devFull);
    this.#devFull = undefined;
  }

  readOnly(): void {
    if (this.real) remount(this.mount, 'ro');
  }

  writable(): void {
    if (this.real) remount(this.mount, 'rw');
  }

  /** What the 503 message names: the OS error of the fault. */
  expectError(code: 'ENOSPC' | 'EROFS'): RegExp {
    return this.real ? new RegExp(`in ${this.data} \\(${code}: `) : new RegExp(`in ${this.data} \\(`);
  }
}

function remount(mount: string, mode: 'ro' | 'rw'): void {
  const r = spawnSync('mount', ['-o', `remount,${mode}`, mount], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`remount ${mode} ${mount}: ${r.stderr}`);
}

async function appOn(t: Test, dir: string, env: Record<string, string> = {}): Promise<App> {
  const built = await testApp({ DATA_DIR: dir, LOAD_MODELS: 'none', ...env });
  t.teardown(() => built.app.close());
  return built;
}

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';
const request = (app: App, method: Method, url: string, payload?: object) => app.app.inject({ method, url, ...(payload ? { payload } : {}) });

/** A 503 STORAGE_UNAVAILABLE with Retry-After whose message names the directory and the OS error. */
function refused(t: Test, res: { statusCode: number; headers: Record<string, unknown>; json(): { error: string; code: string } }, message: RegExp, what: string): void {
  t.equal(res.statusCode, 503, `${what}: 503`);
  t.equal(res.json().code, 'STORAGE_UNAVAILABLE', `${what}: STORAGE_UNAVAILABLE`);
  t.match(res.json().error, message, `${what}: the message names the directory and the error`);
  t.match(res.json().error, /the change was not applied/);
  t.ok(res.headers['retry-after'], `${what}: Retry-After`);
}

/** Everything the AtomSpace holds, for before/after comparisons. */
function dump(as: AtomSpace) {
  const atoms = as.find({ limit: 100_000 }).atoms.sort((a, b) => a.id - b.id);
  return {
    atoms: atoms.map((a) => ({
      ...a,
      incoming: as.incoming(a.id).map((l) => l.id),
      // Rounded: a snapshot stores normalised vectors, which recovery normalises once more.
      vectors: Object.fromEntries(as.spacesOf(a.id).map((s) => [s, Array.from(as.embedding(a.id, s)!, (v) => +v.toFixed(6))])),
    })),
    counts: Object.fromEntries([...as.countsByType()].filter(([, n]) => n > 0)),
    spaceSizes: Object.fromEntries(as.spaces().flatMap((s) => (s.size ? [[s.name, s.size]] : []))),
  };
}

const vector = (i: number, dim = 16) => Array.from({ length: dim }, (_, j) => Math.sin(i * 7 + j) + 1.5);
const unit = (v: number[]) => {
  const n = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  return v.map((x) => x / n);
};
const close = (a: ArrayLike<number>, b: ArrayLike<number>) => a.length === b.length && Array.from(a).every((x, i) => Math.abs(x - b[i]!) < 1e-6);

t.test('disk full: every kind of write is refused with 503 and changes nothing; reads go on; freeing space recovers without a restart', async (t) => {
  const disk = FaultyDir.create(t);
  const built = await appOn(t, disk.data);
  const { atomspace } = built.context;
  const post = (body: object) => request(built, 'POST', '/atoms', body);
  const cat = (await post({ type: 'ConceptNode', name: 'cat', embedding: vector(1) })).json();
  const animal = (await post({ type: 'ConceptNode', name: 'animal', embedding: vector(2) })).json();
  const dog = (await post({ type: 'ConceptNode', name: 'dog', embedding: vector(3) })).json();
  const isa = (await post({ type: 'InheritanceLink', outgoing: [cat.id, animal.id] })).json();
  const before = dump(atomspace);
  const listing = (await request(built, 'GET', '/atoms?limit=1000')).json();

  await disk.fill(atomspace);
  const message = disk.expectError('ENOSPC');
  refused(t, await post({ type: 'ConceptNode', name: 'bird', embedding: vector(4), tv: { strength: 0.5, confidence: 0.5 } }), message, 'POST /atoms (node)');
  refused(t, await post({ type: 'InheritanceLink', outgoing: [dog.id, animal.id] }), message, 'POST /atoms (link)');
  refused(t, await request(built, 'POST', '/atoms/batch', { atoms: [{ type: 'ConceptNode', name: 'fish' }, { type: 'ConceptNode', name: 'cat', tv: { strength: 0.1, confidence: 0.9 } }] }), message, 'POST /atoms/batch');
  refused(t, await request(built, 'PATCH', `/atoms/${cat.id}`, { tv: { strength: 0.2, confidence: 0.3 }, av: { sti: 5 } }), message, 'PATCH');
  refused(t, await request(built, 'DELETE', `/atoms/${animal.id}?recursive=true`), message, 'DELETE recursive');
  refused(t, await request(built, 'DELETE', `/atoms/${dog.id}`), message, 'DELETE');
  refused(t, await post({ type: 'ConceptNode', name: 'cat', embedding: vector(9) }), message, 'setting an embedding');
  refused(t, await post({ type: 'ConceptNode', name: 'cat', embedding: [1, 2, 3], space: 'other' }), message, 'an embedding in a new space');

  t.same(dump(atomspace), before, 'memory is exactly as before the refused writes');
  t.equal((await request(built, 'GET', '/atoms?type=ConceptNode&name=bird')).json().total, 0, 'the refused node is not there');
  t.same((await request(built, 'GET', '/atoms?limit=1000')).json(), listing, 'the listing is unchanged');
  t.equal((await request(built, 'GET', `/atoms/${cat.id + 100}`)).statusCode, 404);
  const got = await request(built, 'GET', `/atoms/${cat.id}`);
  t.equal(got.statusCode, 200, 'reads answer');
  t.same(got.json().tv, cat.tv, 'the tv is not changed');
  t.same((await request(built, 'GET', `/atoms/${animal.id}/incoming`)).json().atoms.map((a: { id: number }) => a.id), [isa.id]);
  const similar = await request(built, 'POST', '/atoms/similar', { embedding: vector(1), k: 2 });
  t.equal(similar.statusCode, 200, '/atoms/similar answers');
  t.equal(similar.json().results[0].atom.id, cat.id, 'with the vector cat had before the refused change');
  t.equal((await post({ type: 'ConceptNode', name: 'cat' })).statusCode, 200, 'adding an existing atom (nothing to write) still answers');
  t.equal((await request(built, 'GET', '/health/live')).statusCode, 200, 'the server is alive');

  disk.free();
  const bird = await post({ type: 'ConceptNode', name: 'bird', embedding: vector(4), tv: { strength: 0.5, confidence: 0.5 } });
  t.equal(bird.statusCode, 201, 'the same write succeeds once there is space, without a restart');
  t.equal(bird.json().id, isa.id + 1, 'and gets the id the refused one would have had: no gap, no reuse of a durable id');
  t.equal((await post({ type: 'ConceptNode', name: 'bird' })).statusCode, 200, 'now it exists');
  const batch = await request(built, 'POST', '/atoms/batch', { atoms: [{ type: 'ConceptNode', name: 'fish' }, { type: 'ConceptNode', name: 'cat', tv: { strength: 0.1, confidence: 0.9 } }] });
  t.same(batch.json().atoms.map((a: { created: boolean }) => a.created), [true, false]);
  t.equal((await request(built, 'PATCH', `/atoms/${dog.id}`, { av: { sti: 3 } })).statusCode, 200);
  t.equal((await request(built, 'DELETE', `/atoms/${animal.id}?recursive=true`)).statusCode, 200);
  t.equal((await post({ type: 'ConceptNode', name: 'cat', embedding: [1, 2, 3], space: 'other' })).statusCode, 200);
  const after = dump(atomspace);

  await built.app.close();
  const reopened = await appOn(t, disk.data);
  t.same(dump(reopened.context.atomspace), after, 'a restart finds exactly what was acknowledged');
});

t.test('read-only data directory: writes 503 (EROFS), reads 200; writable again, writes go on without a restart', async (t) => {
  const disk = FaultyDir.create(t);
  let built = await appOn(t, disk.data);
  const post = (body: object) => request(built, 'POST', '/atoms', body);
  const a = (await post({ type: 'ConceptNode', name: 'a', embedding: vector(1) })).json();

  // A file system cannot be remounted read-only while a file on it is open for writing: after
  // a failed write the journal lets go of its file until the next write reopens it, so a disk
  // that fills and is then remounted read-only (what ext4 does on errors) is this sequence.
  await disk.fill(built.context.atomspace);
  refused(t, await post({ type: 'ConceptNode', name: 'b' }), disk.expectError('ENOSPC'), 'disk full');
  disk.readOnly();
  refused(t, await post({ type: 'ConceptNode', name: 'b' }), disk.expectError('EROFS'), 'read-only');
  refused(t, await request(built, 'PATCH', `/atoms/${a.id}`, { tv: { strength: 0.5, confidence: 0.5 } }), disk.expectError('EROFS'), 'read-only PATCH');
  t.equal((await request(built, 'GET', `/atoms/${a.id}`)).statusCode, 200, 'reads answer');
  t.equal((await request(built, 'POST', '/atoms/similar', { embedding: vector(1), k: 1 })).json().results[0].atom.id, a.id);
  disk.writable();
  disk.free();
  const b = await post({ type: 'ConceptNode', name: 'b' });
  t.equal(b.statusCode, 201, 'writable again: the write succeeds');
  t.equal(b.json().id, a.id + 1);
  await built.app.close();

  if (!disk.real) return t.comment('starting on a read-only directory needs a remount: not tried');
  // Starting on a read-only directory: reads are served, writes refused until it is writable.
  disk.readOnly();
  built = await appOn(t, disk.data);
  t.equal((await request(built, 'GET', `/atoms/${b.json().id}`)).statusCode, 200, 'a server started on a read-only directory reads');
  refused(t, await post({ type: 'ConceptNode', name: 'c' }), disk.expectError('EROFS'), 'started read-only');
  disk.writable();
  const c = await post({ type: 'ConceptNode', name: 'c' });
  t.equal(c.statusCode, 201, 'writable again: the write succeeds without a restart');
  t.equal(c.json().id, b.json().id + 1);
  await built.app.close();
  const { atomspace } = await AtomSpace.open({ dataDir: disk.data });
  t.teardown(() => atomspace.close());
  t.same(atomspace.find({ limit: 10 }).atoms.map((x) => x.name), ['a', 'b', 'c']);
});

t.test('acknowledged writes survive a full disk; refused ones never come back', async (t) => {
  const disk = FaultyDir.create(t, 'size=256k');
  let built = await appOn(t, disk.data);
  const acked = new Map<string, { id: number; tv: { strength: number; confidence: number }; vector: number[] }>();
  const refusedNames = new Set<string>();
  const post = async (name: string, i: number) => {
    const tv = { strength: (i % 10) / 10, confidence: 0.5 };
    const res = await request(built, 'POST', '/atoms', { type: 'ConceptNode', name, tv, embedding: vector(i, 64) });
    if (res.statusCode === 201) acked.set(name, { id: res.json().id, tv, vector: vector(i, 64) });
    else if (res.statusCode === 503 && res.json().code === 'STORAGE_UNAVAILABLE') refusedNames.add(name);
    else t.fail(`${name}: ${res.statusCode} ${res.body}`);
  };
  for (let i = 0; i < 30; i++) await post(`before-${i}`, i);
  t.equal(acked.size, 30);
  // No rotation: the last block of the journal still has room, so of a burst of concurrent
  // writes (group commits), the first may fit, one is cut short by ENOSPC mid-write, and
  // everything behind it fails too.
  await disk.fill(built.context.atomspace, { rotate: false });
  await Promise.all(Array.from({ length: 40 }, (_, i) => post(`burst-${i}`, 100 + i)));
  for (let i = 0; i < 5; i++) await post(`after-${i}`, 200 + i);
  t.ok(refusedNames.size >= 5, `${refusedNames.size} writes refused, ${acked.size - 30} of the burst acknowledged`);
  const ids = [...acked.values()].map((a) => a.id);
  t.equal(new Set(ids).size, ids.length, 'no id was given twice');
  await built.app.close();

  disk.free();
  built = await appOn(t, disk.data);
  const { atomspace } = built.context;
  const wrong = [...acked].filter(([name, want]) => {
    const atom = atomspace.find({ type: 'ConceptNode', name }).atoms[0];
    return !atom || atom.id !== want.id || atom.tv.strength !== want.tv.strength || atom.tv.confidence !== want.tv.confidence || !close(atomspace.embedding(atom.id, 'default')!, unit(want.vector));
  });
  t.same(wrong.map(([name]) => name), [], 'every acknowledged atom is back, with its id, tv and embedding');
  t.same([...refusedNames].filter((name) => atomspace.find({ type: 'ConceptNode', name }).total > 0), [], 'no refused atom is');
  t.equal(atomspace.size, acked.size, 'and nothing else');
  const next = await request(built, 'POST', '/atoms', { type: 'ConceptNode', name: 'next' });
  t.equal(next.json().id, Math.max(...ids) + 1, 'ids go on after the last acknowledged one');
});

t.test('a failed group commit undoes every change in it, newest first, dependent changes included', async (t) => {
  const disk = FaultyDir.create(t);
  const { atomspace: as } = await AtomSpace.open({ dataDir: disk.data });
  t.teardown(() => as.close());
  const a = (await as.addNode({ type: 'ConceptNode', name: 'a', embeddings: [{ space: 's', model: null, vector: vector(1, 4) }] })).atom;
  const b = (await as.addNode({ type: 'ConceptNode', name: 'b', tv: { strength: 0.3, confidence: 0.3 } })).atom;
  const ab = (await as.addLink({ type: 'ListLink', outgoing: [a.id, b.id] })).atom;
  await as.addLink({ type: 'ListLink', outgoing: [ab.id, b.id] });
  const before = dump(as);

  await disk.fill(as);
  // Started together: the first is being written while the others wait behind it, and each
  // depends on the ones before it. All of them fail, and must be undone in reverse order.
  const attempts = [
    as.addNode({ type: 'ConceptNode', name: 'x', embeddings: [{ space: 's', model: null, vector: vector(2, 4) }, { space: 'new', model: null, vector: [1, 2] }] }),
    as.update(a.id, { tv: { strength: 0.9, confidence: 0.9 }, av: { sti: 4 } }),
    as.setEmbedding(a.id, { space: 's', model: null, vector: vector(3, 4) }),
    as.addLink({ type: 'ListLink', outgoing: [ab.id + 2, a.id] }), // links x, created above
    as.remove(a.id, true), // takes both links and the one just added
    as.addBatch([{ node: { type: 'ConceptNode', name: 'a' } }, { node: { type: 'ConceptNode', name: 'b', tv: { strength: 1, confidence: 1 } } }]), // a again, with a new id
    as.remove(b.id, true),
    as.addNode({ type: 'ConceptNode', name: 'x' }), // exists in memory right now, nothing to write: must wait, and fail, too
  ];
  const results = await Promise.allSettled(attempts);
  t.same(
    results.map((r) => (r.status === 'rejected' ? (r.reason as AtomSpaceError).code : 'fulfilled')),
    attempts.map(() => 'STORAGE_UNAVAILABLE'),
    'every change was refused',
  );
  t.same(dump(as), before, 'memory is exactly as before');
  t.equal(as.space('new')?.size ?? 0, 0, 'a space the refused write created holds nothing');

  disk.free();
  const x = await as.addNode({ type: 'ConceptNode', name: 'x' });
  t.same([x.created, x.atom.id], [true, ab.id + 2], 'the refused id is given again: it was never durable');
  await as.remove(a.id, true);
  const after = dump(as);
  await as.close();
  const reopened = (await AtomSpace.open({ dataDir: disk.data })).atomspace;
  t.teardown(() => reopened.close());
  t.same(dump(reopened), after, 'the journal holds what memory holds');
});

t.test('the part of a record a full disk took is cut off before the next write', async (t) => {
  const disk = FaultyDir.create(t);
  if (!disk.real) return t.comment('needs a file system to fill: /dev/full takes no partial writes');
  const { atomspace: as } = await AtomSpace.open({ dataDir: disk.data });
  t.teardown(() => as.close());
  const journal = join(disk.data, journals(disk.data).at(-1)!);
  await as.addNode({ type: 'ConceptNode', name: 'first' });
  if (statSync(journal).size % 4096 === 0) await as.addNode({ type: 'ConceptNode', name: 'unaligned' });
  const before = dump(as);
  await disk.fill(as, { rotate: false });
  // 16 KiB of vector: the rest of the journal's last block takes the first part of it.
  await t.rejects(as.addNode({ type: 'ConceptNode', name: 'big', embeddings: [{ space: 's', model: null, vector: vector(1, 4096) }] }), { code: 'STORAGE_UNAVAILABLE' });
  t.ok(statSync(journal).size > as.journalBytes, `a partial record is on disk (${statSync(journal).size - as.journalBytes} bytes)`);
  t.same(dump(as), before);
  disk.free();
  await as.addNode({ type: 'ConceptNode', name: 'small' });
  t.equal(statSync(journal).size, as.journalBytes, 'the next write cut it off first');
  const after = dump(as);
  await as.close();
  const { atomspace: reopened, recovered } = await AtomSpace.open({ dataDir: disk.data });
  t.teardown(() => reopened.close());
  t.equal(recovered.truncatedBytes, 0, 'recovery finds no torn tail');
  t.same(dump(reopened), after);
});

t.test('a change that fails part-way in memory is undone too', async (t) => {
  const { atomspace: as } = await AtomSpace.open({ dataDir: scratch(t) });
  t.teardown(() => as.close());
  await as.addNode({ type: 'ConceptNode', name: 'keep' });
  const before = dump(as);
  // Each vector is valid alone; the second does not fit the space the first one creates.
  await t.rejects(
    as.addBatch([
      { node: { type: 'ConceptNode', name: 'p', embeddings: [{ space: 'fresh', model: null, vector: [1, 2, 3] }] } },
      { node: { type: 'ConceptNode', name: 'q', embeddings: [{ space: 'fresh', model: null, vector: [1, 2] }] } },
    ]),
    { code: 'BAD_EMBEDDING' },
  );
  const now = dump(as);
  t.same(now.atoms, before.atoms, 'neither node is there');
  t.same((await as.addNode({ type: 'ConceptNode', name: 'p' })).atom.id, before.atoms.at(-1)!.id + 1);
});

t.test('snapshot on a full disk: refused cleanly, nothing deleted, nothing lost', async (t) => {
  const disk = FaultyDir.create(t);
  const { atomspace: as } = await AtomSpace.open({ dataDir: disk.data });
  t.teardown(() => as.close());
  for (let i = 0; i < 20; i++) await as.addNode({ type: 'ConceptNode', name: `n${i}`, embeddings: [{ space: 's', model: null, vector: vector(i, 32) }] });
  const before = dump(as);
  const journalsBefore = journals(disk.data);

  await disk.fill(as, { rotate: false });
  if (disk.real) {
    await t.rejects(as.snapshot(), { code: 'STORAGE_UNAVAILABLE', message: disk.expectError('ENOSPC') }, 'the snapshot is refused');
    t.same(readdirSync(disk.data).filter((f) => f.includes('snapshot')), [], 'no snapshot (or half of one) is left');
    t.ok(journalsBefore.every((f) => existsSync(join(disk.data, f))), 'no journal was deleted');
  }
  await t.rejects(as.addNode({ type: 'ConceptNode', name: 'refused' }), { code: 'STORAGE_UNAVAILABLE' });
  t.same(dump(as), before, 'reads see everything');

  disk.free();
  await as.addNode({ type: 'ConceptNode', name: 'later' });
  await as.snapshot();
  const after = dump(as);
  await as.close();
  const reopened = (await AtomSpace.open({ dataDir: disk.data })).atomspace;
  t.teardown(() => reopened.close());
  t.same(dump(reopened), after, 'everything acknowledged is recovered');
});

t.test('snapshot file cannot be written (ENOSPC from /dev/full): the journal goes on', async (t) => {
  const dir = scratch(t);
  const { atomspace: as } = await AtomSpace.open({ dataDir: dir });
  t.teardown(() => as.close());
  for (let i = 0; i < 10; i++) await as.addNode({ type: 'ConceptNode', name: `n${i}`, embeddings: [{ space: 's', model: null, vector: vector(i, 8) }] });
  const tmp = join(dir, `snapshot-${currentGeneration(dir)}.bin.tmp`);
  symlinkSync('/dev/full', tmp);
  await t.rejects(as.snapshot(), { code: 'STORAGE_UNAVAILABLE', message: /cannot write a snapshot in .*\(ENOSPC: no space left on device\); nothing was lost/ });
  t.throws(() => lstatSync(tmp), 'the half-written snapshot is removed');
  t.same(readdirSync(dir).filter((f) => f.startsWith('snapshot')), []);
  t.equal(journals(dir).length, 2, 'the covered journal is kept (next to the new one)');
  const added = await as.addNode({ type: 'ConceptNode', name: 'after' });
  t.equal(added.created, true, 'the AtomSpace is still writable');
  await as.snapshot();
  t.same(journals(dir), [`journal-${currentGeneration(dir)}.log`], 'a later snapshot works and drops the old journals');
  const after = dump(as);
  await as.close();
  const reopened = (await AtomSpace.open({ dataDir: dir })).atomspace;
  t.teardown(() => reopened.close());
  t.same(dump(reopened), after);
});

t.test('the next journal cannot be created (no free inode): writes go on in the old one', async (t) => {
  const disk = FaultyDir.create(t, 'size=512k,nr_inodes=32');
  const { atomspace: as } = await AtomSpace.open({ dataDir: disk.data });
  t.teardown(() => as.close());
  await as.addNode({ type: 'ConceptNode', name: 'first' });
  const gen = currentGeneration(disk.data);
  let blocker: string | undefined;
  if (disk.real) disk.fillInodes();
  else mkdirSync((blocker = join(disk.data, `journal-${gen + 1}.log`))); // EISDIR when opened as the next journal
  await t.rejects(as.snapshot(), { code: 'STORAGE_UNAVAILABLE', message: disk.real ? /ENOSPC/ : /EISDIR/ });
  const size = statSync(join(disk.data, `journal-${gen}.log`)).size;
  const added = await as.addNode({ type: 'ConceptNode', name: 'second', embeddings: [{ space: 's', model: null, vector: [1, 2] }] });
  t.equal(added.created, true, 'still writable');
  t.ok(statSync(join(disk.data, `journal-${gen}.log`)).size > size, 'into the journal it had');

  if (blocker) rmSync(blocker, { recursive: true });
  else disk.free();
  await as.snapshot();
  const after = dump(as);
  await as.close();
  const reopened = (await AtomSpace.open({ dataDir: disk.data })).atomspace;
  t.teardown(() => reopened.close());
  t.same(dump(reopened), after, 'nothing lost');
});

t.test('an automatic snapshot that fails (SNAPSHOT_BYTES) crashes nothing and loses nothing', async (t) => {
  const dir = scratch(t);
  const built = await appOn(t, dir, { SNAPSHOT_BYTES: '4KiB' });
  const { atomspace } = built.context;
  const post = (i: number) => request(built, 'POST', '/atoms', { type: 'ConceptNode', name: `n${i}`, embedding: vector(i, 32) });
  let i = 0;
  while (atomspace.journalBytes < 3000) t.equal((await post(i++)).statusCode, 201);
  const gen = currentGeneration(dir);
  const tmp = join(dir, `snapshot-${gen}.bin.tmp`);
  symlinkSync('/dev/full', tmp);
  // Cross the threshold: the write is acknowledged, the snapshot it starts fails in the background.
  while (currentGeneration(dir) === gen) t.equal((await post(i++)).statusCode, 201);
  for (let waited = 0; waited < 5000 && lstatOk(tmp); waited += 10) await sleep(10);
  t.notOk(lstatOk(tmp), 'the snapshot was tried, and its file removed');
  t.same(readdirSync(dir).filter((f) => f.startsWith('snapshot')), [], 'no snapshot was written');
  for (let j = 0; j < 5; j++) t.equal((await post(i++)).statusCode, 201, 'writes go on');
  t.equal((await request(built, 'GET', '/health/live')).statusCode, 200);
  const after = dump(atomspace);
  await built.app.close();
  const { atomspace: reopened } = await AtomSpace.open({ dataDir: dir });
  t.teardown(() => reopened.close());
  t.same(dump(reopened), after, 'every acknowledged atom is back');
  t.equal(reopened.size, i);
});

t.test('no unhandled rejection', async (t) => {
  t.same(unhandled, []);
});

function lstatOk(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
