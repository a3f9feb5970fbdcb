// Two real server processes (node dist/src/server/main.js) on one PostgreSQL database in a
// private cluster, driven over HTTP with fetch; the database, read with `pg`, is the oracle.
// Concurrent creation of one node from both servers gives one atom; a write on A is found by
// /atoms/similar on B; a database restart mid-load gives 503 STORAGE_UNAVAILABLE with
// Retry-After while reads go on, then recovery without a restart; kill -9 of A during a stream
// of writes loses no acknowledged atom (checked through B and the database).
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { ensureBuilt, freePort, postJson, type Proc, sleep, startServer, waitFor } from '../helpers/deploy.js';
import { type PgCluster, postgresSkip, startCluster } from '../helpers/postgres.js';

const skip = postgresSkip();
if (skip) {
  t.plan(0, `two servers on PostgreSQL: ${skip}`);
} else {
  let cluster: PgCluster;
  let a: { proc: Proc; base: string };
  let b: { proc: Proc; base: string };
  const emptyRepository = mkdtempSync(join(tmpdir(), 'atenspace-no-models-'));

  async function server(url: string): Promise<{ proc: Proc; base: string }> {
    const port = await freePort();
    const proc = await startServer(port, { ATOMSPACE_STORE: 'postgres', DATABASE_URL: url, PG_POOL_SIZE: '6', MODEL_REPOSITORY: emptyRepository, LOAD_MODELS: 'none', GRPC_PORT: '0' }, 60_000);
    return { proc, base: `http://127.0.0.1:${port}` };
  }

  t.before(async () => {
    const complaint = ensureBuilt();
    if (complaint) t.comment(complaint);
    cluster = await startCluster();
    const url = await cluster.createDatabase('replicas');
    a = await server(url);
    b = await server(url);
  });
  t.teardown(async () => {
    await a?.proc.stop(5000);
    await b?.proc.stop(5000);
    cluster?.destroy();
  });

  const unit = (i: number, dim = 16) => Array.from({ length: dim }, (_, j) => Math.sin(i * 7.1 + j * 1.3) + (j === i % dim ? 2 : 0));

  t.test('both servers creating the same node at once make one atom', async (t) => {
    const names = Array.from({ length: 30 }, (_, i) => `both-${i}`);
    const answers = await Promise.all(names.flatMap((name) => [a, b].map((s) => postJson(s.base, '/atoms', { type: 'ConceptNode', name }))));
    for (let i = 0; i < names.length; i++) {
      const [fromA, fromB] = [answers[2 * i]!, answers[2 * i + 1]!];
      t.same([fromA.status, fromB.status].sort(), [200, 201], `${names[i]}: one 201 (created) and one 200 (existing)`);
      t.equal(fromA.json.id, fromB.json.id, `${names[i]}: the same id from both`);
    }
    const rows = await cluster.query('replicas', "SELECT name, count(*)::int AS n FROM atomspace_atoms WHERE name LIKE 'both-%' GROUP BY name");
    t.equal(rows.rows.length, names.length);
    t.ok(rows.rows.every((r) => r.n === 1), 'one row per name in the database');
  });

  t.test('a write on A is found by /atoms/similar on B', async (t) => {
    const lags: number[] = [];
    for (let i = 0; i < 20; i++) {
      const created = await postJson(a.base, '/atoms', { type: 'ConceptNode', name: `similar-${i}`, embedding: unit(i), space: 'shared' });
      t.equal(created.status, 201);
      const acked = performance.now();
      const hit = await waitFor(`B to find similar-${i}`, 5000, async () => {
        const found = await postJson(b.base, '/atoms/similar', { embedding: unit(i), space: 'shared', k: 1, mode: 'exact' });
        return found.status === 200 && found.json.results[0]?.atom.id === created.json.id ? found.json.results[0] : undefined;
      }, 2);
      lags.push(performance.now() - acked);
      t.equal(hit.atom.name, `similar-${i}`);
      t.ok(hit.score > 0.9999, 'the same vector');
    }
    lags.sort((x, y) => x - y);
    t.comment(`A's acknowledgement to B's first answer: median ${lags[10]!.toFixed(1)} ms, max ${lags[19]!.toFixed(1)} ms (polling every 2 ms)`);
  });

  t.test('a database restart mid-load: 503 STORAGE_UNAVAILABLE with Retry-After, reads go on, then recovery without a restart', async (t) => {
    const existing = (await postJson(a.base, '/atoms', { type: 'ConceptNode', name: 'kept' })).json.id as number;
    const results: { name: string; status: number; id?: number; retryAfter?: string | null; code?: string }[] = [];
    let stop = false;
    const writer = (async () => {
      for (let i = 0; !stop; i++) {
        const name = `load-${i}`;
        const res = await fetch(`${a.base}/atoms`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 'ConceptNode', name }) });
        const body = (await res.json()) as { id?: number; code?: string };
        results.push({ name, status: res.status, id: body.id, retryAfter: res.headers.get('retry-after'), code: body.code });
        await sleep(5);
      }
    })();
    await sleep(800);
    cluster.stop('fast');
    let restarted = false;
    t.teardown(() => {
      if (!restarted) cluster.start();
    });
    await sleep(1500);
    // Reads on both servers keep working while the database is down, and say how stale they may be.
    const read = await fetch(`${b.base}/atoms/${existing}`);
    t.equal(read.status, 200, 'B reads from memory');
    t.ok(Number(read.headers.get('x-atomspace-stale-seconds')) >= 1, `B says how stale it may be (${read.headers.get('x-atomspace-stale-seconds')} s)`);
    const similar = await postJson(a.base, '/atoms/similar', { embedding: unit(3), space: 'shared', k: 1 });
    t.equal(similar.status, 200, 'similarity search goes on');
    cluster.start();
    restarted = true;
    await waitFor('writes to succeed again', 20_000, async () => results.at(-1)?.status === 201);
    await sleep(300);
    stop = true;
    await writer;
    const statuses = results.map((r) => r.status);
    const firstRefused = statuses.indexOf(503);
    t.ok(firstRefused > 0, `201s, then 503s (${statuses.filter((s) => s === 503).length} of ${statuses.length})`);
    t.same([...new Set(statuses)].sort(), [201, 503], 'nothing but 201 and 503');
    const refused = results.filter((r) => r.status === 503);
    t.ok(refused.every((r) => r.code === 'STORAGE_UNAVAILABLE' && r.retryAfter === '5'), 'every 503 is STORAGE_UNAVAILABLE with Retry-After');
    t.equal(statuses.at(-1), 201, 'recovered without a restart');
    // Every acknowledged write is in the database and reaches B; no refused one is anywhere.
    const acked = results.filter((r) => r.status === 201);
    const rows = await cluster.query('replicas', "SELECT id::int AS id, name FROM atomspace_atoms WHERE name LIKE 'load-%'");
    const inDb = new Map(rows.rows.map((r) => [r.name as string, r.id as number]));
    t.ok(acked.every((r) => inDb.get(r.name) === r.id), `all ${acked.length} acknowledged atoms are in the database`);
    const ambiguous = refused.filter((r) => inDb.has(r.name));
    t.ok(ambiguous.length <= 1, `at most the write in flight when the database stopped committed without an answer (${ambiguous.length})`);
    await waitFor('B to hold every acknowledged atom', 10_000, async () => {
      const listed = await fetch(`${b.base}/atoms?type=ConceptNode&limit=10000`).then((r) => r.json() as Promise<{ atoms: { id: number; name: string }[] }>);
      const onB = new Map(listed.atoms.map((x) => [x.name, x.id]));
      return acked.every((r) => onB.get(r.name) === r.id);
    });
    // B may hold the atoms (caught up by query) a moment before its change listener is back.
    await waitFor('B to say it is current again', 10_000, async () => (await fetch(`${b.base}/atoms/${existing}`)).headers.get('x-atomspace-stale-seconds') === null);
    t.pass('B is current again');
  });

  t.test('kill -9 of A during a stream of writes loses no acknowledged atom', async (t) => {
    const acked: { name: string; id: number }[] = [];
    let failures = 0;
    let stop = false;
    const writers = Array.from({ length: 4 }, (_, w) =>
      (async () => {
        for (let i = 0; !stop; i++) {
          const name = `stream-${w}-${i}`;
          try {
            const res = await postJson(a.base, '/atoms', { type: 'ConceptNode', name, embedding: unit(i), space: 'stream' });
            if (res.status === 201) acked.push({ name, id: res.json.id });
          } catch {
            failures++;
            return; // A is gone
          }
        }
      })(),
    );
    await waitFor('writes to flow', 10_000, async () => acked.length >= 100);
    a.proc.child.kill('SIGKILL');
    await a.proc.exited;
    stop = true;
    await Promise.all(writers);
    t.ok(acked.length >= 100, `${acked.length} writes acknowledged before the kill (${failures} cut off)`);
    const rows = await cluster.query('replicas', "SELECT a.id::int AS id, a.name, e.atom_id IS NOT NULL AS has_vector FROM atomspace_atoms a LEFT JOIN atomspace_embeddings e ON e.atom_id = a.id WHERE a.name LIKE 'stream-%'");
    const inDb = new Map(rows.rows.map((r) => [r.name as string, r]));
    t.ok(acked.every((x) => inDb.get(x.name)?.id === x.id && inDb.get(x.name)?.has_vector), 'every acknowledged atom, with its vector, is in the database');
    await waitFor('B to hold every acknowledged atom', 10_000, async () => {
      const listed = await fetch(`${b.base}/atoms?type=ConceptNode&limit=10000`).then((r) => r.json() as Promise<{ atoms: { id: number; name: string; embeddings: string[] }[] }>);
      const onB = new Map(listed.atoms.map((x) => [x.name, x]));
      return acked.every((x) => onB.get(x.name)?.id === x.id && onB.get(x.name)!.embeddings.includes('stream'));
    });
    t.pass('B holds every acknowledged atom with its vector');
  });
}
