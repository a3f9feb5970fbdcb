/**
 * Keeps a replica's memory up to date with the PostgreSQL AtomSpace: a full load at start,
 * then the change stream (atomspace_changes), applied in order, exactly once each.
 *
 * Catching up exactly. Each write transaction inserts one change row last (its `seq` from an
 * identity sequence, its `xid` the transaction's id). Sequence values are handed out before
 * commit, so commits can land out of seq order: a reader that asks for "seq > last seen" would
 * skip a lower seq still committing. Instead a replica remembers the MVCC snapshot its memory
 * corresponds to (pg_current_snapshot() of its last read) and asks, in a REPEATABLE READ
 * transaction, for the change rows visible now but not in that snapshot:
 *   xid >= xmin(last) AND NOT pg_visible_in_snapshot(xid, last)
 * That is exactly the transactions that committed in between, whatever their seq, with no
 * lock that serialises writers' commits. Rows come in seq order; two writes that touched the
 * same row were ordered by PostgreSQL's row locks before they inserted their change rows (the
 * change row is the last statement), so seq order is their commit order, and writes that did
 * not touch the same rows commute. Vectors are read from atomspace_embeddings in the same
 * snapshot (the change rows carry only which atom and space).
 *
 * Low latency: LISTEN atomspace_changes on a dedicated connection (each write NOTIFYs at
 * commit) triggers a catch-up; catch-ups coalesce (at most one running and one queued). A
 * dropped listener reconnects with backoff and catches up; a poll every POLL_MS catches up
 * anyway (and notices that the database is back). Nothing is lost by a missed notification:
 * the snapshot, not the notification, says what is new.
 */
import pg from 'pg';

import type { JournalRecord } from './journal.js';
import type { ChangeSink } from './store/shared-store.js';

export const CHANNEL = 'atomspace_changes';
const POLL_MS = 1000;
const RECONNECT_MIN_MS = 200;
const RECONNECT_MAX_MS = 5000;
/** Rows per page while loading. */
const LOAD_PAGE = 20_000;

/** A change this replica committed: what it wrote, so that the catch-up need not read it back. */
export interface OwnChange {
  seq: number;
  ops: object[];
  vectors: Map<string, Buffer>;
}

export interface FeedLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

/** A row of atomspace_atoms, as ATOM_COLUMNS select it. */
export interface AtomRow {
  id: number;
  type: string;
  name: string | null;
  outgoing: number[] | null;
  tv_strength: number;
  tv_confidence: number;
  sti: number;
  lti: number;
}

export const ATOM_COLUMNS = 'id, type, name, outgoing, tv_strength, tv_confidence, sti, lti';

/** The record a row of atomspace_atoms replays as. */
export function atomRecord(r: AtomRow): JournalRecord {
  const tv = { strength: r.tv_strength, confidence: r.tv_confidence };
  const av = { sti: r.sti, lti: r.lti };
  return { json: r.outgoing ? { op: 'link', id: r.id, type: r.type, outgoing: r.outgoing, tv, av } : { op: 'node', id: r.id, type: r.type, name: r.name, tv, av } };
}

/** A vector's bytes as a view the AtomSpace can read in place (a Buffer from pg may be unaligned). */
export function vectorBytes(buffer: Buffer): Uint8Array {
  return buffer.byteOffset % 4 === 0 ? new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength) : new Uint8Array(buffer);
}

export class ChangeFeed {
  /** The snapshot memory corresponds to (pg_snapshot text); undefined before the load. */
  #snapshot: string | undefined;
  #running: Promise<void> | undefined;
  #queued: Promise<void> | undefined;
  #listener: pg.Client | undefined;
  #reconnectMs = RECONNECT_MIN_MS;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #pollTimer: NodeJS.Timeout | undefined;
  #closed = false;
  /** When memory was last known to be current (a catch-up that succeeded started then). */
  #currentAt = Date.now();
  #error: string | undefined;
  #lastSeq = 0;
  /** This replica's own changes not applied yet, by seq. */
  readonly #own = new Map<number, OwnChange>();

  constructor(
    private readonly pool: pg.Pool,
    private readonly listenConfig: pg.ClientConfig,
    private readonly sink: ChangeSink,
    private readonly log: FeedLog,
  ) {}

  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** Load every atom and vector as of one snapshot; the stream continues from it. */
  async load(): Promise<number> {
    const { snap, atoms } = await this.#inSnapshot(async (client) => {
      let atoms = 0;
      const snap = await client.query<{ snap: string; seq: number | null }>('SELECT pg_current_snapshot()::text AS snap, (SELECT max(seq) FROM atomspace_changes) AS seq');
      for (let after = 0; ; ) {
        const { rows } = await client.query<AtomRow>(`SELECT ${ATOM_COLUMNS} FROM atomspace_atoms WHERE id > $1 ORDER BY id LIMIT $2`, [after, LOAD_PAGE]);
        if (!rows.length) break;
        this.sink.apply(rows.map(atomRecord));
        atoms += rows.length;
        after = rows[rows.length - 1]!.id;
      }
      const spaces = await client.query<{ name: string; dim: number; model: string | null }>('SELECT name, dim, model FROM atomspace_spaces');
      const dims = new Map(spaces.rows.map((s) => [s.name, s]));
      for (let afterId = 0, afterSpace = ''; ; ) {
        const { rows } = await client.query<{ atom_id: number; space: string; model: string | null; vector: Buffer }>(
          'SELECT atom_id, space, model, vector FROM atomspace_embeddings WHERE (atom_id, space) > ($1, $2) ORDER BY atom_id, space LIMIT $3',
          [afterId, afterSpace, LOAD_PAGE],
        );
        if (!rows.length) break;
        this.sink.apply(rows.map((r) => ({ json: { op: 'embed', id: r.atom_id, space: r.space, model: dims.get(r.space)?.model ?? r.model, dim: dims.get(r.space)?.dim ?? r.vector.length / 4 }, bytes: vectorBytes(r.vector) })));
        afterId = rows[rows.length - 1]!.atom_id;
        afterSpace = rows[rows.length - 1]!.space;
      }
      return { snap: snap.rows[0]!, atoms };
    });
    this.#snapshot = snap.snap;
    this.#lastSeq = snap.seq ?? 0;
    this.#currentAt = Date.now();
    return atoms;
  }

  /** Run `work` in one read-only REPEATABLE READ transaction (one snapshot of the database) on a pooled client. */
  async #inSnapshot<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  /** Start following: the listener and the poll. */
  start(): void {
    void this.#listen();
    this.#pollTimer = setInterval(() => void this.sync().catch(() => undefined), POLL_MS);
    this.#pollTimer.unref();
  }

  /**
   * Resolves once memory holds every change committed before this call (a catch-up that
   * started after it has finished); rejects when the database could not be read.
   */
  sync(own?: OwnChange): Promise<void> {
    // A change this replica wrote: its ops and vectors are here already, no need to read them back.
    if (own) this.#own.set(own.seq, own);
    if (this.#queued) return this.#queued;
    if (!this.#running) return this.#start();
    const queued = this.#running.catch(() => undefined).then(() => {
      this.#queued = undefined;
      return this.#start();
    });
    this.#queued = queued;
    return queued;
  }

  #start(): Promise<void> {
    const started = Date.now();
    const running = this.#catchUp().then(
      () => {
        this.#currentAt = Math.max(this.#currentAt, started);
        if (this.#error) this.log.info({ seq: this.#lastSeq }, 'the AtomSpace change stream is readable again; memory is current');
        this.#error = undefined;
      },
      (error: unknown) => {
        const message = describe(error);
        if (this.#error === undefined) this.log.warn({ err: message }, 'the AtomSpace change stream cannot be read: serving reads from memory until PostgreSQL answers again');
        this.#error = message;
        throw error;
      },
    );
    this.#running = running.finally(() => {
      if (this.#running === tracked) this.#running = undefined;
    });
    const tracked = this.#running;
    tracked.catch(() => undefined);
    return running;
  }

  async #catchUp(): Promise<void> {
    const since = this.#snapshot;
    if (since === undefined || this.#closed) return;
    const { now, rows, vectors } = await this.#inSnapshot(async (client) => {
      const now = (await client.query<{ snap: string }>('SELECT pg_current_snapshot()::text AS snap')).rows[0]!.snap;
      const { rows } = await client.query<{ seq: number; ops: Record<string, unknown>[] | null }>(
        `SELECT seq, CASE WHEN seq = ANY($2::bigint[]) THEN NULL ELSE ops END AS ops FROM atomspace_changes
          WHERE xid >= pg_snapshot_xmin($1::pg_snapshot) AND NOT pg_visible_in_snapshot(xid, $1::pg_snapshot) ORDER BY seq`,
        [since, [...this.#own.keys()]],
      );
      const wanted = rows.flatMap((r) => (!r.ops ? [] : r.ops.filter((op) => op.op === 'embed').map((op) => [op.id as number, op.space as string] as const)));
      const vectors = new Map<string, Buffer>();
      if (wanted.length) {
        const found = await client.query<{ atom_id: number; space: string; vector: Buffer }>(
          'SELECT e.atom_id, e.space, e.vector FROM atomspace_embeddings e JOIN unnest($1::bigint[], $2::text[]) AS w(atom_id, space) USING (atom_id, space)',
          [wanted.map((w) => w[0]), wanted.map((w) => w[1])],
        );
        for (const v of found.rows) vectors.set(`${v.atom_id}\u0000${v.space}`, v.vector);
      }
      return { now, rows, vectors };
    });
    const records: JournalRecord[] = [];
    for (const row of rows) {
      const own = this.#own.get(row.seq);
      for (const op of row.ops ?? (own!.ops as Record<string, unknown>[])) {
        if (op.op !== 'embed') {
          records.push({ json: op });
          continue;
        }
        // Removed (or its space recreated) later in this snapshot: a later record says so.
        const bytes = (own?.vectors ?? vectors).get(`${op.id}\u0000${op.space}`);
        if (bytes && bytes.length === (op.dim as number) * 4) records.push({ json: op, bytes: vectorBytes(bytes) });
      }
    }
    if (this.#snapshot !== since || this.#closed) return; // closed meanwhile
    this.sink.apply(records);
    this.#snapshot = now;
    for (const row of rows) {
      this.#own.delete(row.seq);
      this.#lastSeq = Math.max(this.#lastSeq, row.seq);
    }
  }

  status(): { connected: boolean; staleSeconds: number; error?: string } {
    if (this.#error === undefined && this.#listener) return { connected: true, staleSeconds: 0 };
    return { connected: false, staleSeconds: (Date.now() - this.#currentAt) / 1000, error: this.#error ?? 'the change listener is reconnecting' };
  }

  async #listen(): Promise<void> {
    if (this.#closed) return;
    const client = new pg.Client(this.listenConfig);
    let dropped = false;
    const drop = (why: string) => {
      if (dropped) return;
      dropped = true;
      if (this.#listener === client) this.#listener = undefined;
      void client.end().catch(() => undefined);
      if (this.#closed) return;
      if (this.#error === undefined) this.log.warn({ err: why }, 'the AtomSpace change listener lost PostgreSQL; reconnecting');
      this.#reconnectTimer = setTimeout(() => void this.#listen(), this.#reconnectMs);
      this.#reconnectTimer.unref();
      this.#reconnectMs = Math.min(RECONNECT_MAX_MS, this.#reconnectMs * 2);
    };
    client.on('error', (error) => drop(describe(error)));
    client.on('end', () => drop('the connection ended'));
    client.on('notification', () => void this.sync().catch(() => undefined));
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
    } catch (error) {
      drop(describe(error));
      return;
    }
    if (this.#closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.#listener = client;
    this.#reconnectMs = RECONNECT_MIN_MS;
    // Whatever was committed while nobody listened.
    void this.sync().catch(() => undefined);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#pollTimer);
    clearTimeout(this.#reconnectTimer);
    const listener = this.#listener;
    this.#listener = undefined;
    await listener?.end().catch(() => undefined);
    await this.#running?.catch(() => undefined);
  }
}

/** A short description of a database error: its code and message. */
export function describe(error: unknown): string {
  const e = error as { code?: string; message?: string } | undefined;
  const message = e?.message || String(error);
  return e?.code && !message.includes(e.code) ? `${e.code}: ${message}` : message;
}
