// `npm run atomspace -- migrate` (node dist/scripts/atomspace-cli.js) moves a journal space into
// PostgreSQL and back, exactly: the journal space, the database and the journal written back
// load the same atoms (ids, types, names, outgoing, tv, av) and bit-identical vectors, and the
// next atom created gets the same id in all three.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { AtomSpace } from '../../src/atomspace/atomspace.js';
import { PostgresStore } from '../../src/atomspace/postgres-store.js';
import { ensureBuilt, repoRoot } from '../helpers/deploy.js';
import { type PgCluster, postgresSkip, startCluster } from '../helpers/postgres.js';

const CLI = join(repoRoot, 'dist', 'scripts', 'atomspace-cli.js');

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const res = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, DATABASE_URL: '' } });
  return { status: res.status, stdout: res.stdout, stderr: res.stderr };
}

/** Everything an AtomSpace serves: atoms in id order, and per space each atom's vector bytes. */
function contents(space: AtomSpace) {
  const atoms = space.find({ limit: Number.MAX_SAFE_INTEGER }).atoms;
  const vectors: Record<string, Record<number, string>> = {};
  for (const s of space.spaces()) {
    vectors[`${s.name} dim=${s.dim} model=${s.model}`] = Object.fromEntries(atoms.filter((a) => s.has(a.id)).map((a) => [a.id, Buffer.from(space.embedding(a.id, s.name)!.buffer).toString('hex')]));
  }
  return { atoms, vectors };
}

const skip = postgresSkip();
if (skip) {
  t.plan(0, `journal <-> postgres migration: ${skip}`);
} else {
  let cluster: PgCluster;
  const dirs: string[] = [];
  const tempDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'atenspace-migrate-'));
    dirs.push(dir);
    return dir;
  };
  t.before(async () => {
    const complaint = ensureBuilt();
    if (complaint) t.comment(complaint);
    // ensureBuilt looks at src/ only: the CLI is in scripts/.
    if (!existsSync(CLI) || statSync(CLI).mtimeMs < statSync(join(repoRoot, 'scripts', 'atomspace-cli.ts')).mtimeMs) {
      spawnSync('npm', ['run', '--silent', 'build:ts'], { cwd: repoRoot, encoding: 'utf8', timeout: 180_000 });
    }
    cluster = await startCluster();
  });
  t.teardown(() => {
    cluster?.destroy();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  t.test('journal -> postgres -> journal is exact', async (t) => {
    // A journal space with a history: a snapshot (normalised vectors) and journal records after it (vectors as given).
    const source = tempDir();
    const { atomspace: j } = await AtomSpace.open({ dataDir: source });
    const nodes = await j.addBatch(
      Array.from({ length: 300 }, (_, i) => ({
        node: {
          type: i % 3 ? 'ConceptNode' : 'PredicateNode',
          name: `n${i} ✓ "quoted" \\ ${'x'.repeat(i % 7)}`,
          tv: { strength: (i % 10) / 10, confidence: 1 / (i + 3) },
          embeddings: [{ space: 'text', model: 'demo-embedder', vector: Array.from({ length: 24 }, (_, d) => Math.sin(i * 0.37 + d) * 1e3 + 1e-3 * d) }],
        },
      })),
    );
    const ids = nodes.map((r) => r.atom.id);
    await j.snapshot();
    for (let i = 0; i < 40; i++) await j.addLink({ type: i % 2 ? 'SimilarityLink' : 'ListLink', outgoing: [ids[(i * 7) % 300]!, ids[(i * 13 + 5) % 300]!, ...(i % 4 ? [] : [ids[i]!])] });
    await j.addNode({ type: 'ConceptNode', name: 'image-only', embeddings: [{ space: 'image', model: null, vector: [0.1, -2, 3e-7, 4] }] });
    await j.update(ids[5]!, { av: { sti: 12.5, lti: -3 } });
    await j.setEmbedding(ids[6]!, { space: 'text', model: 'demo-embedder', vector: Array.from({ length: 24 }, (_, d) => d + 1) });
    await j.remove(ids[7]!, true);
    await j.remove(ids[299]!, true); // the highest node id: the next id is past it all the same
    const expected = contents(j);
    await j.close();
    t.ok(expected.atoms.length > 300 && Object.keys(expected.vectors).length === 2, `${expected.atoms.length} atoms in 2 spaces`);

    const url = await cluster.createDatabase('migrated');
    const there = cli('migrate', '--from', 'journal', '--to', 'postgres', '--data-dir', source, '--database-url', url);
    t.equal(there.status, 0, `journal -> postgres: ${there.stderr}`);
    const report = JSON.parse(there.stdout);
    t.match(report, { from: 'journal', to: 'postgres', atoms: expected.atoms.length, spaces: 2, vectors: 300 - 2 + 1 });

    const back = tempDir();
    const home = cli('migrate', '--from', 'postgres', '--to', 'journal', '--data-dir', back, '--database-url', url);
    t.equal(home.status, 0, `postgres -> journal: ${home.stderr}`);
    t.match(JSON.parse(home.stdout), { atoms: expected.atoms.length, vectors: report.vectors, nextId: report.nextId });

    const store = new PostgresStore({ connectionString: url });
    const { atomspace: p } = await AtomSpace.openShared({ store });
    const { atomspace: j1 } = await AtomSpace.open({ dataDir: source });
    const { atomspace: j2 } = await AtomSpace.open({ dataDir: back });
    t.teardown(async () => {
      for (const s of [p, j1, j2]) await s.close();
    });
    t.same(contents(p), expected, 'PostgreSQL serves exactly the journal space');
    t.same(contents(j2), expected, 'the journal written back holds exactly the same');
    t.same(contents(j1), expected, 'the source is untouched');
    const next = await Promise.all([p, j1, j2].map((s) => s.addNode({ type: 'ConceptNode', name: 'the next one' })));
    t.same(next.map((r) => r.atom.id), [next[0]!.atom.id, next[0]!.atom.id, next[0]!.atom.id], `the next atom gets the same id everywhere (${next[0]!.atom.id})`);
    t.ok(next[0]!.atom.id > ids[299]!);
  });

  t.test('refusals: a database that holds atoms, a data directory that holds a journal, bad usage', async (t) => {
    const source = tempDir();
    const { atomspace: j } = await AtomSpace.open({ dataDir: source });
    await j.addNode({ type: 'ConceptNode', name: 'a' });
    await j.close();
    const url = await cluster.createDatabase('busy');
    t.equal(cli('migrate', '--from', 'journal', '--to', 'postgres', '--data-dir', source, '--database-url', url).status, 0);
    const again = cli('migrate', '--from', 'journal', '--to', 'postgres', '--data-dir', source, '--database-url', url);
    t.equal(again.status, 1);
    t.match(again.stderr, /the database already holds 1 atoms: migrate into a database without atoms/);
    const into = cli('migrate', '--from', 'postgres', '--to', 'journal', '--data-dir', source, '--database-url', url);
    t.equal(into.status, 1);
    t.match(into.stderr, /already holds an AtomSpace journal/);
    const empty = cli('migrate', '--from', 'journal', '--to', 'postgres', '--data-dir', tempDir(), '--database-url', url);
    t.match(empty, { status: 1, stderr: /holds no AtomSpace journal or snapshot/ });
    t.match(cli('migrate', '--from', 'journal', '--to', 'journal', '--database-url', url), { status: 2, stderr: /cannot migrate --from journal --to journal/ });
    t.match(cli('migrate', '--from', 'journal', '--to', 'postgres', '--data-dir', source), { status: 2, stderr: /give --database-url or set DATABASE_URL/ });
    t.match(cli('copy'), { status: 2, stderr: /usage: npm run atomspace -- migrate/ });
  });
}
