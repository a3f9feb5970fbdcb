/**
 * Builds an HNSW index (usearch) off the main thread and saves it to a file; the main
 * thread then loads it. Building a large index takes minutes and usearch's add() blocks.
 */
import { parentPort, workerData } from 'node:worker_threads';

import { type HnswOptions, newHnswIndex } from './hnsw-index.js';

interface BuildJob extends HnswOptions {
  dim: number;
  keys: BigUint64Array;
  vectors: Float32Array;
  path: string;
}

const job = workerData as BuildJob;
const index = newHnswIndex(job.dim, job);
if (job.keys.length) index.add(job.keys, job.vectors);
index.save(job.path);
parentPort!.postMessage({ done: true, size: job.keys.length });
