/**
 * The AtomSpace kept in PostgreSQL (ATOMSPACE_STORE=postgres): the database is the system of
 * record; each replica's memory (hypergraph, embedding matrices, HNSW indexes) is a cache of
 * it, loaded at start and kept fresh by the change stream (postgres-feed.ts).
 *
 * A write is one transaction through the pool: the atoms, outgoing rows, vectors it changes,
 * then its change row (last, see postgres-feed.ts) and a NOTIFY. Uniqueness is the database's:
 * atoms are inserted with ON CONFLICT (key) DO NOTHING, so two replicas creating the same
 * node at once end with one row, and the loser reads the winner's id. Once committed, the
 * writer catches up with the stream (its own change included) before it answers: it reads its
 * own writes, in commit order with everyone else's.
 *
 * Batches go in as a few set-based statements (unnest of arrays), vectors as float32 bytes.
 * Existing rows are locked in id order (targets, truth values, vectors) so that concurrent
 * batches lock them in the same order.
 *
 * When PostgreSQL cannot be reached, writes fail with STORAGE_UNAVAILABLE (503 Retry-After);
 * reads are served from memory, which `status()` says how stale; the pool and the listener
 * reconnect by themselves when it returns.
 */
import { createHash } from 'node:crypto';

import pg from 'pg';

import { type Atom, AtomSpaceError, type AttentionValue, type TruthValue } from './atomspace.js';
import { EmbeddingError } from './embedding-space.js';
import { ATOM_COLUMNS, type AtomRow, ChangeFeed, CHANNEL, describe, type FeedLog, type OwnChange } from './postgres-feed.js';
import { migrate } from './postgres-migrations.js';
import type { ChangeSink, SharedStore, SharedStoreStatus, StoreEmbedding, StoreItem } from './store/shared-store.js';

export interface PostgresStoreOptions {
  /** postgres://user:password@host:port/database (libpq URL, as `pg` accepts). */
  connectionString: string;
  poolSize?: number;
  log?: FeedLog;
  /** Milliseconds to wait for a connection before a write is refused (default 3000). */
  connectTimeoutMs?: number;
}

/** int8 columns and arrays as JavaScript numbers (atom ids stay far below 2^53). */
const TYPES = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === 20) return (v: string) => Number(v);
    if (oid === 1016) {
      const parse = (pg.types.getTypeParser as (oid: number, format: 'text') => (v: string) => string[])(1016, 'text');
      return (v: string) => parse(v).map(Number);
    }
    return pg.types.getTypeParser(oid, format);
  },
};

const quiet: FeedLog = { info() {}, warn() {} };

/** Errors that say the database cannot be reached (or is going away), not that the request was wrong. */
function unreachable(error: unknown): boolean {
  const e = error as { code?: string; message?: string } | undefined;
  const code = e?.code ?? '';
  if (/^(08|57P|53)/.test(code)) return true; // connection exception, operator intervention, insufficient resources
  if (/^(ECONN|ENOTFOUND|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN)/.test(code)) return true;
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|connection is closed|Connection ended/i.test(e?.message ?? '');
}

/** The unique key of a node (type, name) or a link (type, outgoing as stored: sorted for unordered types). */
export function atomKey(type: string, nameOrOutgoing: string | number[]): Buffer {
  return createHash('sha256')
    .update(typeof nameOrOutgoing === 'string' ? `${type}\u0000${nameOrOutgoing}` : `${type}\u0000${nameOrOutgoing.join(',')}`)
    .digest();
}

function keyOf(item: StoreItem): Buffer {
  return 'node' in item ? atomKey(item.node.type, item.node.name) : atomKey(item.link.type, item.link.outgoing);
}


function atomOf(r: AtomRow): Atom {
  return {
    id: r.id,
    type: r.type,
    ...(r.outgoing ? { outgoing: r.outgoing } : { name: r.name! }),
    tv: { strength: r.tv_strength, confidence: r.tv_confidence },
    av: { sti: r.sti, lti: r.lti },
  };
}

function createOp(a: Atom): object {
  return a.outgoing ? { op: 'link', id: a.id, type: a.type, outgoing: a.outgoing, tv: a.tv, av: a.av } : { op: 'node', id: a.id, type: a.type, name: a.name, tv: a.tv, av: a.av };
}

function bytesOf(vector: Float32Array): Buffer {
  return Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength);
}

/** What a write transaction hands on once committed: its vectors' bytes (by atom and space), the spaces it confirmed. */
interface WriteOut {
  vectors: Map<string, Buffer>;
  spaces: Map<string, number>;
}

interface Pending {
  items: StoreItem[];
  resolve: (results: { atom: Atom; created: boolean }[]) => void;
  reject: (error: unknown) => void;
}

/** Group transactions of addBatch running at once; the batches that arrive meanwhile form the next. */
const GROUP_LANES = 2;
/** Items in one group transaction (a batch larger than this goes alone). */
const GROUP_ITEMS = 2000;

/** Safe to run again from the start: deadlocks and serialization failures. */
const RETRYABLE = new Set(['40001', '40P01']);

export class PostgresStore implements SharedStore {
  readonly description: string;
  readonly #pool: pg.Pool;
  readonly #log: FeedLog;
  #feed: ChangeFeed | undefined;
  #poolError: string | undefined;

  constructor(options: PostgresStoreOptions) {
    const url = new URL(options.connectionString);
    this.description = `postgresql://${url.hostname || url.searchParams.get('host') || 'localhost'}${url.port ? `:${url.port}` : ''}${url.pathname}`;
    this.#log = options.log ?? quiet;
    const config: pg.PoolConfig = {
      connectionString: options.connectionString,
      max: options.poolSize ?? 10,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 3000,
      idleTimeoutMillis: 30_000,
      types: TYPES,
      application_name: 'atenspace-serve',
      // A write never holds locks for long; one that does is a bug, not a reason to stall the others.
      statement_timeout: 60_000,
      idle_in_transaction_session_timeout: 60_000,
    };
    this.#pool = new pg.Pool(config);
    // An idle client whose connection drops (database restart) is removed from the pool; without this handler it would crash the process.
    this.#pool.on('error', (error) => {
      this.#poolError = describe(error);
    });
    // A client in use when its connection drops emits 'error' too (its query fails as well, and that failure is what is reported).
    this.#pool.on('connect', (client) => client.on('error', (error) => (this.#poolError = describe(error))));
    this.#listenConfig = { connectionString: options.connectionString, types: TYPES, application_name: 'atenspace-serve-listen', connectionTimeoutMillis: options.connectTimeoutMs ?? 3000, keepAlive: true };
  }

  readonly #listenConfig: pg.ClientConfig;

  async open(sink: ChangeSink): Promise<{ atoms: number; migrated: number[] }> {
    const migrated = await migrate(this.#pool);
    this.#feed = new ChangeFeed(this.#pool, this.#listenConfig, sink, this.#log);
    const atoms = await this.#feed.load();
    this.#feed.start();
    return { atoms, migrated };
  }

  status(): SharedStoreStatus {
    return this.#feed?.status() ?? { connected: false, staleSeconds: 0, error: 'not open' };
  }

  async close(): Promise<void> {
    await this.#feed?.close();
    await this.#pool.end();
  }

  // ----- writes -----

  /**
   * Group commit: batches that arrive while GROUP_LANES transactions are running wait and go
   * together into the next one (each keeps its own results; an atom two of them name is created
   * by the first). When a group fails for one batch's sake (an outgoing atom removed meanwhile, a
   * vector of the wrong dimension), its batches are retried one by one, so only that one fails.
   */
  addBatch(items: StoreItem[]): Promise<{ atom: Atom; created: boolean }[]> {
    if (!items.length) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.#queue.push({ items, resolve, reject });
      this.#drain();
    });
  }

  #drain(): void {
    while (this.#lanes < GROUP_LANES && this.#queue.length) {
      const group: Pending[] = [];
      let size = 0;
      while (this.#queue.length && (group.length === 0 || size + this.#queue[0]!.items.length <= GROUP_ITEMS)) {
        const next = this.#queue.shift()!;
        group.push(next);
        size += next.items.length;
      }
      this.#lanes++;
      void this.#commitGroup(group).finally(() => {
        this.#lanes--;
        this.#drain();
      });
    }
  }

  async #commitGroup(group: Pending[]): Promise<void> {
    try {
      const results = await this.#addItems(group.flatMap((p) => p.items));
      let at = 0;
      for (const p of group) {
        p.resolve(results.slice(at, at + p.items.length));
        at += p.items.length;
      }
    } catch (error) {
      const unavailable = error instanceof AtomSpaceError && error.code === 'STORAGE_UNAVAILABLE';
      if (group.length === 1 || unavailable) {
        for (const p of group) p.reject(error);
        return;
      }
      for (const p of group) await this.#addItems(p.items).then(p.resolve, p.reject);
    }
  }

  readonly #queue: Pending[] = [];
  #lanes = 0;
  /** Vector space dimensions known to be in the database (spaces are never dropped). */
  readonly #spaces = new Map<string, number>();

  async #addItems(items: StoreItem[]): Promise<{ atom: Atom; created: boolean }[]> {
    const keys = items.map(keyOf);
    const results = await this.#write(async (c, ops, out) => {
      // The atoms links name must exist, and stay until this commits (KEY SHARE blocks their removal).
      const targets = [...new Set(items.flatMap((i) => ('link' in i ? i.link.outgoing : [])))].sort((a, b) => a - b);
      if (targets.length) {
        const { rows } = await c.query<{ id: number }>('SELECT id FROM atomspace_atoms WHERE id = ANY($1::bigint[]) ORDER BY id FOR KEY SHARE', [targets]);
        const found = new Set(rows.map((r) => r.id));
        const missing = targets.find((id) => !found.has(id));
        if (missing !== undefined) throw new AtomSpaceError('ATOM_NOT_FOUND', `outgoing atom ${missing} does not exist`);
      }
      // Each distinct key once, in item order (ids are handed out in that order); the first item with a key creates it.
      // Concurrent batches naming the same new atoms in another order can deadlock: PostgreSQL breaks it, and the write is retried.
      const first = new Map<string, number>();
      keys.forEach((k, i) => {
        const hex = k.toString('hex');
        if (!first.has(hex)) first.set(hex, i);
      });
      const order = [...first.keys()];
      const byKey = new Map<string, Atom>();
      const existing = await c.query<AtomRow & { key: Buffer }>(
        `SELECT ${ATOM_COLUMNS}, key FROM atomspace_atoms WHERE key IN (SELECT substring($1::bytea FROM i * 32 + 1 FOR 32) FROM generate_series(0, $2::int - 1) AS i)`,
        [Buffer.concat(order.map((h) => Buffer.from(h, 'hex'))), order.length],
      );
      for (const r of existing.rows) byKey.set(r.key.toString('hex'), atomOf(r));
      const created = new Set<string>();
      let missing = order.filter((h) => !byKey.has(h));
      if (missing.length) {
        const cols = { type: [] as string[], name: [] as (string | null)[], outgoing: [] as (string | null)[], s: [] as number[], conf: [] as number[] };
        for (const h of missing) {
          const item = items[first.get(h)!]!;
          const tv = ('node' in item ? item.node.tv : item.link.tv) ?? { strength: 1, confidence: 0 };
          cols.type.push('node' in item ? item.node.type : item.link.type);
          cols.name.push('node' in item ? item.node.name : null);
          cols.outgoing.push('link' in item ? `{${item.link.outgoing.join(',')}}` : null);
          cols.s.push(tv.strength);
          cols.conf.push(tv.confidence);
        }
        const inserted = await c.query<AtomRow & { key: Buffer }>(
          `INSERT INTO atomspace_atoms (key, type, name, outgoing, tv_strength, tv_confidence)
           SELECT substring($1::bytea FROM (i - 1)::int * 32 + 1 FOR 32), t, n, o::bigint[], s, c
             FROM unnest($2::text[], $3::text[], $4::text[], $5::float8[], $6::float8[]) WITH ORDINALITY AS u(t, n, o, s, c, i) ORDER BY i
           ON CONFLICT (key) DO NOTHING RETURNING ${ATOM_COLUMNS}, key`,
          [Buffer.concat(missing.map((h) => Buffer.from(h, 'hex'))), cols.type, cols.name, cols.outgoing, cols.s, cols.conf],
        );
        for (const r of inserted.rows) {
          const hex = r.key.toString('hex');
          byKey.set(hex, atomOf(r));
          created.add(hex);
        }
        // Created by another replica between the two statements: theirs is the atom.
        missing = missing.filter((h) => !byKey.has(h));
        if (missing.length) {
          const raced = await c.query<AtomRow & { key: Buffer }>(`SELECT ${ATOM_COLUMNS}, key FROM atomspace_atoms WHERE key = ANY($1::bytea[])`, [missing.map((h) => Buffer.from(h, 'hex'))]);
          for (const r of raced.rows) byKey.set(r.key.toString('hex'), atomOf(r));
        }
        const newLinks = [...created].map((h) => byKey.get(h)!).filter((a) => a.outgoing);
        if (newLinks.length) {
          const link: number[] = [];
          const position: number[] = [];
          const target: number[] = [];
          for (const a of newLinks) a.outgoing!.forEach((t, p) => (link.push(a.id), position.push(p), target.push(t)));
          await c.query('INSERT INTO atomspace_outgoing (link_id, position, target_id) SELECT * FROM unnest($1::bigint[], $2::int[], $3::bigint[])', [link, position, target]);
        }
        for (const h of created) ops.push(createOp(byKey.get(h)!));
      }
      // Truth values given for atoms that already were there (or for a key's later items): the last one wins.
      const tvUpdates = new Map<number, TruthValue>();
      items.forEach((item, i) => {
        const hex = keys[i]!.toString('hex');
        const tv = 'node' in item ? item.node.tv : item.link.tv;
        if (tv && !(created.has(hex) && first.get(hex) === i)) tvUpdates.set(byKey.get(hex)!.id, tv);
      });
      if (tvUpdates.size) {
        const ids = [...tvUpdates.keys()].sort((a, b) => a - b);
        const updated = await c.query<AtomRow>(
          `UPDATE atomspace_atoms a SET tv_strength = u.s, tv_confidence = u.c FROM unnest($1::bigint[], $2::float8[], $3::float8[]) AS u(id, s, c)
            WHERE a.id = u.id RETURNING ${ATOM_COLUMNS.split(', ').map((c) => `a.${c}`).join(', ')}`,
          [ids, ids.map((id) => tvUpdates.get(id)!.strength), ids.map((id) => tvUpdates.get(id)!.confidence)],
        );
        for (const r of updated.rows) {
          const atom = atomOf(r);
          for (const [hex, a] of byKey) if (a.id === atom.id) byKey.set(hex, atom);
          ops.push({ op: 'update', id: atom.id, tv: atom.tv, av: atom.av });
        }
      }
      // Vectors: the last one given for an (atom, space) wins.
      const vectors = new Map<string, { id: number; e: StoreEmbedding }>();
      items.forEach((item, i) => {
        if (!('node' in item)) return;
        const id = byKey.get(keys[i]!.toString('hex'))!.id;
        for (const e of item.node.embeddings ?? []) vectors.set(`${id}\u0000${e.space}`, { id, e });
      });
      if (vectors.size) await this.#embed(c, ops, [...vectors.values()], out);
      return items.map((_, i) => {
        const hex = keys[i]!.toString('hex');
        return { atom: byKey.get(hex)!, created: created.has(hex) && first.get(hex) === i };
      });
    });
    return results;
  }

  async update(id: number, change: { tv?: TruthValue; av?: Partial<AttentionValue> }): Promise<Atom> {
    return this.#write(async (c, ops) => {
      const { rows } = await c.query<AtomRow>(
        `UPDATE atomspace_atoms SET tv_strength = coalesce($2, tv_strength), tv_confidence = coalesce($3, tv_confidence), sti = coalesce($4, sti), lti = coalesce($5, lti)
          WHERE id = $1 RETURNING ${ATOM_COLUMNS}`,
        [id, change.tv?.strength ?? null, change.tv?.confidence ?? null, change.av?.sti ?? null, change.av?.lti ?? null],
      );
      if (!rows[0]) throw new AtomSpaceError('ATOM_NOT_FOUND', `no atom ${id}`);
      const atom = atomOf(rows[0]);
      ops.push({ op: 'update', id, tv: atom.tv, av: atom.av });
      return atom;
    });
  }

  async remove(id: number, recursive: boolean): Promise<number[]> {
    return this.#write(async (c, ops) => {
      // Locked first: a link being added to it now waits, then finds it gone.
      const atom = await c.query('SELECT id FROM atomspace_atoms WHERE id = $1 FOR UPDATE', [id]);
      if (!atom.rowCount) throw new AtomSpaceError('ATOM_NOT_FOUND', `no atom ${id}`);
      let order: number[];
      if (!recursive) {
        const incoming = await c.query<{ link_id: number; n: number }>('SELECT link_id, count(*) OVER () AS n FROM atomspace_outgoing WHERE target_id = $1 GROUP BY link_id ORDER BY link_id LIMIT 5', [id]);
        if (incoming.rows.length) {
          const n = incoming.rows[0]!.n;
          throw new AtomSpaceError('HAS_INCOMING', `atom ${id} is in ${n} link(s) (${incoming.rows.map((r) => r.link_id).join(', ')}); remove them first or pass recursive=true`);
        }
        order = [id];
      } else {
        // Every link above it, deepest first (a link goes before the atoms it contains).
        const { rows } = await c.query<{ id: number }>(
          `WITH RECURSIVE up(id, depth) AS (
             SELECT $1::bigint, 0
             UNION ALL
             SELECT o.link_id, up.depth + 1 FROM atomspace_outgoing o JOIN up ON o.target_id = up.id WHERE up.depth < 1000
           )
           SELECT id FROM up GROUP BY id ORDER BY max(depth) DESC, id`,
          [id],
        );
        order = rows.map((r) => r.id);
        await c.query('SELECT id FROM atomspace_atoms WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE', [order]);
      }
      await c.query('DELETE FROM atomspace_outgoing WHERE link_id = ANY($1::bigint[])', [order]);
      await c.query('DELETE FROM atomspace_atoms WHERE id = ANY($1::bigint[])', [order]);
      ops.push({ op: 'remove', ids: order });
      return order;
    });
  }

  async setEmbedding(id: number, embedding: StoreEmbedding): Promise<void> {
    await this.#write(async (c, ops, out) => {
      const atom = await c.query('SELECT id FROM atomspace_atoms WHERE id = $1 FOR KEY SHARE', [id]);
      if (!atom.rowCount) throw new AtomSpaceError('ATOM_NOT_FOUND', `no atom ${id}`);
      await this.#embed(c, ops, [{ id, e: embedding }], out);
    });
  }

  /** Upsert vectors (creating their spaces), checking each space's dimension; `out` gets their bytes by atom and space, and the spaces confirmed. */
  async #embed(c: pg.PoolClient, ops: object[], vectors: { id: number; e: StoreEmbedding }[], out: WriteOut): Promise<void> {
    const spaces = new Map<string, StoreEmbedding>();
    for (const { e } of vectors) if (!spaces.has(e.space)) spaces.set(e.space, e);
    const unknown = [...spaces.keys()].filter((n) => !this.#spaces.has(n)).sort();
    const dims = new Map<string, number>();
    if (unknown.length) {
      await c.query('INSERT INTO atomspace_spaces (name, dim, model) SELECT * FROM unnest($1::text[], $2::int[], $3::text[]) ON CONFLICT (name) DO NOTHING', [
        unknown,
        unknown.map((n) => spaces.get(n)!.vector.length),
        unknown.map((n) => spaces.get(n)!.model),
      ]);
      const { rows } = await c.query<{ name: string; dim: number }>('SELECT name, dim FROM atomspace_spaces WHERE name = ANY($1::text[])', [unknown]);
      // Known for good only once this commits (kept by #write).
      for (const r of rows) dims.set(r.name, r.dim);
    }
    for (const { e } of vectors) {
      const dim = this.#spaces.get(e.space) ?? dims.get(e.space)!;
      if (dim !== e.vector.length) throw new EmbeddingError(`space '${e.space}' holds ${dim}-dimensional vectors, got ${e.vector.length}`);
    }
    vectors.sort((a, b) => a.id - b.id || (a.e.space < b.e.space ? -1 : a.e.space > b.e.space ? 1 : 0));
    // All vectors as one binary parameter (pg sends a Buffer as binary; a bytea[] would go as hex text), cut apart in SQL.
    const bytes = vectors.map((v) => bytesOf(v.e.vector));
    const offsets: number[] = [];
    let at = 0;
    for (const b of bytes) {
      offsets.push(at);
      at += b.length;
    }
    await c.query(
      `INSERT INTO atomspace_embeddings (atom_id, space, model, vector)
       SELECT id, space, model, substring($4::bytea FROM off + 1 FOR len) FROM unnest($1::bigint[], $2::text[], $3::text[], $5::int[], $6::int[]) AS u(id, space, model, off, len)
       ON CONFLICT (atom_id, space) DO UPDATE SET model = excluded.model, vector = excluded.vector`,
      [vectors.map((v) => v.id), vectors.map((v) => v.e.space), vectors.map((v) => v.e.model), Buffer.concat(bytes), offsets, bytes.map((b) => b.length)],
    );
    for (let i = 0; i < vectors.length; i++) {
      const v = vectors[i]!;
      ops.push({ op: 'embed', id: v.id, space: v.e.space, model: v.e.model, dim: v.e.vector.length });
      out.vectors.set(`${v.id}\u0000${v.e.space}`, bytes[i]!);
    }
    for (const [name, dim] of dims) out.spaces.set(name, dim);
  }

  /**
   * Run `work` in a transaction that ends by recording its ops as one change (and NOTIFY);
   * after the commit, memory catches up with the stream (this change included).
   */
  async #write<T>(work: (c: pg.PoolClient, ops: object[], out: WriteOut) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      let client: pg.PoolClient | undefined;
      let committed = false;
      try {
        client = await this.#pool.connect();
        await client.query('BEGIN');
        const ops: object[] = [];
        // The vectors this change writes: the catch-up that follows takes them from here rather than reading them back.
        const out: WriteOut = { vectors: new Map(), spaces: new Map() };
        const result = await work(client, ops, out);
        let seq: number | undefined;
        if (ops.length) {
          const change = await client.query<{ seq: number }>(
            `WITH c AS (INSERT INTO atomspace_changes (ops) VALUES ($1::json) RETURNING seq) SELECT seq, pg_notify('${CHANNEL}', seq::text) FROM c`,
            [JSON.stringify(ops)],
          );
          seq = change.rows[0]!.seq;
        }
        await client.query('COMMIT');
        committed = true;
        client.release();
        client = undefined;
        for (const [name, dim] of out.spaces) this.#spaces.set(name, dim);
        if (seq !== undefined) await this.#catchUp({ seq, ops, vectors: out.vectors });
        return result;
      } catch (error) {
        if (client) {
          const broken = unreachable(error);
          if (!broken) await client.query('ROLLBACK').catch(() => undefined);
          client.release(broken ? (error as Error) : undefined);
        }
        if (committed) throw error;
        if (error instanceof AtomSpaceError) throw error;
        const code = (error as { code?: string }).code;
        if (code && RETRYABLE.has(code) && attempt < 5) continue;
        if (code === '23503') throw new AtomSpaceError('ATOM_NOT_FOUND', `an atom this change names was removed meanwhile (${describe(error)})`);
        if (unreachable(error)) {
          const stale = this.status();
          throw new AtomSpaceError(
            'STORAGE_UNAVAILABLE',
            `the AtomSpace cannot reach PostgreSQL at ${this.description} (${describe(error)}${this.#poolError && this.#poolError !== describe(error) ? `; ${this.#poolError}` : ''}); the change was not applied, retry later. Reads are served from memory${stale.staleSeconds > 0 ? `, ${stale.staleSeconds.toFixed(1)} s stale` : ''}`,
          );
        }
        throw error;
      }
    }
  }

  /** After a commit: memory catches up; when the database went away right after the commit, the next catch-up brings it. */
  async #catchUp(own: OwnChange): Promise<void> {
    try {
      await this.#feed!.sync(own);
    } catch (error) {
      throw new AtomSpaceError(
        'STORAGE_UNAVAILABLE',
        `the change was committed to PostgreSQL, but the connection was lost before this replica could read it back (${describe(error)}); it will appear once PostgreSQL answers again`,
      );
    }
  }
}
