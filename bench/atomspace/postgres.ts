/**
 * The PostgreSQL AtomSpace store, measured (run by bench/atomspace/postgres.sh, which starts a
 * private cluster and gives DATABASE_URL, a URL without the database name):
 *
 * 1. batched inserts: AtomSpace.addBatch of nodes with 384-d vectors, GROUP atoms per batch,
 *    two batches in flight (as /atoms/import commits), into PostgreSQL and into the journal;
 * 2. cross-replica visibility: two servers (node dist/src/server/main.js) on one database; POST
 *    /atoms to A at RATE writes/s (open loop) for SECONDS; every 10th write is looked up on B
 *    (GET /atoms?type&name, every 1 ms) from the moment A acknowledged it;
 * 3. exact /atoms/similar latency: the same vectors in a journal server and in B; the same
 *    queries, one at a time, alternating between them.
 *
 * Prints one JSON object. Usage: node dist/bench/atomspace/postgres.js <url-prefix>
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import pg from 'pg';

import { AtomSpace } from '../../src/atomspace/atomspace.js';
import { PostgresStore } from '../../src/atomspace/postgres-store.js';

const base = process.argv[2] ?? process.env.DATABASE_URL_PREFIX;
if (!base) throw new Error('usage: postgres.js postgres://user@host:port/');
const INSERT_ATOMS = Number(process.env.INSERT_ATOMS ?? 50_000);
const GROUP = Number(process.env.GROUP ?? 1000);
const DIM = 384;
const RATE = Number(process.env.RATE ?? 1000);
const SECONDS = Number(process.env.SECONDS ?? 10);
const QUERIES = Number(process.env.QUERIES ?? 500);
const MAIN_JS = join(process.cwd(), 'dist', 'src', 'server', 'main.js');

/** A deterministic vector for atom i. */
function vector(i: number, dim = DIM): Float32Array {
  const v = new Float32Array(dim);
  let x = (i + 1) * 2654435761;
  for (let d = 0; d < dim; d++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    v[d] = ((x >>> 0) / 2 ** 32) * 2 - 1;
  }
  return v;
}
const b64 = (v: Float32Array) => Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');

function quantiles(xs: number[]): { n: number; p50: number; p90: number; p99: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => Number((s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN).toFixed(2));
  return { n: s.length, p50: q(0.5), p90: q(0.9), p99: q(0.99), max: Number((s.at(-1) ?? NaN).toFixed(2)) };
}

async function createDatabase(name: string): Promise<string> {
  const admin = new pg.Client({ connectionString: `${base}postgres` });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name}`);
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  return `${base}${name}`;
}

async function inserts(space: AtomSpace): Promise<number> {
  const started = performance.now();
  let inFlight: Promise<unknown> | undefined;
  for (let at = 0; at < INSERT_ATOMS; at += GROUP) {
    const items = Array.from({ length: Math.min(GROUP, INSERT_ATOMS - at) }, (_, j) => ({ node: { type: 'ConceptNode', name: `atom-${at + j}`, embeddings: [{ space: 'bench', model: null, vector: vector(at + j) }] } }));
    const next = space.addBatch(items);
    if (inFlight) await inFlight;
    inFlight = next;
  }
  await inFlight;
  return INSERT_ATOMS / ((performance.now() - started) / 1000);
}

// ----- servers -----

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const children: ChildProcess[] = [];
const temps: string[] = [];
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

async function server(env: Record<string, string>): Promise<{ port: number; child: ChildProcess }> {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'pgbench-data-'));
  const models = mkdtempSync(join(tmpdir(), 'pgbench-models-'));
  temps.push(dataDir, models);
  const child = spawn(process.execPath, [MAIN_JS], {
    env: { ...process.env, HOST: '127.0.0.1', PORT: String(port), GRPC_PORT: '0', LOG_LEVEL: 'warn', LOAD_MODELS: 'none', MODEL_REPOSITORY: models, DATA_DIR: dataDir, DEVICE: 'cpu', ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  children.push(child);
  for (let i = 0; ; i++) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/health/ready`);
      if (res.status === 200) return { port, child };
    } catch {
      // not yet
    }
    if (i > 600) throw new Error('server did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
}

function client(port: number) {
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const call = (method: string, path: string, body?: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path, method, agent, headers: body ? { 'content-type': 'application/json' } : {} }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode!, body: text }));
      });
      req.on('error', reject);
      req.end(body);
    });
  return { call, agent };
}

async function visibility(url: string) {
  const a = await server({ ATOMSPACE_STORE: 'postgres', DATABASE_URL: url });
  const b = await server({ ATOMSPACE_STORE: 'postgres', DATABASE_URL: url });
  const ca = client(a.port);
  const cb = client(b.port);
  const total = RATE * SECONDS;
  const acks: number[] = [];
  const visible: number[] = [];
  const pending: Promise<void>[] = [];
  let errors = 0;
  const started = performance.now();
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const name = `vis-${i}`;
    const sent = performance.now();
    pending.push(
      ca.call('POST', '/atoms', JSON.stringify({ type: 'ConceptNode', name, embedding: b64(vector(i)), space: 'vis' })).then(async (res) => {
        const acked = performance.now();
        if (res.status !== 201) {
          errors++;
          return;
        }
        acks.push(acked - sent);
        if (i % 10) return;
        for (;;) {
          const found = await cb.call('GET', `/atoms?type=ConceptNode&name=${name}`);
          if (found.status === 200 && JSON.parse(found.body).total === 1) break;
          await new Promise((r) => setTimeout(r, 1));
        }
        visible.push(performance.now() - acked);
      }),
    );
  }
  await Promise.all(pending);
  const seconds = (performance.now() - started) / 1000;
  ca.agent.destroy();
  cb.agent.destroy();
  return { a, b, result: { writes: total, errors, achievedWritesPerSecond: Math.round(total / seconds), ackMs: quantiles(acks), visibleOnBMs: quantiles(visible) } };
}

async function similarLatency(pgPort: number) {
  const j = await server({ ATOMSPACE_STORE: 'journal' });
  const cj = client(j.port);
  const cp = client(pgPort);
  const n = RATE * SECONDS;
  for (let at = 0; at < n; at += 1000) {
    const atoms = Array.from({ length: Math.min(1000, n - at) }, (_, k) => ({ type: 'ConceptNode', name: `vis-${at + k}`, embedding: b64(vector(at + k)), space: 'vis' }));
    const res = await cj.call('POST', '/atoms/batch', JSON.stringify({ atoms }));
    if (res.status !== 200) throw new Error(`journal import: ${res.status} ${res.body.slice(0, 200)}`);
  }
  const times: Record<'journal' | 'postgres', number[]> = { journal: [], postgres: [] };
  for (let q = 0; q < QUERIES + 50; q++) {
    const body = JSON.stringify({ embedding: b64(vector(1_000_000 + q)), space: 'vis', k: 10, mode: 'exact' });
    const order: ['journal' | 'postgres', typeof cj][] = q % 2 ? [['journal', cj], ['postgres', cp]] : [['postgres', cp], ['journal', cj]];
    const answers: string[] = [];
    for (const [name, c] of order) {
      const t0 = performance.now();
      const res = await c.call('POST', '/atoms/similar', body);
      const ms = performance.now() - t0;
      if (res.status !== 200) throw new Error(`${name} similar: ${res.status} ${res.body}`);
      answers.push(JSON.stringify(JSON.parse(res.body).results.map((r: { atom: { name: string } }) => r.atom.name)));
      if (q >= 50) times[name].push(ms); // the first 50 warm up
    }
    if (answers[0] !== answers[1]) throw new Error(`query ${q}: the two stores answered different neighbours`);
  }
  cj.agent.destroy();
  cp.agent.destroy();
  j.child.kill('SIGTERM');
  return { vectors: n, dim: DIM, queries: QUERIES, sameAnswers: true, journalMs: quantiles(times.journal), postgresMs: quantiles(times.postgres) };
}

async function main() {
  const out: Record<string, unknown> = { machine: 'shared 2-core box; PostgreSQL with default durability (fsync on, synchronous_commit on)' };
  // 1. batched inserts
  const url = await createDatabase('bench_insert');
  const store = new PostgresStore({ connectionString: url });
  const { atomspace } = await AtomSpace.openShared({ store });
  const pgRate = await inserts(atomspace);
  await atomspace.close();
  const dir = mkdtempSync(join(tmpdir(), 'pgbench-journal-'));
  temps.push(dir);
  const { atomspace: journal } = await AtomSpace.open({ dataDir: dir });
  const journalRate = await inserts(journal);
  await journal.close();
  out.inserts = { atoms: INSERT_ATOMS, dim: DIM, group: GROUP, postgresAtomsPerSecond: Math.round(pgRate), journalAtomsPerSecond: Math.round(journalRate) };
  console.error(JSON.stringify(out.inserts));
  // 2. visibility
  const vis = await visibility(await createDatabase('bench_vis'));
  out.visibility = { rate: RATE, seconds: SECONDS, ...vis.result };
  console.error(JSON.stringify(out.visibility));
  vis.a.child.kill('SIGTERM');
  // 3. exact similar latency, journal vs postgres (B)
  out.similar = await similarLatency(vis.b.port);
  vis.b.child.kill('SIGTERM');
  console.log(JSON.stringify(out, null, 2));
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
