/** Sentence-embedding post-processing: mean or CLS pooling, Matryoshka truncation, L2 norm. */

/** Pool one text's hidden states [seq, hidden] (its real tokens only) into one vector. */
export function pool(hidden: Float32Array, seq: number, width: number, mode: 'mean' | 'cls'): Float32Array {
  const out = new Float32Array(width);
  if (mode === 'cls') {
    out.set(hidden.subarray(0, width));
    return out;
  }
  // Accumulate in float64: the mean of many float32 rows loses digits otherwise.
  const sum = new Float64Array(width);
  for (let s = 0; s < seq; s++) {
    const row = s * width;
    for (let h = 0; h < width; h++) sum[h]! += hidden[row + h]!;
  }
  for (let h = 0; h < width; h++) out[h] = sum[h]! / seq;
  return out;
}

/** Keep the first `dimensions` values (Matryoshka), then L2-normalise when asked. */
export function finish(vector: Float32Array, dimensions: number | undefined, normalize: boolean): Float32Array {
  const v = dimensions !== undefined && dimensions < vector.length ? vector.slice(0, dimensions) : vector;
  if (!normalize) return v;
  let norm = 0;
  for (let i = 0; i < v.length; i++) norm += v[i]! * v[i]!;
  norm = Math.sqrt(norm);
  if (norm > 0) for (let i = 0; i < v.length; i++) v[i] = v[i]! / Math.max(norm, 1e-12);
  return v;
}
