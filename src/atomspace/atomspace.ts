/**
 * The AtomSpace: a typed hypergraph. Nodes are unique by (type, name), links by (type,
 * outgoing) — order-insensitive for unordered types such as SimilarityLink — and adding an
 * existing atom returns it. Atoms carry a truth value, attention values and, per embedding
 * space, one vector. Every change is applied in memory and acknowledged only once its journal
 * record is on disk; a change whose record cannot be written (disk full, read-only) is undone
 * in memory and refused with STORAGE_UNAVAILABLE, and the next write tries the disk again.
 *
 * With a shared store (store/shared-store.ts, e.g. PostgreSQL) instead of the journal, the
 * store is the system of record: a change is committed there first (ids and uniqueness are
 * the store's) and then applied here through the same replay, as are other replicas' changes.
 * Knows nothing of HTTP.
 */
import { resolve } from 'node:path';
import { getSystemErrorMap } from 'node:util';

import { EmbeddingError, EmbeddingSpace, type SpaceCapture, type SpaceView, squaredNorm } from './embedding-space.js';
import { Journal, type JournalObserver, type JournalRecord, SNAPSHOT_VECTOR_BYTES, type SnapshotChunk } from './journal.js';
import { AtomTable, ShardedMap } from './atom-table.js';
import { TypeHierarchy, type TypeDefinition } from './types.js';
import { UndoLog } from './undo-log.js';
import type { SharedStore, SharedStoreStatus, StoreItem } from './store/shared-store.js';

export interface TruthValue {
  strength: number;
  confidence: number;
}

export interface AttentionValue {
  /** Short-term importance. */
  sti: number;
  /** Long-term importance. */
  lti: number;
}

export interface Atom {
  id: number;
  type: string;
  name?: string;
  outgoing?: number[];
  tv: TruthValue;
  av: AttentionValue;
}

/** STORAGE_UNAVAILABLE: the journal cannot be written (disk full, read-only); nothing was changed. */
export type AtomSpaceErrorCode = 'ATOM_NOT_FOUND' | 'BAD_ATOM' | 'HAS_INCOMING' | 'SPACE_NOT_FOUND' | 'STORAGE_UNAVAILABLE';

export class AtomSpaceError extends Error {
  constructor(
    readonly code: AtomSpaceErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface EmbeddingInput {
  space: string;
  /** The model that made the vector (null when given directly). */
  model: string | null;
  vector: ArrayLike<number>;
}

export interface NodeInput {
  type: string;
  name: string;
  tv?: TruthValue;
  embeddings?: EmbeddingInput[];
}

export interface LinkInput {
  type: string;
  outgoing: number[];
  tv?: TruthValue;
}

export interface AtomSpaceOptions {
  dataDir: string;
  types?: TypeDefinition[];
  /**
   * Journal bytes after which a snapshot is written and old journals dropped; a larger space
   * waits until its journal is as large as its last snapshot, so that snapshots of a growing
   * space cost a bounded multiple of what is written (not one whole copy per SNAPSHOT_BYTES).
   */
  snapshotBytes?: number;
  journalObserver?: JournalObserver;
}

// Shared by every atom that has them (a million atoms, a million fewer objects for the GC); never changed in place.
const DEFAULT_TV: TruthValue = Object.freeze({ strength: 1, confidence: 0 });
const DEFAULT_AV: AttentionValue = Object.freeze({ sti: 0, lti: 0 });
/** After a failed snapshot, the next automatic one waits this long. */
const SNAPSHOT_RETRY_MS = 10_000;

/** Atom records per snapshot chunk. */
const SNAPSHOT_ATOMS_PER_CHUNK = 4096;

/**
 * The state a snapshot in progress writes: atoms below `nextId` as they were when it was taken.
 * Atoms changed since are in `before` (null: did not exist), copied by the first change.
 */
interface Frozen {
  nextId: number;
  before: Map<number, Atom | null>;
}

/** A change being made: applied in memory as it is built, durable once its records are written. */
interface Change {
  records: JournalRecord[];
  undo: UndoLog;
}

/** "ENOSPC: no space left on device" from a Node.js system error. */
function osError(error: unknown): string {
  const e = error as NodeJS.ErrnoException | undefined;
  const known = typeof e?.errno === 'number' ? getSystemErrorMap().get(e.errno) : undefined;
  if (known) return `${known[0]}: ${known[1]}`;
  if (e?.code && e.message) return e.message.startsWith(e.code) ? e.message : `${e.code}: ${e.message}`;
  return e?.message ?? String(error);
}

function storageUnavailable(dir: string, what: string, error: unknown, outcome: string): AtomSpaceError {
  return new AtomSpaceError('STORAGE_UNAVAILABLE', `the AtomSpace cannot ${what} in ${resolve(dir)} (${osError(error)}); ${outcome}`);
}

function checkTv(tv: TruthValue | undefined): TruthValue | undefined {
  if (tv === undefined) return undefined;
  for (const key of ['strength', 'confidence'] as const) {
    const v = tv[key];
    if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new AtomSpaceError('BAD_ATOM', `tv.${key} must be a number from 0 to 1`);
  }
  return { strength: tv.strength, confidence: tv.confidence };
}

function checkAv(av: Partial<AttentionValue> | undefined, current: AttentionValue): AttentionValue | undefined {
  if (av === undefined) return undefined;
  const out = { ...current };
  for (const key of ['sti', 'lti'] as const) {
    if (av[key] === undefined) continue;
    if (typeof av[key] !== 'number' || !Number.isFinite(av[key])) throw new AtomSpaceError('BAD_ATOM', `av.${key} must be a finite number`);
    out[key] = av[key]!;
  }
  return out;
}

export class AtomSpace {
  readonly types: TypeHierarchy;
  /** In id order (listings page through it). */
  readonly #atoms = new AtomTable<Atom>();
  readonly #nodes = new ShardedMap<number>();
  readonly #links = new ShardedMap<number>();
  readonly #incoming = new AtomTable<Set<number>>();
  readonly #spaces = new Map<string, EmbeddingSpace>();
  readonly #countByType = new Map<string, number>();
  /** The embedded store; undefined with a shared one. */
  readonly #journal: Journal | undefined;
  readonly #shared: SharedStore | undefined;
  readonly #snapshotBytes: number;
  #nextId = 1;
  #snapshotting: Promise<void> | undefined;
  #frozen: Frozen | undefined;
  /** No automatic snapshot before this time (set when one fails). */
  #snapshotRetryAt = 0;

  private constructor(options: AtomSpaceOptions | { types?: TypeDefinition[]; store: SharedStore }) {
    this.types = new TypeHierarchy(options.types ?? []);
    if ('store' in options) {
      this.#shared = options.store;
      this.#snapshotBytes = 0;
    } else {
      this.#journal = new Journal(options.dataDir, options.journalObserver);
      this.#snapshotBytes = options.snapshotBytes ?? 64 * 2 ** 20;
    }
  }

  /**
   * Open the AtomSpace kept in a shared store: its schema is migrated, everything is loaded,
   * and memory follows the store's change stream from then on.
   */
  static async openShared(options: { types?: TypeDefinition[]; store: SharedStore }): Promise<{ atomspace: AtomSpace; recovered: { atoms: number; truncatedBytes: number; migrated: number[] } }> {
    const space = new AtomSpace(options);
    const { migrated } = await options.store.open({ apply: (records) => space.applyCommitted(records) });
    return { atomspace: space, recovered: { atoms: space.#atoms.size, truncatedBytes: 0, migrated } };
  }

  /** Apply changes a shared store committed (this replica's or another's). */
  applyCommitted(records: JournalRecord[]): void {
    if (!this.#shared) throw new Error('only an AtomSpace kept in a shared store applies committed changes');
    for (const record of records) this.#replay(record);
  }

  /** 'journal', or the shared store's description. */
  get store(): string {
    return this.#shared ? this.#shared.description : 'journal';
  }

  /** A shared store's connection and how stale memory may be; undefined with the journal. */
  storeStatus(): SharedStoreStatus | undefined {
    return this.#shared?.status();
  }

  /**
   * Open (and recover) the AtomSpace stored in `dataDir`. A directory that can be read but
   * not written opens too: reads work, writes are refused until it can be written
   * (`storageError` says why).
   */
  static async open(options: AtomSpaceOptions): Promise<{ atomspace: AtomSpace; recovered: { atoms: number; truncatedBytes: number; storageError?: string } }> {
    const space = new AtomSpace(options);
    const recovered = await space.#journal!.recover();
    for (const record of [...(recovered.snapshot ?? []), ...recovered.journal]) space.#replay(record);
    const storageError = recovered.storageError === undefined ? undefined : storageUnavailable(options.dataDir, 'open its journal', recovered.storageError, 'writes are refused until it can').message;
    return { atomspace: space, recovered: { atoms: space.#atoms.size, truncatedBytes: recovered.truncatedBytes, ...(storageError ? { storageError } : {}) } };
  }

  get size(): number {
    return this.#atoms.size;
  }

  get journalBytes(): number {
    return this.#journal?.bytes ?? 0;
  }

  countsByType(): Map<string, number> {
    return new Map(this.#countByType);
  }

  get(id: number): Atom | undefined {
    const atom = this.#atoms.get(id);
    return atom && copy(atom);
  }

  require(id: number): Atom {
    const atom = this.get(id);
    if (!atom) throw new AtomSpaceError('ATOM_NOT_FOUND', `no atom ${id}`);
    return atom;
  }

  /** Atoms of a type (and its subtypes), optionally with a name. */
  find(filter: { type?: string; name?: string; limit?: number; offset?: number }): { atoms: Atom[]; total: number } {
    if (filter.type && !this.types.has(filter.type)) throw new AtomSpaceError('BAD_ATOM', `unknown atom type '${filter.type}'`);
    if (filter.type && filter.name !== undefined && this.types.isNode(filter.type)) {
      const id = this.#nodes.get(nodeKey(filter.type, filter.name));
      const atoms = id ? [copy(this.#atoms.get(id)!)] : [];
      return { atoms, total: atoms.length };
    }
    const matches: Atom[] = [];
    for (const atom of this.#atoms.values()) {
      if (filter.type && !this.types.isA(atom.type, filter.type)) continue;
      if (filter.name !== undefined && atom.name !== filter.name) continue;
      matches.push(atom);
    }
    const offset = filter.offset ?? 0;
    const limit = filter.limit ?? 100;
    return { atoms: matches.slice(offset, offset + limit).map(copy), total: matches.length };
  }

  incoming(id: number): Atom[] {
    this.require(id);
    return [...(this.#incoming.get(id) ?? [])].sort((a, b) => a - b).map((l) => copy(this.#atoms.get(l)!));
  }

  space(name: string): EmbeddingSpace | undefined {
    return this.#spaces.get(name);
  }

  spaces(): EmbeddingSpace[] {
    return [...this.#spaces.values()];
  }

  /** The vector of an atom in a space. */
  embedding(id: number, space: string): Float32Array | undefined {
    return this.#spaces.get(space)?.get(id);
  }

  /** Spaces in which the atom has a vector. */
  spacesOf(id: number): string[] {
    return [...this.#spaces.values()].filter((s) => s.has(id)).map((s) => s.name);
  }

  /** Add a node, or return the existing one (whose tv and embeddings are updated when given). */
  async addNode(input: NodeInput): Promise<{ atom: Atom; created: boolean }> {
    const [result] = await this.addBatch([{ node: input }]);
    return result!;
  }

  async addLink(input: LinkInput): Promise<{ atom: Atom; created: boolean }> {
    const [result] = await this.addBatch([{ link: input }]);
    return result!;
  }

  /** Throws the error addBatch would refuse this item with (BAD_ATOM, ATOM_NOT_FOUND, BAD_EMBEDDING); changes nothing. */
  check(item: { node: NodeInput } | { link: LinkInput }): void {
    if ('node' in item) this.#validateNode(item.node);
    else this.#validateLink(item.link);
  }

  /**
   * Add many atoms in one journal group commit. Every item is validated before anything
   * changes, so a link must name atoms that already exist (add its targets in an earlier call).
   */
  async addBatch(items: ({ node: NodeInput } | { link: LinkInput })[], options: { checked?: boolean } = {}): Promise<{ atom: Atom; created: boolean }[]> {
    // Validate everything first so a bad item changes nothing (`checked`: each passed check() just now).
    if (!options.checked) {
      for (const item of items) {
        if ('node' in item) this.#validateNode(item.node);
        else this.#validateLink(item.link);
      }
    }
    if (this.#shared) return this.#shared.addBatch(items.map((item) => this.#storeItem(item)));
    const results = await this.#write((change) => items.map((item) => ('node' in item ? this.#applyNode(item.node, change) : this.#applyLink(item.link, change))));
    // A concurrent removal may have taken the atom away while this write was being flushed: answer the atom as written.
    return results.map((r) => ({ atom: copy(this.#atoms.get(r.atom.id) ?? r.atom), created: r.created }));
  }

  async update(id: number, change: { tv?: TruthValue; av?: Partial<AttentionValue> }): Promise<Atom> {
    if (this.#shared) {
      const tv = checkTv(change.tv);
      const av = checkAv(change.av, DEFAULT_AV) && change.av;
      if (!tv && !av) throw new AtomSpaceError('BAD_ATOM', 'nothing to update: give tv and/or av');
      return this.#shared.update(id, { ...(tv ? { tv } : {}), ...(av ? { av } : {}) });
    }
    const atom = this.#atoms.get(id);
    if (!atom) throw new AtomSpaceError('ATOM_NOT_FOUND', `no atom ${id}`);
    const tv = checkTv(change.tv);
    const av = checkAv(change.av, atom.av);
    if (!tv && !av) throw new AtomSpaceError('BAD_ATOM', 'nothing to update: give tv and/or av');
    const record = { op: 'update', id, ...(tv ? { tv } : {}), ...(av ? { av } : {}) };
    await this.#write((change) => this.#apply(change, { json: record }));
    return copy(this.#atoms.get(id) ?? atom);
  }

  /** Remove an atom; refused when links contain it, unless recursive (then they go too). */
  async remove(id: number, recursive: boolean): Promise<number[]> {
    if (this.#shared) return this.#shared.remove(id, recursive);
    if (!this.#atoms.has(id)) throw new AtomSpaceError('ATOM_NOT_FOUND', `no atom ${id}`);
    const incoming = this.#incoming.get(id);
    if (incoming?.size && !recursive) {
      throw new AtomSpaceError('HAS_INCOMING', `atom ${id} is in ${incoming.size} link(s) (${[...incoming].slice(0, 5).join(', ')}); remove them first or pass recursive=true`);
    }
    const order: number[] = [];
    const visit = (atomId: number) => {
      for (const parent of this.#incoming.get(atomId) ?? []) if (!order.includes(parent)) visit(parent);
      if (!order.includes(atomId)) order.push(atomId);
    };
    visit(id);
    const record = { op: 'remove', ids: order };
    await this.#write((change) => this.#apply(change, { json: record }));
    return order;
  }

  async setEmbedding(id: number, input: EmbeddingInput): Promise<void> {
    if (this.#shared) {
      this.#checkEmbedding(input);
      return this.#shared.setEmbedding(id, { space: input.space, model: input.model, vector: Float32Array.from(input.vector) });
    }
    const atom = this.#atoms.get(id);
    if (!atom) throw new AtomSpaceError('ATOM_NOT_FOUND', `no atom ${id}`);
    this.#checkEmbedding(input);
    await this.#write((change) => this.#embed(atom, input, change));
  }

  /** A consistent view of one space for a similarity scan. */
  view(space: string): SpaceView {
    const s = this.#spaces.get(space);
    if (!s) throw new AtomSpaceError('SPACE_NOT_FOUND', `no embedding space '${space}' (spaces: ${[...this.#spaces.keys()].join(', ') || 'none'})`);
    return s.view();
  }

  async close(): Promise<void> {
    await this.#snapshotting?.catch(() => undefined);
    await this.#journal?.close();
    await this.#shared?.close();
  }

  /**
   * Write a snapshot now (also happens by itself as the journal grows). When it cannot be
   * written it rejects with STORAGE_UNAVAILABLE; nothing is lost and writes go on.
   */
  async snapshot(): Promise<void> {
    const journal = this.#journal;
    if (!journal) return; // a shared store keeps everything itself
    if (this.#snapshotting) return this.#snapshotting;
    // The state as of now, in O(spaces): atoms are read later, through #frozen; vector rows
    // never change once written (only their row-to-atom map does, which is copied here).
    const frozen: Frozen = { nextId: this.#nextId, before: new Map() };
    const spaces = [...this.#spaces.values()].map((s) => s.capture());
    this.#frozen = frozen;
    this.#snapshotting = journal
      .snapshot(this.#snapshotChunks(frozen, spaces))
      .catch((error: unknown) => {
        this.#snapshotRetryAt = Date.now() + SNAPSHOT_RETRY_MS;
        throw storageUnavailable(journal.dir, 'write a snapshot', error, 'nothing was lost: the journals are kept');
      })
      .finally(() => {
        this.#frozen = undefined;
        this.#snapshotting = undefined;
      });
    return this.#snapshotting;
  }

  /** Whether a snapshot is being written now. */
  get snapshotting(): boolean {
    return this.#snapshotting !== undefined;
  }

  // ----- internals -----

  /** Apply a change in memory, then make it durable; when either fails, the change is undone. */
  async #write<T>(apply: (change: Change) => T): Promise<T> {
    const change: Change = { records: [], undo: new UndoLog() };
    let result: T;
    try {
      result = apply(change);
    } catch (error) {
      change.undo.rollback();
      throw error;
    }
    await this.#commit(change);
    return result;
  }

  /** Apply one record in memory as part of `change`. */
  #apply(change: Change, record: JournalRecord): void {
    this.#replay(record, change.undo);
    change.records.push(record);
  }

  async #commit(change: Change): Promise<void> {
    const journal = this.#journal!;
    try {
      // The journal undoes the change (and every later one) before this rejects. A change
      // that wrote nothing still waits for the earlier ones it may have answered from.
      if (change.records.length) await journal.append(change.records, () => change.undo.rollback());
      else await journal.sync();
    } catch (error) {
      throw storageUnavailable(journal.dir, 'write its journal', error, 'the change was not applied');
    }
    const due = Math.max(this.#snapshotBytes, journal.snapshotBytes);
    if (change.records.length && journal.bytes > due && !this.#snapshotting && Date.now() >= this.#snapshotRetryAt) {
      // Compact tombstoned rows while we are at it; queries in flight keep their arrays.
      for (const s of this.#spaces.values()) if (s.tombstones > s.size) s.compact();
      void this.snapshot().catch(() => undefined);
    }
  }

  #validateNode(input: NodeInput): void {
    if (typeof input.type !== 'string' || !this.types.has(input.type)) throw new AtomSpaceError('BAD_ATOM', `unknown atom type '${input.type}'`);
    if (!this.types.isNode(input.type)) throw new AtomSpaceError('BAD_ATOM', `'${input.type}' is not a node type`);
    if (typeof input.name !== 'string' || input.name.length === 0 || input.name.length > 4096) {
      throw new AtomSpaceError('BAD_ATOM', 'a node needs a name of 1 to 4096 characters');
    }
    checkTv(input.tv);
    for (const e of input.embeddings ?? []) this.#checkEmbedding(e);
  }

  #checkEmbedding(e: EmbeddingInput): void {
    if (typeof e.space !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/.test(e.space)) {
      throw new AtomSpaceError('BAD_ATOM', `embedding space name '${e.space}' must be letters, digits, . _ : -`);
    }
    const existing = this.#spaces.get(e.space);
    if (existing) existing.check(e.vector);
    else {
      if (!(e.vector.length >= 1 && e.vector.length <= 65536)) throw new EmbeddingError(`space '${e.space}': dimension must be 1..65536`);
      squaredNorm(e.space, e.vector.length, e.vector);
    }
  }

  #validateLink(input: LinkInput): void {
    if (typeof input.type !== 'string' || !this.types.has(input.type)) throw new AtomSpaceError('BAD_ATOM', `unknown atom type '${input.type}'`);
    if (!this.types.isLink(input.type)) throw new AtomSpaceError('BAD_ATOM', `'${input.type}' is not a link type`);
    if (!Array.isArray(input.outgoing) || input.outgoing.length === 0 || input.outgoing.length > 1024) {
      throw new AtomSpaceError('BAD_ATOM', 'a link needs 1 to 1024 outgoing atom ids');
    }
    for (const id of input.outgoing) {
      // A shared store checks existence itself: another replica's atom may not have reached this one yet.
      if (!Number.isInteger(id) || (!this.#shared && !this.#atoms.has(id))) throw new AtomSpaceError('ATOM_NOT_FOUND', `outgoing atom ${id} does not exist`);
    }
    checkTv(input.tv);
  }

  /** A checked item as a shared store takes it: vectors as float32, an unordered link's outgoing sorted. */
  #storeItem(item: { node: NodeInput } | { link: LinkInput }): StoreItem {
    if ('node' in item) {
      const { type, name, tv, embeddings } = item.node;
      return {
        node: {
          type,
          name,
          ...(tv ? { tv: checkTv(tv)! } : {}),
          ...(embeddings?.length ? { embeddings: embeddings.map((e) => ({ space: e.space, model: e.model, vector: e.vector instanceof Float32Array ? e.vector : Float32Array.from(e.vector) })) } : {}),
        },
      };
    }
    const { type, outgoing, tv } = item.link;
    return { link: { type, outgoing: this.types.isUnordered(type) ? [...outgoing].sort((a, b) => a - b) : [...outgoing], ...(tv ? { tv: checkTv(tv)! } : {}) } };
  }

  #applyNode(input: NodeInput, change: Change): { atom: Atom; created: boolean } {
    const result = this.#addOrUpdate(this.#nodes.get(nodeKey(input.type, input.name)), input.tv, change, (id, tv) => ({ op: 'node', id, type: input.type, name: input.name, tv }));
    for (const e of input.embeddings ?? []) this.#embed(result.atom, e, change);
    return result;
  }

  #applyLink(input: LinkInput, change: Change): { atom: Atom; created: boolean } {
    this.#validateLink(input);
    const outgoing = this.types.isUnordered(input.type) ? [...input.outgoing].sort((a, b) => a - b) : [...input.outgoing];
    return this.#addOrUpdate(this.#links.get(linkKey(input.type, outgoing)), input.tv, change, (id, tv) => ({ op: 'link', id, type: input.type, outgoing, tv }));
  }

  /** Create the atom (`existing` undefined) or update its tv when one is given; records the change. */
  #addOrUpdate(existing: number | undefined, tv: TruthValue | undefined, change: Change, create: (id: number, tv: TruthValue) => object) {
    let record: object | undefined;
    const id = existing ?? this.#nextId;
    if (existing === undefined) record = create(id, checkTv(tv) ?? DEFAULT_TV);
    else if (tv) record = { op: 'update', id, tv: checkTv(tv) };
    if (record) this.#apply(change, { json: record });
    return { atom: this.#atoms.get(id)!, created: existing === undefined };
  }

  #embed(atom: Atom, input: EmbeddingInput, change: Change): void {
    const vector = input.vector instanceof Float32Array ? input.vector.slice() : Float32Array.from(input.vector);
    const record = { op: 'embed', id: atom.id, space: input.space, model: input.model, dim: vector.length };
    this.#apply(change, { json: record, bytes: new Uint8Array(vector.buffer) });
  }

  /**
   * Apply one journal record to memory. Idempotent: replaying a record twice changes nothing.
   * With `undo`, also records how to take the change back.
   */
  #replay(record: JournalRecord, undo?: UndoLog): void {
    const r = record.json as Record<string, unknown> & { op: string };
    switch (r.op) {
      case 'node': {
        const id = r.id as number;
        if (this.#atoms.has(id)) return;
        this.#create({ id, type: r.type as string, name: r.name as string, tv: r.tv as TruthValue, av: (r.av as AttentionValue) ?? DEFAULT_AV }, undo);
        return;
      }
      case 'link': {
        const id = r.id as number;
        if (this.#atoms.has(id)) return;
        this.#create({ id, type: r.type as string, outgoing: r.outgoing as number[], tv: r.tv as TruthValue, av: (r.av as AttentionValue) ?? DEFAULT_AV }, undo);
        return;
      }
      case 'update': {
        const atom = this.#atoms.get(r.id as number);
        if (!atom) return;
        const { tv, av } = atom;
        this.#touch(atom.id);
        if (r.tv) atom.tv = r.tv as TruthValue;
        if (r.av) atom.av = r.av as AttentionValue;
        undo?.add(() => {
          this.#touch(atom.id);
          atom.tv = tv;
          atom.av = av;
        });
        return;
      }
      case 'remove': {
        for (const id of r.ids as number[]) this.#removeOne(id, undo);
        return;
      }
      case 'embed': {
        const atom = this.#atoms.get(r.id as number);
        if (!atom || !record.bytes) return;
        const { buffer, byteOffset, byteLength } = record.bytes;
        // Read in place when aligned (records made here, and decoded ones, are): set() copies it into the matrix.
        const vector = byteOffset % 4 === 0 ? new Float32Array(buffer, byteOffset, byteLength >> 2) : new Float32Array(buffer.slice(byteOffset, byteOffset + byteLength));
        let space = this.#spaces.get(r.space as string);
        if (!space) {
          const created = new EmbeddingSpace(r.space as string, r.dim as number, (r.model as string | null) ?? null);
          this.#spaces.set(created.name, created);
          // A space this change created goes with it (its vectors' undo steps run first).
          undo?.add(() => {
            if (this.#spaces.get(created.name) === created && created.size === 0) this.#spaces.delete(created.name);
          });
          space = created;
        }
        const typeCode = this.types.code(atom.type);
        const previous = undo && space.get(atom.id);
        space.set(atom.id, typeCode, vector);
        if (undo) {
          const s = space;
          undo.add(() => (previous ? s.restore(atom.id, typeCode, previous) : s.remove(atom.id)));
        }
        return;
      }
      case 'next-id':
        this.#nextId = Math.max(this.#nextId, r.value as number);
        return;
      default:
        throw new Error(`unknown journal record '${r.op}'`);
    }
  }

  /** Add a new atom to the indexes; undone by removing it and giving its id back. */
  #create(atom: Atom, undo?: UndoLog): void {
    const nextId = this.#nextId;
    this.#insert(atom);
    this.#nextId = Math.max(this.#nextId, atom.id + 1);
    undo?.add(() => {
      this.#removeOne(atom.id);
      this.#nextId = nextId;
    });
  }

  /** Index an atom: by id, by key, in its targets' incoming sets, in the counts. */
  #insert(atom: Atom): void {
    this.#touch(atom.id);
    this.#atoms.set(atom.id, atom);
    if (atom.outgoing) {
      this.#links.set(linkKey(atom.type, atom.outgoing), atom.id);
      for (const target of new Set(atom.outgoing)) {
        let set = this.#incoming.get(target);
        if (!set) this.#incoming.set(target, (set = new Set()));
        set.add(atom.id);
      }
    } else {
      this.#nodes.set(nodeKey(atom.type, atom.name!), atom.id);
    }
    this.#count(atom.type, 1);
  }

  /**
   * Remove one atom (links containing it are removed first by the caller). Undone by putting
   * it back with its vectors; the links that contained it put themselves back after it.
   */
  #removeOne(id: number, undo?: UndoLog): void {
    const atom = this.#atoms.get(id);
    if (!atom) return;
    this.#touch(id);
    const vectors = undo ? [...this.#spaces.values()].flatMap((s) => (s.has(id) ? [{ space: s, vector: s.get(id)! }] : [])) : [];
    this.#atoms.delete(id);
    if (atom.name !== undefined) this.#nodes.delete(nodeKey(atom.type, atom.name));
    if (atom.outgoing) {
      this.#links.delete(linkKey(atom.type, atom.outgoing));
      for (const target of atom.outgoing) this.#incoming.get(target)?.delete(id);
    }
    this.#incoming.delete(id);
    for (const space of this.#spaces.values()) space.remove(id);
    this.#count(atom.type, -1);
    undo?.add(() => {
      this.#insert(atom);
      const typeCode = this.types.code(atom.type);
      for (const { space, vector } of vectors) space.restore(id, typeCode, vector);
    });
  }

  #count(type: string, delta: number): void {
    this.#countByType.set(type, (this.#countByType.get(type) ?? 0) + delta);
  }

  /** Keep the atom as the snapshot being written saw it, before its first change since. */
  #touch(id: number): void {
    const frozen = this.#frozen;
    if (!frozen || id >= frozen.nextId || frozen.before.has(id)) return;
    const atom = this.#atoms.get(id);
    frozen.before.set(id, atom ? { ...atom } : null);
  }

  /**
   * The snapshot's content, read in chunks while writes go on: atoms in id order (a link's
   * targets have lower ids, so they are replayed first), then each space's rows in blocks.
   */
  *#snapshotChunks(frozen: Frozen, spaces: SpaceCapture[]): Generator<SnapshotChunk> {
    let records: unknown[] = [{ op: 'next-id', value: frozen.nextId }];
    for (let id = 1; id < frozen.nextId; id++) {
      const a = frozen.before.has(id) ? frozen.before.get(id) : this.#atoms.get(id);
      if (a) {
        records.push(
          a.outgoing
            ? { op: 'link', id: a.id, type: a.type, outgoing: a.outgoing, tv: a.tv, av: a.av }
            : { op: 'node', id: a.id, type: a.type, name: a.name, tv: a.tv, av: a.av },
        );
      }
      if (records.length >= SNAPSHOT_ATOMS_PER_CHUNK || (id % (4 * SNAPSHOT_ATOMS_PER_CHUNK) === 0 && records.length)) {
        yield { records };
        records = [];
      }
    }
    if (records.length) yield { records };
    for (const s of spaces) {
      const rowsPerChunk = Math.max(1, Math.floor(SNAPSHOT_VECTOR_BYTES / (s.dim * 4)));
      for (let from = 0; from < s.rows; from += rowsPerChunk) {
        const to = Math.min(s.rows, from + rowsPerChunk);
        yield { space: s.name, model: s.model, dim: s.dim, ids: s.rowAtoms.slice(from, to), matrix: s.matrix, from, to };
      }
    }
  }
}

function nodeKey(type: string, name: string): string {
  return `${type}\u0000${name}`;
}

function linkKey(type: string, outgoing: number[]): string {
  return `${type}\u0000${outgoing.join(',')}`;
}

function copy(atom: Atom): Atom {
  return { ...atom, tv: { ...atom.tv }, av: { ...atom.av }, ...(atom.outgoing ? { outgoing: [...atom.outgoing] } : {}) };
}
