/**
 * Next-token choice from one row of logits: greedy (argmax, as transformers' greedy search),
 * or sampling with temperature, top-k and top-p applied in transformers' order, drawn from a
 * seeded generator so that a seed makes a run repeatable.
 */

export interface SamplingOptions {
  temperature: number;
  topK: number;
  topP: number;
}

/** First index of the largest value (torch.argmax's tie rule). */
export function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

/** log softmax(row)[index]: the log-probability the model gives token `index` (temperature 1, unfiltered). */
export function logProbability(row: Float32Array, index: number): number {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i]! > max) max = row[i]!;
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i]! - max);
  return row[index]! - max - Math.log(sum);
}

/** xoshiro128** seeded by splitmix32: small, fast, repeatable across platforms. */
export class SeededRandom {
  #s: Uint32Array;

  constructor(seed: number) {
    let x = seed >>> 0;
    const next = () => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.#s = new Uint32Array([next(), next(), next(), next()]);
  }

  /** Uniform in [0, 1). */
  next(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1]!, 5), 7), 9) >>> 0;
    const t = (s[1]! << 9) >>> 0;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return result / 2 ** 32;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** Sample a token id from `logits` (left untouched). */
export function sample(logits: Float32Array, options: SamplingOptions, random: SeededRandom): number {
  const n = logits.length;
  let order = Array.from({ length: n }, (_, i) => i).sort((a, b) => logits[b]! - logits[a]! || a - b);
  if (options.topK > 0 && options.topK < n) order = order.slice(0, options.topK);
  const scaled = order.map((i) => logits[i]! / options.temperature);
  const max = scaled[0]!;
  const weights = scaled.map((v) => Math.exp(v - max));
  let total = weights.reduce((a, b) => a + b, 0);
  if (options.topP < 1) {
    // Keep the smallest head of the distribution whose mass reaches top_p (at least one token).
    let mass = 0;
    let keep = 0;
    while (keep < weights.length) {
      mass += weights[keep]! / total;
      keep++;
      if (mass >= options.topP) break;
    }
    order = order.slice(0, keep);
    weights.length = keep;
    total = weights.reduce((a, b) => a + b, 0);
  }
  let r = random.next() * total;
  for (let i = 0; i < weights.length; i++) {
    r -= weights[i]!;
    if (r < 0) return order[i]!;
  }
  return order[order.length - 1]!;
}
