/**
 * One sequence's forward passes for text generation without a past key/values module: every
 * step feeds the whole sequence so far and reads the logits of its last position. (With the
 * past module, the engine's DecodeScheduler batches sequences instead.)
 */
import { type Tensor, type ModelHandle, tensor } from '../../runtime/index.js';

export interface Decoder {
  /** Logits of the last position after feeding `token` (undefined on the first step: the prompt). */
  next(token: number | undefined): Promise<Float32Array>;
}

export function makeDecoder(module: ModelHandle, prompt: number[]): Decoder {
  const ids = [...prompt];
  return {
    async next(token) {
      if (token !== undefined) ids.push(token);
      const inputs = [tensor('int64', [1, ids.length], ids), tensor('int64', [1, ids.length], new Array<number>(ids.length).fill(1))];
      const out = await module.forward(inputs);
      const logits = (Array.isArray(out) ? out[0] : out) as Tensor;
      return logits.data as Float32Array;
    },
  };
}
