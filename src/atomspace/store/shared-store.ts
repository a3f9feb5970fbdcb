/**
 * The storage seam of the AtomSpace. Two kinds of store keep an AtomSpace:
 *
 * - the journal (journal.ts, the embedded default): the AtomSpace applies a change in memory,
 *   then the journal makes it durable (group-committed fsync); a change that cannot be written
 *   is undone in memory. One process owns the data directory.
 * - a shared store (this interface; postgres-store.ts): the store is the system of record that
 *   several replicas write at once. A change is committed there first (the store assigns ids
 *   and enforces uniqueness), and every replica applies committed changes to its memory, its own
 *   as well as the others', as the same records the journal replays (node, link, update,
 *   remove, embed). The in-memory hypergraph, spaces and indexes are caches of the store.
 *
 * Either way the AtomSpace's memory logic is one: `AtomSpace.#replay` applies a record.
 */
import type { Atom, AttentionValue, TruthValue } from '../atomspace.js';
import type { JournalRecord } from '../journal.js';

/** An embedding checked by the AtomSpace (finite, non-zero, a valid space name). */
export interface StoreEmbedding {
  space: string;
  model: string | null;
  vector: Float32Array;
}

/** A checked item; a link's outgoing is already sorted when its type is unordered. */
export type StoreItem =
  | { node: { type: string; name: string; tv?: TruthValue; embeddings?: StoreEmbedding[] } }
  | { link: { type: string; outgoing: number[]; tv?: TruthValue } };

/** Where committed changes go: the AtomSpace, which replays them into memory. */
export interface ChangeSink {
  apply(records: JournalRecord[]): void;
}

export interface SharedStoreStatus {
  /** The store answered the last time it was asked (writes and the change stream work). */
  connected: boolean;
  /** Seconds since memory was last known to be up to date with the store (0 while connected). */
  staleSeconds: number;
  /** Why it is not connected. */
  error?: string;
}

/**
 * Every write resolves once committed in the store AND applied to this replica's memory (a
 * replica reads its own writes); it rejects with AtomSpaceError: STORAGE_UNAVAILABLE when the
 * store cannot be reached (nothing was committed, or the outcome is unknown and retrying is
 * safe: adding an atom twice returns it), ATOM_NOT_FOUND, HAS_INCOMING, BAD_EMBEDDING as the
 * journal would.
 */
export interface SharedStore {
  /** For logs: what the store is (never credentials). */
  readonly description: string;
  /** Create or migrate the schema, load everything into `sink`, then follow the change stream. */
  open(sink: ChangeSink): Promise<{ atoms: number; migrated: number[] }>;
  addBatch(items: StoreItem[]): Promise<{ atom: Atom; created: boolean }[]>;
  /** Set tv and/or the given av fields; returns the atom as committed. */
  update(id: number, change: { tv?: TruthValue; av?: Partial<AttentionValue> }): Promise<Atom>;
  /** Remove the atom (and, when recursive, every link that contains it, transitively); ids in removal order. */
  remove(id: number, recursive: boolean): Promise<number[]>;
  setEmbedding(id: number, embedding: StoreEmbedding): Promise<void>;
  status(): SharedStoreStatus;
  close(): Promise<void>;
}
