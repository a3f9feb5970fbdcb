/**
 * One sequence's incremental forward passes for text generation: feed the prompt, then one
 * token at a time, getting the logits of the last position. With the exported past key/values
 * module each step feeds only the new token and the cache; without it, the whole sequence.
 */
import { type Tensor, type TorchScriptModule, tensor, zeros } from '../../runtime/index.js';
import type { GenerationSection } from '../manifest.js';

export interface Decoder {
  /** Logits of the last position after feeding `token` (undefined on the first step: the prompt). */
  next(token: number | undefined): Promise<Float32Array>;
}

export function makeDecoder(module: TorchScriptModule, past: TorchScriptModule | undefined, section: GenerationSection, prompt: number[]): Decoder {
  const ids = [...prompt];
  const geometry = section.past_key_values;
  if (past && geometry) {
    const { n_layer, n_head, head_dim } = geometry;
    let cache: Tensor[] = Array.from({ length: 2 * n_layer }, () => zeros('float32', [1, n_head, 0, head_dim]));
    return {
      async next(token) {
        const feed = token === undefined ? ids : [token];
        if (token !== undefined) ids.push(token);
        const inputs = [tensor('int64', [1, feed.length], feed), tensor('int64', [1, ids.length], new Array<number>(ids.length).fill(1)), ...cache];
        const out = (await past.forward(inputs)) as Tensor[];
        cache = out.slice(1);
        return out[0]!.data as Float32Array;
      },
    };
  }
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
