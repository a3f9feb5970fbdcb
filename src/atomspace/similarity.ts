/**
 * Nearest atoms in an embedding space. Exact search is one native matrix product over the
 * space's contiguous matrix (queries that arrive together are batched into one product);
 * spaces at or above `approximateFrom` vectors also get an HNSW index (usearch), used unless
 * the caller asks for exact results.
 */
import usearch from 'usearch';

import { Batcher } from '../models/batcher.js';
import { topK } from '../runtime/index.js';
import type { AtomSpace } from './atomspace.js';
import { AtomSpaceError } from './atomspace.js';
import type { EmbeddingSpace } from './embedding-space.js';

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
  readonly #batchers = new Map<string, Batcher<ExactItem, SimilarHit[]>>();
  readonly #indexes = new Map<string, { index: InstanceType<typeof usearch.Index>; synced: number }>();

  constructor(
    private readonly atoms: AtomSpace,
    private readonly options: { approximateFrom: number; observer?: SimilarityObserver },
  ) {}

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
    if (mode === 'approximate' || (mode === 'auto' && space.size >= this.options.approximateFrom)) {
      hits = this.#approximate(space, vector, k, query.type, threshold);
      used = 'approximate';
    } else {
      hits = await this.#batcher(space).submit({ vector, k, type: query.type, threshold, space: space.name });
    }
    this.options.observer?.query(space.name, (performance.now() - started) / 1000, used === 'exact' ? space.rows : Math.min(space.size, k * 8), used);
    return hits.filter((h) => h.id !== query.exclude).slice(0, query.k);
  }

  /** Queries of one space with the same k, type and threshold share one native call. */
  #batcher(space: EmbeddingSpace): Batcher<ExactItem, SimilarHit[]> {
    let batcher = this.#batchers.get(space.name);
    if (!batcher) {
      batcher = new Batcher<ExactItem, SimilarHit[]>(
        { maxBatchSize: 64, maxQueueDelayMs: 0, instances: 1, maxQueueSize: 10_000 },
        { key: (q) => `${q.k}|${q.type ?? ''}|${q.threshold}`, rows: () => 1 },
        async (items) => {
          const first = items[0]!;
          const view = this.atoms.view(first.space);
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
      this.#batchers.set(space.name, batcher);
    }
    return batcher;
  }

  /** HNSW search (built on first use, then kept in step with the space). */
  #approximate(space: EmbeddingSpace, vector: Float32Array, k: number, type: string | undefined, threshold: number): SimilarHit[] {
    const index = this.#index(space);
    const mask = type ? this.atoms.types.mask(type) : undefined;
    // usearch has no filter callback: fetch more and filter here.
    // Removed atoms stay in the graph until a rebuild: over-fetch by the tombstones too.
    const want = Math.min(index.size(), (mask ? k * 8 : k) + Math.min(space.tombstones, k * 4));
    if (want === 0) return [];
    const result = index.search(vector, want, 0);
    const hits: SimilarHit[] = [];
    for (let i = 0; i < result.keys.length && hits.length < k; i++) {
      const id = Number(result.keys[i]!);
      const score = 1 - result.distances[i]!;
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

  #index(space: EmbeddingSpace) {
    let entry = this.#indexes.get(space.name);
    if (!entry) {
      const index = new usearch.Index({ metric: 'ip', connectivity: 16, dimensions: space.dim, expansion_add: 128, expansion_search: 96, quantization: 'f32' } as never);
      entry = { index, synced: 0 };
      this.#indexes.set(space.name, entry);
    }
    // Bring the index up to date with the space (rows are append-only; removals are tombstones).
    if (entry.synced !== space.rows) this.#sync(space, entry);
    return entry.index;
  }

  #sync(space: EmbeddingSpace, entry: { index: InstanceType<typeof usearch.Index>; synced: number }): void {
    const view = space.view();
    if (view.rows < entry.synced) {
      // The space was compacted: rebuild from scratch.
      entry.index = new usearch.Index({ metric: 'ip', connectivity: 16, dimensions: space.dim, expansion_add: 128, expansion_search: 96, quantization: 'f32' } as never);
      entry.synced = 0;
    }
    const keys: bigint[] = [];
    const rows: number[] = [];
    for (let row = entry.synced; row < view.rows; row++) {
      const id = view.rowAtoms[row]!;
      if (id < 0) continue;
      if (entry.index.contains(BigInt(id))) entry.index.remove(BigInt(id));
      keys.push(BigInt(id));
      rows.push(row);
    }
    if (keys.length) {
      const vectors = new Float32Array(keys.length * space.dim);
      rows.forEach((row, i) => vectors.set(view.matrix.subarray(row * space.dim, (row + 1) * space.dim), i * space.dim));
      entry.index.add(BigUint64Array.from(keys), vectors);
    }
    entry.synced = view.rows;
  }
}
