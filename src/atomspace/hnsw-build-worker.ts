/**
 * Builds an HNSW index (usearch) off the main thread and saves it to a file; the main
 * thread then loads it. Building a large index takes minutes and usearch's add() blocks.
 */
import { parentPort, workerData } from 'node:worker_threads';

import usearch from 'usearch';

interface BuildJob {
  dim: number;
  connectivity: number;
  expansionAdd: number;
  expansionSearch: number;
  keys: BigUint64Array;
  vectors: Float32Array;
  path: string;
}

const job = workerData as BuildJob;
const index = new usearch.Index({
  metric: 'ip',
  dimensions: job.dim,
  connectivity: job.connectivity,
  expansion_add: job.expansionAdd,
  expansion_search: job.expansionSearch,
  quantization: 'f32',
} as never);
if (job.keys.length) index.add(job.keys, job.vectors);
index.save(job.path);
parentPort!.postMessage({ done: true, size: job.keys.length });
