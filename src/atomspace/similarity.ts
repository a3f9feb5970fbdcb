/**
 * Nearest atoms in an embedding space. Exact search is one native matrix product over the
 * space's contiguous matrix (queries that arrive together are batched into one product);
 * spaces at or above `approximateFrom` vectors also get an HNSW index (usearch), built on a
 * worker thread, then kept in step with the space; it is used once built, unless the caller
 * asks for exact results. Until it is ready, searches are exact. Approximate queries that
 * arrive together are searched as one batch on usearch's threads. Per-space state is keyed by
 * the space object, so a space removed and created again (another dimension) starts afresh.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';


import { Batcher } from '../batching/batcher.js';
import { topK } from '../runtime/index.js';
import type { AtomSpace } from './atomspace.js';
import { AtomSpaceError } from './atomspace.js';
import type { EmbeddingSpace } from './embedding-space.js';
import { type HnswIndex, type HnswOptions, newHnswIndex } from './hnsw-index.js';

export type { HnswOptions };

export interface SimilarQuery {
  space: string;
  vector: ArrayLike<number>;
  k: number;
  /** Only atoms of this type (or its subtypes). */
  type?: string;
  threshold?: number;
  /** Leave this atom out (the query atom itself). */
  exclude?: number;
  /** 'exact', 'approximate', or 'auto' (approximate when the space has an index). */
  mode?: 'exact' | 'approximate' | 'auto';
}

export interface SimilarHit {
  id: number;
  score: number;
}

export const DEFAULT_HNSW: HnswOptions = { connectivity: 16, expansionAdd: 128, expansionSearch: 128 };
/** Threads usearch searches a batch of queries with. */
const SEARCH_THREADS = Math.max(1, availableParallelism());


interface IndexEntry {
  index: HnswIndex | undefined;
  /** Rows of the space already in the index. */
  synced: number;
  building: Promise<void> | undefined;
}

export interface SimilarityObserver {
  query(space: string, seconds: number, scanned: number, mode: 'exact' | 'approximate'): void;
}

interface ExactItem {
  vector: Float32Array;
  k: number;
  type: string | undefined;
  threshold: number;
  space: string;
}

export class SimilaritySearch {
  readonly #batchers = new WeakMap<EmbeddingSpace, Batcher<ExactItem, SimilarHit[]>>();
  readonly #approximateBatchers = new WeakMap<EmbeddingSpace, Batcher<ExactItem, SimilarHit[]>>();
  readonly #indexes = new WeakMap<EmbeddingSpace, IndexEntry>();
  readonly #hnsw: HnswOptions;

  constructor(
    private readonly atoms: AtomSpace,
    private readonly options: { approximateFrom: number; observer?: SimilarityObserver; hnsw?: Partial<HnswOptions> },
  ) {
    this.#hnsw = { ...DEFAULT_HNSW, ...options.hnsw };
  }

  /** Build (or finish building) the space's HNSW index now; resolves when it is usable. */
  async buildIndex(spaceName: string): Promise<void> {
    const space = this.atoms.space(spaceName);
    if (!space) throw new AtomSpaceError('SPACE_NOT_FOUND', `no embedding space '${spaceName}'`);
    this.#entry(space);
    await this.#indexes.get(space)!.building;
  }

  /** Whether the space's HNSW index is built. */
  indexReady(spaceName: string): boolean {
    const space = this.atoms.space(spaceName);
    return space !== undefined && this.#indexes.get(space)?.index !== undefined;
  }

  async search(query: SimilarQuery): Promise<SimilarHit[]> {
    const space = this.atoms.space(query.space);
    if (!space) throw new AtomSpaceError('SPACE_NOT_FOUND', `no embedding space '${query.space}' (spaces: ${this.atoms.spaces().map((s) => s.name).join(', ') || 'none'})`);
    if (query.type && !this.atoms.types.has(query.type)) throw new AtomSpaceError('BAD_ATOM', `unknown atom type '${query.type}'`);
    if (!Number.isInteger(query.k) || query.k < 1 || query.k > 1000) throw new AtomSpaceError('BAD_ATOM', 'k must be an integer from 1 to 1000');
    const vector = space.normalize(query.vector);
    const k = query.k + (query.exclude !== undefined ? 1 : 0);
    const threshold = query.threshold ?? -Infinity;
    const started = performance.now();
    const mode = query.mode ?? 'auto';
    let hits: SimilarHit[];
    let used: 'exact' | 'approximate' = 'exact';
    const wantsIndex = mode === 'approximate' || (mode === 'auto' && space.size >= this.options.approximateFrom);
    if (mode === 'approximate') await this.buildIndex(space.name);
    const index = wantsIndex ? this.#entry(space) : undefined;
    if (index) {
      hits = await this.#approximateBatcher(space).submit({ vector, k, type: query.type, threshold, space: space.name });
      used = 'approximate';
    } else {
      hits = await this.#batcher(space).submit({ vector, k, type: query.type, threshold, space: space.name });
    }
    this.options.observer?.query(space.name, (performance.now() - started) / 1000, used === 'exact' ? space.rows : Math.min(space.size, k * 8), used);
    return hits.filter((h) => h.id !== query.exclude).slice(0, query.k);
  }

  /** Queries of one space with the same k, type and threshold share one native call. */
  #batcher(space: EmbeddingSpace): Batcher<ExactItem, SimilarHit[]> {
    let batcher = this.#batchers.get(space);
    if (!batcher) {
      batcher = new Batcher<ExactItem, SimilarHit[]>(
        { maxBatchSize: 64, maxQueueDelayMs: 0, instances: 1, maxQueueSize: 10_000 },
        { key: (q) => `${q.k}|${q.type ?? ''}|${q.threshold}`, rows: () => 1 },
        async (items) => {
          const first = items[0]!;
          const view = space.view();
          const queries = new Float32Array(items.length * space.dim);
          items.forEach((q, i) => queries.set(q.vector, i * space.dim));
          const results = await topK({
            matrix: view.matrix,
            rows: view.rows,
            dim: space.dim,
            queries,
            k: first.k,
            rowTypes: view.rowTypes,
            ...(first.type ? { allowedTypes: this.atoms.types.mask(first.type) } : {}),
            threshold: first.threshold,
          });
          // Map rows to atoms with the arrays the scan used; a row removed since is skipped.
          return results.map((r) => {
            const hits: SimilarHit[] = [];
            for (let i = 0; i < r.indices.length; i++) {
              const id = view.rowAtoms[r.indices[i]!]!;
              if (id >= 0) hits.push({ id, score: r.scores[i]! });
            }
            return hits;
          });
        },
      );
      this.#batchers.set(space, batcher);
    }
    return batcher;
  }

  /**
   * HNSW queries of one space with the same k, type and threshold: searched together, on
   * usearch's threads. A batch waits one turn of the event loop, so that queries arriving
   * meanwhile join the next one.
   */
  #approximateBatcher(space: EmbeddingSpace): Batcher<ExactItem, SimilarHit[]> {
    let batcher = this.#approximateBatchers.get(space);
    if (!batcher) {
      batcher = new Batcher<ExactItem, SimilarHit[]>(
        { maxBatchSize: 64, maxQueueDelayMs: 0, instances: 1, maxQueueSize: 10_000 },
        { key: (q) => `${q.k}|${q.type ?? ''}|${q.threshold}`, rows: () => 1 },
        async (items) => {
          await new Promise((resolve) => setImmediate(resolve));
          const index = this.#entry(space);
          // Compacted meanwhile (the index is being rebuilt): these are answered exactly.
          if (!index) return Promise.all(items.map((q) => this.#batcher(space).submit(q)));
          return this.#approximate(space, index, items);
        },
      );
      this.#approximateBatchers.set(space, batcher);
    }
    return batcher;
  }

  /** HNSW search of queries that share k, type and threshold. */
  #approximate(space: EmbeddingSpace, index: HnswIndex, items: ExactItem[]): SimilarHit[][] {
    const { k, type, threshold } = items[0]!;
    const mask = type ? this.atoms.types.mask(type) : undefined;
    // usearch has no filter callback: fetch more and filter here.
    // Removed atoms stay in the graph until a rebuild: over-fetch by the tombstones too.
    const want = Math.min(index.size(), (mask ? k * 8 : k) + Math.min(space.tombstones, k * 4));
    if (want === 0) return items.map(() => []);
    const queries = new Float32Array(items.length * space.dim);
    items.forEach((q, i) => queries.set(q.vector, i * space.dim));
    const result = index.search(queries, want, items.length > 1 ? SEARCH_THREADS : 0) as unknown as { keys: BigUint64Array; distances: Float32Array; counts?: BigUint64Array };
    return items.map((_, qi) => {
      const count = result.counts ? Number(result.counts[qi]) : result.keys.length;
      const base = result.counts ? qi * want : 0;
      return this.#hits(space, result.keys.subarray(base, base + count), result.distances.subarray(base, base + count), k, mask, threshold);
    });
  }

  #hits(space: EmbeddingSpace, keys: BigUint64Array, distances: Float32Array, k: number, mask: Uint8Array | undefined, threshold: number): SimilarHit[] {
    const hits: SimilarHit[] = [];
    for (let i = 0; i < keys.length && hits.length < k; i++) {
      const id = Number(keys[i]!);
      const score = 1 - distances[i]!;
      if (score < threshold) break;
      if (!space.has(id)) continue;
      if (mask) {
        const atom = this.atoms.get(id);
        if (!atom || !mask[this.atoms.types.code(atom.type)]) continue;
      }
      hits.push({ id, score });
    }
    return hits;
  }

  /** The space's index when built and synced; starts a background build when there is none. */
  #entry(space: EmbeddingSpace): HnswIndex | undefined {
    let entry = this.#indexes.get(space);
    if (!entry) {
      entry = { index: undefined, synced: 0, building: undefined };
      this.#indexes.set(space, entry);
    }
    if (!entry.index) {
      entry.building ??= this.#build(space, entry).finally(() => {
        entry.building = undefined;
      });
      return undefined;
    }
    if (entry.synced > space.rows) {
      // The space was compacted (rows renumbered): rebuild in the background, exact until then.
      entry.index = undefined;
      entry.synced = 0;
      return this.#entry(space);
    }
    if (entry.synced < space.rows) this.#sync(space, entry);
    return entry.index;
  }

  /** Build from the rows as they are now on a worker thread; later rows are synced after. */
  async #build(space: EmbeddingSpace, entry: IndexEntry): Promise<void> {
    const view = space.view();
    const keys: bigint[] = [];
    const vectors = new Float32Array(space.size * space.dim);
    for (let row = 0; row < view.rows; row++) {
      const id = view.rowAtoms[row]!;
      if (id < 0) continue;
      vectors.set(view.matrix.subarray(row * space.dim, (row + 1) * space.dim), keys.length * space.dim);
      keys.push(BigInt(id));
    }
    const dir = mkdtempSync(join(tmpdir(), 'atenspace-hnsw-'));
    const path = join(dir, 'index.usearch');
    const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
    try {
      await new Promise<void>((resolve, reject) => {
        const worker = new Worker(new URL(`./hnsw-build-worker.${ext}`, import.meta.url), {
          workerData: { dim: space.dim, ...this.#hnsw, keys: BigUint64Array.from(keys), vectors: vectors.subarray(0, keys.length * space.dim), path },
        });
        worker.once('message', () => resolve());
        worker.once('error', reject);
        worker.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`HNSW build worker exited with ${code}`))));
      });
      const index = newHnswIndex(space.dim, this.#hnsw);
      index.load(path);
      entry.index = index;
      entry.synced = view.rows;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** Add the rows appended since the last sync (replaced vectors are re-added). */
  #sync(space: EmbeddingSpace, entry: IndexEntry): void {
    const view = space.view();
    const index = entry.index!;
    const keys: bigint[] = [];
    const rows: number[] = [];
    for (let row = entry.synced; row < view.rows; row++) {
      const id = view.rowAtoms[row]!;
      if (id < 0) continue;
      if (index.contains(BigInt(id))) index.remove(BigInt(id));
      keys.push(BigInt(id));
      rows.push(row);
    }
    if (keys.length) {
      const vectors = new Float32Array(keys.length * space.dim);
      rows.forEach((row, i) => vectors.set(view.matrix.subarray(row * space.dim, (row + 1) * space.dim), i * space.dim));
      index.add(BigUint64Array.from(keys), vectors);
    }
    entry.synced = view.rows;
  }
}
