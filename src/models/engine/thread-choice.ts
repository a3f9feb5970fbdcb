/**
 * How many intra-op threads a forward gets: measured per model at calibration, not tuned.
 *
 * On a CPU a small forward is slower on all the cores than on one: each of its ~100 parallel
 * regions wakes the other threads, and that costs more than the region's work (a 2-layer BERT,
 * one 8-token row: 0.36 ms on one thread, 0.52 ms on two; one 32-token row 0.47 vs 1.06 ms). A
 * big batch is the opposite (16 × 128 tokens: 29.7 vs 22.5 ms). Where the two cross depends on
 * the model and the machine, so calibration times the warm-up grid again on all threads and on
 * one, smallest first, and keeps the cost below which one thread was faster at every shape; a
 * batch the (all-threads) cost model predicts to cost no more runs on one thread.
 */
import type { Tensor } from '../../runtime/index.js';
import type { Manifest } from '../manifest.js';
import type { CostSample } from './cost-model.js';
import { exampleInputs } from './warmup.js';

/** A module whose forward takes a thread count. */
export interface ThreadedForward {
  forward(inputs: Tensor[], options?: { threads?: number }): Promise<unknown>;
}

/** One thread must beat all of them by this much to count (timings on a busy machine move by a few %). */
const MARGIN = 0.95;

/** The pause before each timed forward: longer than OpenMP's threads spin before they sleep. */
const IDLE_PAUSE_MS = 5;

export class ThreadChoice {
  /** Batches predicted to take at most this (ms, on all threads) run on one thread; 0: none do. */
  readonly singleThreadUpToMs: number;

  constructor(singleThreadUpToMs = 0) {
    this.singleThreadUpToMs = singleThreadUpToMs;
  }

  /** The `threads` option for a batch predicted to take `predictedMs` on all threads (undefined: all of them). */
  threadsFor(predictedMs: number): number | undefined {
    return this.singleThreadUpToMs > 0 && predictedMs <= this.singleThreadUpToMs ? 1 : undefined;
  }

  /**
   * From timings of the same shapes on all threads (`allMs`) and on one (`singleMs`), each with
   * `ms`, the shape's time in the cost model's calibration (the scale `threadsFor` is asked in).
   */
  static fromTimings(timings: readonly { ms: number; allMs: number; singleMs: number }[]): ThreadChoice {
    let upTo = 0;
    for (const t of [...timings].sort((a, b) => a.ms - b.ms)) {
      if (!(t.singleMs < t.allMs * MARGIN)) break;
      upTo = t.ms;
    }
    return new ThreadChoice(upTo);
  }

  /**
   * Time the calibration shapes on all threads and on one, smallest first, until one thread
   * stops winning. Each timed forward follows an idle pause, as a request reaching a quiet
   * server does: back to back, the other threads are still spinning from the last forward and
   * all threads look cheaper than they are when requests come one at a time (the only time
   * batches are small). `samples` are warmUpAndCalibrate's timings.
   */
  static async calibrate(module: ThreadedForward, manifest: Manifest, samples: readonly CostSample[], pauseMs = IDLE_PAUSE_MS): Promise<ThreadChoice> {
    const timings: { ms: number; allMs: number; singleMs: number }[] = [];
    const idle = () => new Promise((resolve) => setTimeout(resolve, pauseMs));
    for (const sample of [...samples].sort((a, b) => a.ms - b.ms)) {
      const inputs = exampleInputs(manifest, sample.rows, Math.max(1, sample.length));
      let allMs = Infinity;
      let singleMs = Infinity;
      for (let i = 0; i < 3; i++) {
        for (const threads of [undefined, 1]) {
          await idle();
          const t0 = performance.now();
          await module.forward(inputs, threads ? { threads } : undefined);
          const ms = performance.now() - t0;
          if (threads) singleMs = Math.min(singleMs, ms);
          else allMs = Math.min(allMs, ms);
        }
      }
      timings.push({ ms: sample.ms, allMs, singleMs });
      if (!(singleMs < allMs * MARGIN)) break;
    }
    return ThreadChoice.fromTimings(timings);
  }
}
