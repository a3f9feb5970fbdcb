// The AtomSpace kept in PostgreSQL, two replicas in this process on one private cluster
// (test/helpers/postgres.ts: initdb + pg_ctl on a free port). The oracle is the database
// itself, read with the `pg` client: one row per atom, whatever the replicas raced.
import t, { type Test } from 'tap';

import pg from 'pg';

import { AtomSpace, type AtomSpaceError } from '../../src/atomspace/atomspace.js';
import { PostgresStore } from '../../src/atomspace/postgres-store.js';
import { MIGRATIONS } from '../../src/atomspace/postgres-migrations.js';
import { loadConfig } from '../../src/server/config.js';
import { type PgCluster, postgresSkip, startCluster } from '../helpers/postgres.js';

t.test('ATOMSPACE_STORE=postgres needs a postgres:// DATABASE_URL', async (t) => {
  t.throws(() => loadConfig({ ATOMSPACE_STORE: 'postgres' }, []), { message: /ATOMSPACE_STORE=postgres needs DATABASE_URL/ });
  t.throws(() => loadConfig({ ATOMSPACE_STORE: 'postgres', DATABASE_URL: 'mysql://x@y/z' }, []), { message: /DATABASE_URL must be a postgres:\/\/ or postgresql:\/\/ URL/ });
  t.throws(() => loadConfig({ ATOMSPACE_STORE: 'redis' }, []), { message: /ATOMSPACE_STORE must be journal or postgres, got 'redis'/ });
  t.match(loadConfig({ ATOMSPACE_STORE: 'postgres', DATABASE_URL: 'postgresql://u:p@db:5432/atoms', PG_POOL_SIZE: '4' }, []), { atomspaceStore: 'postgres', pgPoolSize: 4 });
  t.equal(loadConfig({}, []).atomspaceStore, 'journal', 'the journal stays the default');
});

const skip = postgresSkip();
if (skip) {
  t.test('PostgreSQL store', { skip: `PostgreSQL store tests: ${skip}` }, () => undefined);
} else {
  let cluster: PgCluster;
  t.before(async () => {
    cluster = await startCluster();
  });
  t.teardown(() => cluster?.destroy());

  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  async function until<T>(what: string, probe: () => T | undefined | false, ms = 5000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = probe();
      if (v !== undefined && v !== false) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(10);
    }
  }

  async function replicas(t: Test, db: string, n = 2): Promise<{ url: string; spaces: AtomSpace[]; stores: PostgresStore[] }> {
    const url = await cluster.createDatabase(db);
    const stores: PostgresStore[] = [];
    const spaces: AtomSpace[] = [];
    for (let i = 0; i < n; i++) {
      const store = new PostgresStore({ connectionString: url, poolSize: 4 });
      stores.push(store);
      spaces.push((await AtomSpace.openShared({ store })).atomspace);
    }
    t.teardown(async () => {
      for (const s of spaces) await s.close();
    });
    return { url, spaces, stores };
  }

  t.test('the schema is created once, versioned, by replicas starting together', async (t) => {
    const url = await cluster.createDatabase('schema');
    const stores = [0, 1, 2].map(() => new PostgresStore({ connectionString: url, poolSize: 2 }));
    const opened = await Promise.all(stores.map((store) => AtomSpace.openShared({ store })));
    t.same(opened.map((o) => o.recovered.migrated).flat(), MIGRATIONS.map((m) => m.version), 'each migration applied by exactly one replica');
    const versions = await cluster.query('schema', 'SELECT version FROM atomspace_schema_migrations ORDER BY version');
    t.same(versions.rows.map((r) => r.version), MIGRATIONS.map((m) => m.version));
    for (const o of opened) await o.atomspace.close();
    // A database migrated by a newer server is refused, not misread.
    await cluster.query('schema', "INSERT INTO atomspace_schema_migrations (version, name) VALUES (999, 'from the future')");
    const store = new PostgresStore({ connectionString: url });
    await t.rejects(AtomSpace.openShared({ store }), /schema is at version 999, newer than this server knows/);
    await store.close();
  });

  t.test('two replicas creating the same atoms at once end with one of each', async (t) => {
    const { spaces: [a, b] } = await replicas(t, 'race');
    const names = Array.from({ length: 40 }, (_, i) => `n${i}`);
    const results = await Promise.all(names.flatMap((name) => [a!.addNode({ type: 'ConceptNode', name }), b!.addNode({ type: 'ConceptNode', name })]));
    for (let i = 0; i < names.length; i++) {
      const [ra, rb] = [results[2 * i]!, results[2 * i + 1]!];
      t.equal(ra.atom.id, rb.atom.id, `${names[i]}: both replicas answer the same id`);
      t.equal(Number(ra.created) + Number(rb.created), 1, `${names[i]}: exactly one of them created it`);
    }
    const rows = await cluster.query('race', "SELECT name, count(*)::int AS n FROM atomspace_atoms WHERE type = 'ConceptNode' GROUP BY name");
    t.equal(rows.rows.length, names.length);
    t.ok(rows.rows.every((r) => r.n === 1), 'the database holds one row per name');
    // Unordered links: (x, y) from one replica and (y, x) from the other are one SimilarityLink.
    const [x, y] = [results[0]!.atom.id, results[2]!.atom.id];
    const [l1, l2] = await Promise.all([a!.addLink({ type: 'SimilarityLink', outgoing: [x, y] }), b!.addLink({ type: 'SimilarityLink', outgoing: [y, x] })]);
    t.equal(l1.atom.id, l2.atom.id, 'one SimilarityLink');
    t.same(l1.atom.outgoing, [x, y].sort((p, q) => p - q));
    const [o1, o2] = await Promise.all([a!.addLink({ type: 'ListLink', outgoing: [x, y] }), b!.addLink({ type: 'ListLink', outgoing: [y, x] })]);
    t.not(o1.atom.id, o2.atom.id, 'an ordered link in the other order is another atom');
    // Each replica sees everything, the other's writes included.
    await until('b to see a\'s links', () => b!.get(o1.atom.id) && a!.get(o2.atom.id));
    t.equal(a!.size, b!.size);
    t.equal(a!.size, Number((await cluster.query('race', 'SELECT count(*) AS n FROM atomspace_atoms')).rows[0]!.n));
  });

  t.test('writes, vectors, updates and removals reach the other replica; refusals are the journal\'s', async (t) => {
    const { spaces: [a, b] } = await replicas(t, 'crud');
    const cat = (await a!.addNode({ type: 'ConceptNode', name: 'cat', tv: { strength: 0.9, confidence: 0.5 }, embeddings: [{ space: 's', model: 'm', vector: [3, 4, 0] }] })).atom;
    t.same(a!.embedding(cat.id, 's'), Float32Array.from([0.6, 0.8, 0]), 'the writer reads its own write at once');
    await until('b to see the vector', () => b!.embedding(cat.id, 's'));
    t.same(b!.embedding(cat.id, 's'), a!.embedding(cat.id, 's'));
    t.equal(b!.space('s')!.model, 'm');
    const animal = (await b!.addNode({ type: 'ConceptNode', name: 'animal' })).atom;
    const isa = (await b!.addLink({ type: 'InheritanceLink', outgoing: [cat.id, animal.id] })).atom;
    // The link names atoms a may not have seen yet; the database decides.
    await t.rejects(a!.addLink({ type: 'ListLink', outgoing: [cat.id, 999_999] }), { code: 'ATOM_NOT_FOUND', message: /outgoing atom 999999 does not exist/ });
    await t.rejects(a!.addNode({ type: 'ConceptNode', name: 'dog', embeddings: [{ space: 's', model: null, vector: [1, 2] }] }), { code: 'BAD_EMBEDDING' });
    const updated = await a!.update(cat.id, { av: { sti: 7 } });
    t.same(updated.av, { sti: 7, lti: 0 });
    t.same(updated.tv, { strength: 0.9, confidence: 0.5 }, 'the tv stays when only av is given');
    await until('b to see the update', () => b!.get(cat.id)?.av.sti === 7);
    await t.rejects(a!.remove(cat.id, false), { code: 'HAS_INCOMING' });
    await until('a to see the link', () => a!.get(isa.id));
    t.same(await a!.remove(cat.id, true), [isa.id, cat.id], 'links first');
    await until('b to see the removal', () => !b!.get(cat.id) && !b!.get(isa.id));
    t.equal(b!.embedding(cat.id, 's'), undefined);
    t.same(b!.incoming(animal.id), []);
    await t.rejects(b!.update(cat.id, { tv: { strength: 1, confidence: 1 } }), { code: 'ATOM_NOT_FOUND' });
    // Adding an existing atom with a tv updates it; a batch is one change.
    const batch = await b!.addBatch([{ node: { type: 'ConceptNode', name: 'animal', tv: { strength: 0.2, confidence: 0.3 } } }, { node: { type: 'PredicateNode', name: 'eats' } }]);
    t.same(batch.map((r) => r.created), [false, true]);
    t.same(batch[0]!.atom.tv, { strength: 0.2, confidence: 0.3 });
    await until('a to see the batch', () => a!.get(batch[1]!.atom.id) && a!.get(animal.id)!.tv.strength === 0.2);
  });

  t.test('a change that commits after a later one is still applied (no "seq > last" gap)', async (t) => {
    const { url, spaces: [a, b] } = await replicas(t, 'gap');
    // A slow writer: its change row takes a lower seq, then waits before committing.
    const slow = new pg.Client({ connectionString: url });
    await slow.connect();
    t.teardown(() => slow.end());
    await slow.query('BEGIN');
    const key = (await import('../../src/atomspace/postgres-store.js')).atomKey('ConceptNode', 'slow');
    const row = await slow.query("INSERT INTO atomspace_atoms (key, type, name) VALUES ($1, 'ConceptNode', 'slow') RETURNING id::int AS id", [key]);
    const id = row.rows[0]!.id as number;
    const change = await slow.query("INSERT INTO atomspace_changes (ops) VALUES ($1::jsonb) RETURNING seq::int AS seq", [JSON.stringify([{ op: 'node', id, type: 'ConceptNode', name: 'slow', tv: { strength: 1, confidence: 0 }, av: { sti: 0, lti: 0 } }])]);
    // A quick writer commits a higher seq, and b applies it.
    const quick = (await a!.addNode({ type: 'ConceptNode', name: 'quick' })).atom;
    await until('b to see the quick write', () => b!.get(quick.id));
    const seqs = await cluster.query('gap', 'SELECT seq::int AS seq FROM atomspace_changes ORDER BY seq');
    t.ok(seqs.rows.every((r) => r.seq > change.rows[0]!.seq), `the committed change (seq ${seqs.rows.map((r) => r.seq).join(', ')}) is after the pending one (seq ${change.rows[0]!.seq})`);
    t.notOk(b!.get(id), 'the slow change is not visible yet');
    await slow.query("SELECT pg_notify('atomspace_changes', 'x')");
    await slow.query('COMMIT');
    await until('b to apply the lower seq that committed later', () => b!.get(id), 5000);
    t.equal(b!.get(id)!.name, 'slow');
    await until('a too', () => a!.get(id));
  });

  t.test('missed notifications are caught up exactly', async (t) => {
    const { spaces: [a, b] } = await replicas(t, 'missed');
    // Cut every listener: notifications sent meanwhile are lost, the poll and the reconnect catch up.
    const killed = await cluster.query('missed', "SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = 'atenspace-serve-listen'");
    t.equal(killed.rows[0]!.n, 2, 'both replicas\' listeners were cut');
    const written = await a!.addBatch(Array.from({ length: 50 }, (_, i) => ({ node: { type: 'ConceptNode', name: `m${i}`, embeddings: [{ space: 'v', model: null, vector: [1, i + 1] }] } })));
    await until('b to catch up', () => written.every((r) => b!.get(r.atom.id) && b!.embedding(r.atom.id, 'v')), 5000);
    await sleep(500);
    const back = await cluster.query('missed', "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'atenspace-serve-listen'");
    t.equal(back.rows[0]!.n, 2, 'both listeners reconnected');
    t.equal(b!.size, a!.size);
  });

  t.test('the database down: writes refused with STORAGE_UNAVAILABLE, reads served and staleness said, recovery without reopening', async (t) => {
    const { spaces: [a, b] } = await replicas(t, 'down');
    const before = (await a!.addNode({ type: 'ConceptNode', name: 'before' })).atom;
    await until('b to see it', () => b!.get(before.id));
    cluster.stop('fast');
    let restarted = false;
    t.teardown(() => {
      if (!restarted) cluster.start();
    });
    const refused = await a!.addNode({ type: 'ConceptNode', name: 'during' }).then(
      () => undefined,
      (e: AtomSpaceError) => e,
    );
    t.equal(refused?.code, 'STORAGE_UNAVAILABLE');
    t.match(refused?.message, /cannot reach PostgreSQL at postgresql:\/\/127\.0\.0\.1:\d+\/down .*the change was not applied/);
    t.equal(b!.get(before.id)?.name, 'before', 'reads are served from memory');
    await sleep(1500);
    const status = b!.storeStatus()!;
    t.equal(status.connected, false);
    t.ok(status.staleSeconds >= 1, `memory says how stale it is (${status.staleSeconds.toFixed(1)} s)`);
    cluster.start();
    restarted = true;
    let after;
    for (let i = 0; !after; i++) {
      try {
        after = (await a!.addNode({ type: 'ConceptNode', name: 'after' })).atom;
      } catch (error) {
        if (i > 50) throw error;
        await sleep(200);
      }
    }
    await until('b to see the write made after the restart', () => b!.get(after.id), 10_000);
    await until('b to say it is current again', () => b!.storeStatus()!.connected, 10_000);
    t.equal(b!.find({ type: 'ConceptNode', name: 'during' }).total, 0, 'the refused write is nowhere');
  });
}
