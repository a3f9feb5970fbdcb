/** Exact top-k by cosine over a contiguous, pre-normalised matrix, in native code off the event loop. */
import { nativeAddon } from './addon.js';
import { fromNative } from './errors.js';

export interface TopKRequest {
  /** rows x dim row-major, rows already L2-normalised. Read in place, not copied. */
  matrix: Float32Array;
  rows: number;
  dim: number;
  /** One or more normalised query vectors, concatenated. */
  queries: Float32Array;
  k: number;
  /** Per-row type codes; 0xFFFF marks a removed row. */
  rowTypes?: Uint16Array;
  /** allowedTypes[code] = 1 keeps rows of that type. */
  allowedTypes?: Uint8Array;
  /** Minimum score. */
  threshold?: number;
}

export interface TopKResult {
  /** Row indices, best first. */
  indices: Int32Array;
  scores: Float32Array;
}

export async function topK(request: TopKRequest): Promise<TopKResult[]> {
  try {
    return await nativeAddon().topK(request);
  } catch (error) {
    throw fromNative(error);
  }
}
