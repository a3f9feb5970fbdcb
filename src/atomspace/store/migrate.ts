/**
 * Moving an AtomSpace between stores, exactly: atom ids, types, names, outgoing sets, truth
 * and attention values, and every vector's bytes as the source store holds them (the journal
 * keeps vectors as given, a snapshot keeps them normalised; either way the same float32 bytes
 * arrive, so both stores load the same memory). The next atom id carries over too.
 *
 * journal -> postgres: into a database without atoms (the schema is created), in one
 * transaction: nothing lands unless everything does. Run it before servers use the database
 * (they load what is there when they start).
 * postgres -> journal: into a data directory without journal or snapshot files, read from one
 * snapshot of the database.
 */
import { existsSync, readdirSync } from 'node:fs';

import type pg from 'pg';

import { AtomSpace, type Atom } from '../atomspace.js';
import { Journal, type JournalRecord } from '../journal.js';
import { atomRecord, vectorBytes } from '../postgres-feed.js';
import { migrate as migrateSchema } from '../postgres-migrations.js';
import { atomKey } from '../postgres-store.js';
import type { TypeDefinition } from '../types.js';

export interface MigrationReport {
  atoms: number;
  vectors: number;
  spaces: number;
  nextId: number;
}

interface RawVector {
  space: string;
  model: string | null;
  dim: number;
  bytes: Uint8Array;
}

/** What a journal directory holds: the vectors' bytes as stored, by atom, and the next id. */
async function journalVectors(dataDir: string): Promise<{ vectors: Map<number, Map<string, RawVector>>; nextId: number }> {
  const journal = new Journal(dataDir);
  const recovered = await journal.recover();
  await journal.close();
  const vectors = new Map<number, Map<string, RawVector>>();
  let nextId = 1;
  for (const record of [...(recovered.snapshot ?? []), ...recovered.journal]) {
    const r = record.json as { op: string; id?: number; ids?: number[]; space?: string; model?: string | null; dim?: number; value?: number };
    if (r.op === 'node' || r.op === 'link') nextId = Math.max(nextId, r.id! + 1);
    else if (r.op === 'next-id') nextId = Math.max(nextId, r.value!);
    else if (r.op === 'remove') for (const id of r.ids!) vectors.delete(id);
    else if (r.op === 'embed' && record.bytes) {
      let spaces = vectors.get(r.id!);
      if (!spaces) vectors.set(r.id!, (spaces = new Map()));
      spaces.set(r.space!, { space: r.space!, model: r.model ?? null, dim: r.dim!, bytes: record.bytes });
    }
  }
  return { vectors, nextId };
}

const PAGE = 5000;

/** Copy the journal space in `dataDir` into an empty PostgreSQL database. */
export async function journalToPostgres(dataDir: string, pool: pg.Pool, types: TypeDefinition[] = []): Promise<MigrationReport> {
  if (!existsSync(dataDir) || !readdirSync(dataDir).some((f) => /^(journal|snapshot)-\d+\./.test(f))) {
    throw new Error(`${dataDir} holds no AtomSpace journal or snapshot`);
  }
  const raw = await journalVectors(dataDir);
  const { atomspace } = await AtomSpace.open({ dataDir, types });
  try {
    const atoms = atomspace.find({ limit: Number.MAX_SAFE_INTEGER }).atoms;
    await migrateSchema(pool);
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM atomspace_atoms');
      if (Number(rows[0]!.n) > 0) throw new Error(`the database already holds ${rows[0]!.n} atoms: migrate into a database without atoms`);
      for (let at = 0; at < atoms.length; at += PAGE) await insertAtoms(client, atoms.slice(at, at + PAGE));
      const spaces = atomspace.spaces();
      for (const s of spaces) await client.query('INSERT INTO atomspace_spaces (name, dim, model) VALUES ($1, $2, $3)', [s.name, s.dim, s.model]);
      let vectors = 0;
      let page: { id: number; v: RawVector }[] = [];
      const flush = async () => {
        if (!page.length) return;
        await client.query('INSERT INTO atomspace_embeddings (atom_id, space, model, vector) SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bytea[])', [
          page.map((p) => p.id),
          page.map((p) => p.v.space),
          page.map((p) => p.v.model),
          page.map((p) => Buffer.from(p.v.bytes.buffer, p.v.bytes.byteOffset, p.v.bytes.byteLength)),
        ]);
        vectors += page.length;
        page = [];
      };
      for (const a of atoms) {
        for (const s of atomspace.spacesOf(a.id)) {
          const v = raw.vectors.get(a.id)?.get(s);
          if (!v) throw new Error(`atom ${a.id} has a vector in space '${s}' that the journal records do not hold`);
          page.push({ id: a.id, v });
          if (page.length >= PAGE) await flush();
        }
      }
      await flush();
      // The next atom created gets the id the journal would have given it.
      await client.query(`SELECT setval(pg_get_serial_sequence('atomspace_atoms', 'id'), $1, $2)`, [Math.max(1, raw.nextId - 1), raw.nextId > 1]);
      await client.query('COMMIT');
      return { atoms: atoms.length, vectors, spaces: spaces.length, nextId: raw.nextId };
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  } finally {
    await atomspace.close();
  }
}

async function insertAtoms(client: pg.PoolClient, atoms: Atom[]): Promise<void> {
  await client.query(
    `INSERT INTO atomspace_atoms (id, key, type, name, outgoing, tv_strength, tv_confidence, sti, lti)
     SELECT id, k, t, n, o::bigint[], s, c, sti, lti FROM unnest($1::bigint[], $2::bytea[], $3::text[], $4::text[], $5::text[], $6::float8[], $7::float8[], $8::float8[], $9::float8[]) AS u(id, k, t, n, o, s, c, sti, lti)`,
    [
      atoms.map((a) => a.id),
      atoms.map((a) => atomKey(a.type, a.outgoing ?? a.name!)),
      atoms.map((a) => a.type),
      atoms.map((a) => a.name ?? null),
      atoms.map((a) => (a.outgoing ? `{${a.outgoing.join(',')}}` : null)),
      atoms.map((a) => a.tv.strength),
      atoms.map((a) => a.tv.confidence),
      atoms.map((a) => a.av.sti),
      atoms.map((a) => a.av.lti),
    ],
  );
  const link: number[] = [];
  const position: number[] = [];
  const target: number[] = [];
  for (const a of atoms) a.outgoing?.forEach((t, p) => (link.push(a.id), position.push(p), target.push(t)));
  if (link.length) await client.query('INSERT INTO atomspace_outgoing (link_id, position, target_id) SELECT * FROM unnest($1::bigint[], $2::int[], $3::bigint[])', [link, position, target]);
}

/** Write the PostgreSQL AtomSpace into `dataDir` as a journal (the directory must hold none). */
export async function postgresToJournal(pool: pg.Pool, dataDir: string): Promise<MigrationReport> {
  if (existsSync(dataDir) && readdirSync(dataDir).some((f) => /^(journal|snapshot)-\d+\./.test(f))) {
    throw new Error(`${dataDir} already holds an AtomSpace journal: migrate into an empty data directory`);
  }
  const client = await pool.connect();
  const journal = new Journal(dataDir);
  try {
    await journal.recover();
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    let atoms = 0;
    for (let after = 0; ; ) {
      const { rows } = await client.query('SELECT id, type, name, outgoing, tv_strength, tv_confidence, sti, lti FROM atomspace_atoms WHERE id > $1 ORDER BY id LIMIT $2', [after, PAGE]);
      if (!rows.length) break;
      await journal.append(rows.map((r) => atomRecord({ ...r, id: Number(r.id), outgoing: r.outgoing?.map(Number) ?? null })));
      atoms += rows.length;
      after = Number(rows[rows.length - 1]!.id);
    }
    const spaces = await client.query<{ name: string; dim: number; model: string | null }>('SELECT name, dim, model FROM atomspace_spaces ORDER BY name');
    const dims = new Map(spaces.rows.map((s) => [s.name, s]));
    let vectors = 0;
    for (let afterId = 0, afterSpace = ''; ; ) {
      const { rows } = await client.query<{ atom_id: string | number; space: string; vector: Buffer }>(
        'SELECT atom_id, space, vector FROM atomspace_embeddings WHERE (atom_id, space) > ($1, $2) ORDER BY atom_id, space LIMIT $3',
        [afterId, afterSpace, PAGE],
      );
      if (!rows.length) break;
      const records: JournalRecord[] = rows.map((r) => ({ json: { op: 'embed', id: Number(r.atom_id), space: r.space, model: dims.get(r.space)!.model, dim: dims.get(r.space)!.dim }, bytes: vectorBytes(r.vector) }));
      await journal.append(records);
      vectors += rows.length;
      afterId = Number(rows[rows.length - 1]!.atom_id);
      afterSpace = rows[rows.length - 1]!.space;
    }
    const seq = await client.query<{ last: string; called: boolean }>(`SELECT last_value AS last, is_called AS called FROM atomspace_atoms_id_seq`);
    const nextId = seq.rows[0]!.called ? Number(seq.rows[0]!.last) + 1 : Number(seq.rows[0]!.last);
    await journal.append([{ json: { op: 'next-id', value: nextId } }]);
    await client.query('COMMIT');
    return { atoms, vectors, spaces: spaces.rows.length, nextId };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
    await journal.close();
  }
}
