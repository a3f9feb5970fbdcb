/**
 * Which waiting requests run together next: the token-budget scheduler of a model engine, in
 * the spirit of text-embeddings-inference's `next_batch`, but choosing by measured cost.
 *
 * When an executor is free it looks at everything waiting. Among requests that may share a
 * batch (same non-batch shape), sorted by length, every run of neighbours that fits the limits
 * (`maxBatchSize` rows, `maxBatchTokens` padded tokens; one request alone always fits) is a
 * candidate, and the one with the best **efficiency** wins:
 *
 *     efficiency = Σ rows_i · marginal(length_i)  /  predict(rows, longest)
 *
 * the work the batch's requests would cost in an ideal, perfectly packed batch over what this
 * batch is predicted to cost. Padding lowers it (the longest length is paid by every row), and so
 * does a small batch (the fixed cost of a forward is shared by fewer rows); the cost model says
 * by how much on this hardware. Among candidates within 2 % of the best, the one with more
 * rows wins. Nothing here is a constant tuned for one workload: only the measured cost decides.
 *
 * No starvation: a request that `maxSkips` batches have passed over must be in the next batch
 * (the oldest such request; the best candidate containing it is taken). So every request runs
 * within `maxSkips + 1` batch starts of its arrival at the front of the queue.
 */
import type { CostEstimate } from './cost-model.js';

export interface Candidate {
  key: string;
  rows: number;
  /** Sequence length (0 for inputs with no sequence dimension). */
  length: number;
  /** Batches started while it waited without taking it. */
  skipped: number;
}

export interface PolicyLimits {
  maxBatchSize: number;
  /** Padded tokens (rows × longest length) per batch; Infinity for none. */
  maxBatchTokens: number;
  /** Batches that may pass a request over before it must run. */
  maxSkips: number;
}

/** Candidates within this fraction of the best efficiency count as equal; more rows wins. */
const TIE = 0.02;

/** Indices (into `waiting`, oldest first) of the next batch; empty only when nothing waits. */
export function chooseBatch(waiting: readonly Candidate[], limits: PolicyLimits, cost: CostEstimate): number[] {
  if (waiting.length === 0) return [];
  const forced = waiting.findIndex((w) => w.skipped >= limits.maxSkips);
  const keys = forced >= 0 ? [waiting[forced]!.key] : [...new Set(waiting.map((w) => w.key))];
  const candidates: { indices: () => number[]; score: number; rows: number }[] = [];
  for (const key of keys) {
    const group = waiting
      .map((w, index) => ({ w, index }))
      .filter(({ w }) => w.key === key)
      .sort((x, y) => x.w.length - y.w.length || x.index - y.index);
    const forcedAt = forced >= 0 ? group.findIndex((g) => g.index === forced) : -1;
    for (let start = 0; start < group.length; start++) {
      if (forcedAt >= 0 && start > forcedAt) break;
      let rows = 0;
      let useful = 0;
      for (let end = start; end < group.length; end++) {
        const { w } = group[end]!;
        const nextRows = rows + w.rows;
        if (end > start && (nextRows > limits.maxBatchSize || nextRows * Math.max(1, w.length) > limits.maxBatchTokens)) break;
        rows = nextRows;
        useful += w.rows * cost.marginal(w.length);
        if (forcedAt >= 0 && end < forcedAt) continue;
        const last = end;
        candidates.push({ indices: () => group.slice(start, last + 1).map((g) => g.index), score: useful / cost.predict(rows, w.length), rows });
      }
    }
  }
  if (candidates.length === 0) return [forced >= 0 ? forced : 0];
  const top = Math.max(...candidates.map((c) => c.score));
  let chosen = candidates[0]!;
  for (const c of candidates) {
    if (c.score < top * (1 - TIE)) continue;
    if (chosen.score < top * (1 - TIE) || c.rows > chosen.rows || (c.rows === chosen.rows && c.score > chosen.score)) chosen = c;
  }
  return chosen.indices().sort((a, b) => a - b);
}

/** Holds considered (ms); the longest is also bounded by the batch's own predicted time. */
const HOLDS = [0.5, 1, 2, 4, 8, 16, 32];

/** What the engine knows about who may arrive soon. */
export interface Arrivals {
  /** Mean arrival rate (per ms). */
  perMs: number;
  /** Requests that may still come: the load the clients recently kept up, less what is here. */
  coming: number;
  /** Typical delay (ms) from a batch's end to the next requests of its clients (a closed loop's round trip). */
  returnMs: number;
}

/**
 * How long to hold the next batch for company when an executor is free: the hold `w` that
 * maximises expected rows per millisecond, rows(w) / (w + predict(rows(w), length)), against
 * running the `ready` rows now. rows(w) counts steady arrivals (rate × w) and, once `w` reaches
 * the measured return time, the clients of the batch that just ended (a closed loop sends its
 * next requests right after its answers); never more than `coming`, never past `maxRows`. Under
 * light load this is 0; holds never exceed half the batch's own predicted time. 0 means run now.
 */
export function holdMs(ready: number, length: number, arrivals: Arrivals, maxRows: number, cost: CostEstimate): number {
  const { perMs, coming, returnMs } = arrivals;
  if (ready >= maxRows || coming <= 0) return 0;
  const now = ready / cost.predict(ready, length);
  const bound = cost.predict(ready, length) / 2;
  const holds = [...HOLDS, returnMs].filter((w) => w > 0 && w <= bound && Number.isFinite(w)).sort((a, b) => a - b);
  let best = { w: 0, score: now };
  for (const w of holds) {
    const expected = w >= returnMs ? coming : Math.min(coming, Math.max(0, perMs) * w);
    const rows = Math.min(maxRows, ready + expected);
    const score = rows / (w + cost.predict(rows, length));
    if (score > best.score * 1.02) best = { w, score };
  }
  return best.w;
}
