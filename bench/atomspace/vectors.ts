/**
 * Benchmark vectors: seeded, clustered around 1000 centres (noise 0.15), like knn.ts, so that
 * the ingest, search and HNSW benchmarks and the numpy oracle see the same data. Also writes
 * them as raw float32 (for numpy) and encodes them as NDJSON import lines (base64 float32).
 */
export function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

/** Vector i of the clustered set, written into `out` (centres from `seed`, noise from `seed` + 1). */
export function clustered(d: number, seed: number): (out: Float32Array) => Float32Array {
  const rand = random(seed);
  const centres = Array.from({ length: 1000 }, () => Float32Array.from({ length: d }, rand));
  const noise = random(seed + 1);
  let i = 0;
  return (out) => {
    const c = centres[i++ % centres.length]!;
    for (let k = 0; k < d; k++) out[k] = c[k]! + 0.15 * noise();
    return out;
  };
}

/** `n` vectors of the set, one contiguous row-major matrix. */
export function matrix(n: number, d: number, seed: number): Float32Array {
  const next = clustered(d, seed);
  const m = new Float32Array(n * d);
  for (let i = 0; i < n; i++) next(m.subarray(i * d, (i + 1) * d));
  return m;
}

export function base64(v: Float32Array): string {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
}

/** One NDJSON import line for node `i`. */
export function importLine(i: number, v: Float32Array, space = 'bench'): string {
  return `{"type":"ConceptNode","name":"n${i}","space":"${space}","embedding":"${base64(v)}"}\n`;
}
