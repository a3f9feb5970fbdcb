/** The HNSW index both the build worker and the search side create: inner product on unit vectors. */
import usearch from 'usearch';

export interface HnswOptions {
  /** Graph degree (M). */
  connectivity: number;
  /** Candidate list size while building (efConstruction). */
  expansionAdd: number;
  /** Candidate list size while searching (ef): higher is slower and more exact. */
  expansionSearch: number;
}

export type HnswIndex = InstanceType<typeof usearch.Index>;

export function newHnswIndex(dim: number, options: HnswOptions): HnswIndex {
  return new usearch.Index({
    metric: 'ip',
    dimensions: dim,
    connectivity: options.connectivity,
    expansion_add: options.expansionAdd,
    expansion_search: options.expansionSearch,
    quantization: 'f32',
  } as never);
}
