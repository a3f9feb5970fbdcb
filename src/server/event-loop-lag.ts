/**
 * Whether the event loop is overloaded: its mean delay, sampled every `sampleMs`, over the limit
 * for `sustained` samples in a row.
 *
 * One stall is not overload: a long synchronous job (a 16 MiB JSON body, a big journal replay at
 * start, a machine that did not schedule the process for a second) makes one sample large, and
 * by the time it is read the loop is free again. Shedding the requests that arrive after it
 * (what a single-sample rule does: @fastify/under-pressure's) refuses work the server can do,
 * so a server that started slowly on a busy machine answered its first requests 503. A loop
 * that lags sample after sample is overloaded, and that is what sheds.
 */
import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';

export interface EventLoopLagOptions {
  /** Mean delay (ms) over one sample past which the sample counts as lagging. */
  limitMs: number;
  /** How often the delay is sampled. */
  sampleMs?: number;
  /** How many lagging samples in a row make the loop overloaded. */
  sustained?: number;
}

export class EventLoopLag {
  readonly limitMs: number;
  readonly sampleMs: number;
  readonly sustained: number;
  private readonly histogram: IntervalHistogram;
  private readonly resolution = 10;
  private timer: NodeJS.Timeout | undefined;
  private lastSampleAt = performance.now();
  private lagging = 0;
  private latest = 0;

  constructor(options: EventLoopLagOptions) {
    this.limitMs = options.limitMs;
    this.sampleMs = options.sampleMs ?? 500;
    this.sustained = Math.max(1, options.sustained ?? 2);
    this.histogram = monitorEventLoopDelay({ resolution: this.resolution });
  }

  start(): this {
    if (this.timer) return this;
    this.histogram.enable();
    this.lastSampleAt = performance.now();
    this.timer = setInterval(() => this.sample(), this.sampleMs);
    this.timer.unref();
    return this;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.histogram.disable();
  }

  /** The latest sample's delay (ms) when the loop is overloaded, else undefined. */
  overloaded(): number | undefined {
    return this.lagging >= this.sustained ? this.latest : undefined;
  }

  /** Count one sample's mean delay (ms). */
  record(delayMs: number): void {
    this.latest = delayMs;
    this.lagging = delayMs > this.limitMs ? this.lagging + 1 : 0;
  }

  private sample(): void {
    const now = performance.now();
    // This timer's own lateness is a delay sample too: a stall that spans the whole interval
    // leaves the histogram empty (its mean NaN), not quiet.
    const late = Math.max(0, now - this.lastSampleAt - this.sampleMs);
    this.lastSampleAt = now;
    const mean = this.histogram.count > 0 ? Math.max(0, this.histogram.mean / 1e6 - this.resolution) : late;
    this.histogram.reset();
    this.record(mean);
  }
}
