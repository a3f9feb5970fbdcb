/**
 * What a forward costs, measured: t(rows, length) ≈ a + b·rows·length + c·rows·length², fitted
 * by least squares on relative error to the forwards this model actually ran (the warm-up's
 * calibration grid, kept for good, plus the most recent batches served). `a` is what every
 * forward pays whatever its size (dispatch, thread start-up, small-matrix inefficiency), `b`
 * the per-token work (projections, MLP), `c` attention's quadratic term. Inputs with no
 * sequence dimension (images, fixed-shape tensors) use length 1: t = a + (b + c)·rows.
 *
 * Until anything is measured the model is pure padded work (a = 0, b = 1, c = 0), which
 * makes a scheduler prefer the least padding and, at equal padding, the most rows.
 */

export interface CostSample {
  rows: number;
  length: number;
  ms: number;
}

export interface CostEstimate {
  /** Predicted milliseconds of one forward over `rows` rows padded to `length`. */
  predict(rows: number, length: number): number;
  /** Milliseconds one more row of `length` adds to a large batch (the cost without the fixed part). */
  marginal(length: number): number;
}

/** Recent served batches kept for the fit. */
const RECENT = 256;
/** Refit after this many new samples. */
const REFIT_EVERY = 8;

export class CostModel implements CostEstimate {
  #a = 0;
  #b = 1;
  #c = 0;
  readonly #calibration: CostSample[] = [];
  readonly #recent: CostSample[] = [];
  #next = 0;
  #sinceFit = 0;
  #fitted = false;

  /** Samples measured at warm-up: always part of the fit (they span shapes serving may not visit). */
  calibrate(samples: CostSample[]): void {
    this.#calibration.push(...samples.filter(valid));
    this.#refit();
  }

  /** A forward that ran while serving. */
  observe(sample: CostSample): void {
    if (!valid(sample)) return;
    if (this.#recent.length < RECENT) this.#recent.push(sample);
    else this.#recent[this.#next] = sample;
    this.#next = (this.#next + 1) % RECENT;
    if (++this.#sinceFit >= REFIT_EVERY) this.#refit();
  }

  predict(rows: number, length: number): number {
    const tokens = rows * Math.max(1, length);
    return this.#a + this.#b * tokens + this.#c * tokens * Math.max(1, length);
  }

  marginal(length: number): number {
    const l = Math.max(1, length);
    return this.#b * l + this.#c * l * l;
  }

  /** The fitted coefficients (ms, ms per token, ms per token·length), and whether anything was measured. */
  get coefficients(): { fixedMs: number; perTokenMs: number; perTokenLengthMs: number; measured: boolean } {
    return { fixedMs: this.#a, perTokenMs: this.#b, perTokenLengthMs: this.#c, measured: this.#fitted };
  }

  #refit(): void {
    this.#sinceFit = 0;
    const samples = [...this.#calibration, ...this.#recent];
    if (samples.length < 3) return;
    const fit = fitNonNegative(samples);
    if (!fit) return;
    [this.#a, this.#b, this.#c] = fit;
    this.#fitted = true;
  }
}

function valid(s: CostSample): boolean {
  return s.rows >= 1 && s.length >= 0 && Number.isFinite(s.ms) && s.ms > 0;
}

/**
 * Weighted least squares (weights 1/t², i.e. relative error) of t on [1, tokens, tokens·length],
 * with every coefficient ≥ 0: a feature whose coefficient comes out negative is dropped and the
 * rest refitted (a tiny active-set method; three features at most). Null when degenerate.
 */
export function fitNonNegative(samples: readonly CostSample[]): [number, number, number] | undefined {
  const features = (s: CostSample) => {
    const l = Math.max(1, s.length);
    return [1, s.rows * l, s.rows * l * l];
  };
  let active = [0, 1, 2];
  while (active.length > 0) {
    const k = active.length;
    const ata = Array.from({ length: k }, () => new Array<number>(k).fill(0));
    const atb = new Array<number>(k).fill(0);
    for (const s of samples) {
      const x = features(s);
      const w = 1 / (s.ms * s.ms);
      for (let i = 0; i < k; i++) {
        atb[i]! += w * x[active[i]!]! * s.ms;
        for (let j = 0; j < k; j++) ata[i]![j]! += w * x[active[i]!]! * x[active[j]!]!;
      }
    }
    const solution = solve(ata, atb);
    if (!solution) {
      active = active.slice(0, -1);
      continue;
    }
    const negative = solution.findIndex((v) => v < 0);
    if (negative < 0) {
      const out: [number, number, number] = [0, 0, 0];
      active.forEach((f, i) => (out[f] = solution[i]!));
      return out[1] + out[2] > 0 ? out : undefined;
    }
    active = active.filter((_, i) => i !== negative);
  }
  return undefined;
}

/** Gaussian elimination with partial pivoting; undefined when singular. */
function solve(a: number[][], b: number[]): number[] | undefined {
  const n = b.length;
  const m = a.map((row, i) => [...row, b[i]!]);
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(m[r]![col]!) > Math.abs(m[pivot]![col]!)) pivot = r;
    const scale = Math.max(...m.map((row) => Math.abs(row[col]!)));
    if (Math.abs(m[pivot]![col]!) <= 1e-12 * (scale || 1)) return undefined;
    [m[col], m[pivot]] = [m[pivot]!, m[col]!];
    for (let r = 0; r < n; r++) {
      if (r === col) continue;
      const f = m[r]![col]! / m[col]![col]!;
      for (let c = col; c <= n; c++) m[r]![c]! -= f * m[col]![c]!;
    }
  }
  return m.map((row, i) => row[n]! / row[i]!);
}
