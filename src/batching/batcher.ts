/**
 * Dynamic batching for one model: requests wait in a bounded queue and run together, up to
 * `maxBatchSize` rows (and `maxBatchCost`, e.g. padded tokens) within `maxQueueDelayMs`, on
 * at most `instances` concurrent executions. Only requests with the same `key` (their
 * non-batch shape) share a batch. Requests may carry a deadline and an AbortSignal: expired
 * or cancelled ones leave the queue without running.
 */
export class QueueFullError extends Error {
  readonly code = 'QUEUE_FULL';
  constructor(readonly retryAfterSeconds: number, limit: number) {
    super(`the model's queue is full: ${limit} requests waiting (MAX_QUEUE_SIZE, or max_queue_size in the model's serving.json); retry in ${retryAfterSeconds} s`);
  }
}

export class DeadlineExceededError extends Error {
  readonly code = 'DEADLINE_EXCEEDED';
  constructor(timeoutMs: number) {
    super(`the request waited past its ${timeoutMs} ms timeout and was dropped`);
  }
}

/** The queue was closed (its model is unloading): the request was not run. */
export class QueueClosedError extends Error {
  readonly code = 'MODEL_NOT_READY';
  constructor() {
    super('the model is unloading; retry to load it again');
  }
}

export class CancelledError extends Error {
  readonly code = 'CANCELLED';
  constructor() {
    super('the request was cancelled (client went away)');
  }
}

/** How long a request waits for the rest of a busy model's clients to catch up (ms). */
export const CATCH_UP_MS = 1;

export interface BatcherOptions {
  maxBatchSize: number;
  maxQueueDelayMs: number;
  instances: number;
  maxQueueSize: number;
  /** Upper bound on the summed cost of one batch (e.g. padded tokens); Infinity for none. */
  maxBatchCost?: number;
}

export interface SubmitOptions {
  /** Milliseconds the request may wait for its result, queue included. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface BatchHooks<I> {
  /** Items that share a key may share a batch. */
  key(item: I): string;
  /** Rows the item adds to a batch (its batch dimension). */
  rows(item: I): number;
  /** Cost of a batch of these items (defaults to total rows). */
  cost?(items: I[]): number;
  /** Sequence length: a batch prefers items close in length to its oldest (less padding). */
  length?(item: I): number;
  /** Whether these items make a good batch (e.g. not too much padding); the oldest alone always does. */
  fits?(items: I[]): boolean;
}

interface Pending<I, R> {
  item: I;
  key: string;
  rows: number;
  enqueuedAt: number;
  deadline: number;
  timeoutMs: number;
  resolve(result: R): void;
  reject(error: unknown): void;
  timer?: NodeJS.Timeout;
  signal?: AbortSignal;
  onAbort?: () => void;
  settled: boolean;
}

export interface BatchStats {
  /** When the batch started, per item: how long it had waited in the queue (ms). */
  queueMs: number[];
  rows: number;
}

/** A result that fails its own request only, the rest of the batch succeeding. */
export class ItemFailure {
  constructor(readonly error: unknown) {}
}

export type RunBatch<I, R> = (items: I[], stats: BatchStats) => Promise<(R | ItemFailure)[]>;

export class Batcher<I, R> {
  readonly #queue: Pending<I, R>[] = [];
  readonly #options: Required<BatcherOptions>;
  readonly #hooks: BatchHooks<I>;
  readonly #run: RunBatch<I, R>;
  #running = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #idleWaiters: (() => void)[] = [];
  /** Rows of the last batch started: under load, the next one should be about as full. */
  #lastRows = 0;

  constructor(options: BatcherOptions, hooks: BatchHooks<I>, run: RunBatch<I, R>) {
    this.#options = { maxBatchCost: Infinity, ...options };
    this.#hooks = hooks;
    this.#run = run;
  }

  get queued(): number {
    return this.#queue.length;
  }

  get running(): number {
    return this.#running;
  }

  get options(): Readonly<Required<BatcherOptions>> {
    return this.#options;
  }

  submit(item: I, options: SubmitOptions = {}): Promise<R> {
    if (this.#closed) return Promise.reject(new QueueClosedError());
    if (options.signal?.aborted) return Promise.reject(new CancelledError());
    if (this.#queue.length >= this.#options.maxQueueSize) {
      // Roughly how long the queue ahead takes to drain, in whole seconds.
      return Promise.reject(new QueueFullError(1, this.#options.maxQueueSize));
    }
    return new Promise<R>((resolve, reject) => {
      const now = performance.now();
      const timeoutMs = options.timeoutMs ?? 0;
      const pending: Pending<I, R> = {
        item,
        key: this.#hooks.key(item),
        rows: this.#hooks.rows(item),
        enqueuedAt: now,
        deadline: timeoutMs > 0 ? now + timeoutMs : Infinity,
        timeoutMs,
        resolve,
        reject,
        settled: false,
      };
      if (timeoutMs > 0) {
        pending.timer = setTimeout(() => this.#drop(pending, new DeadlineExceededError(timeoutMs)), timeoutMs);
      }
      if (options.signal) {
        pending.signal = options.signal;
        pending.onAbort = () => this.#drop(pending, new CancelledError());
        options.signal.addEventListener('abort', pending.onAbort, { once: true });
      }
      this.#queue.push(pending);
      this.#pump();
    });
  }

  /** Stop accepting work; resolves when queued and running batches have finished. */
  async drain(): Promise<void> {
    this.#closed = true;
    if (this.#queue.length === 0 && this.#running === 0) return;
    await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
  }

  get idle(): boolean {
    return this.#queue.length === 0 && this.#running === 0;
  }

  #drop(pending: Pending<I, R>, error: Error): void {
    const index = this.#queue.indexOf(pending);
    if (index < 0) return; // already running: it will finish
    this.#queue.splice(index, 1);
    this.#settle(pending, () => pending.reject(error));
    this.#notifyIdle();
  }

  #settle(pending: Pending<I, R>, action: () => void): void {
    if (pending.settled) return;
    pending.settled = true;
    if (pending.timer) clearTimeout(pending.timer);
    if (pending.signal && pending.onAbort) pending.signal.removeEventListener('abort', pending.onAbort);
    action();
  }

  #pump(): void {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    while (this.#running < this.#options.instances && this.#queue.length > 0) {
      const oldest = this.#queue[0]!;
      const waited = performance.now() - oldest.enqueuedAt;
      const readyRows = this.#queue.filter((p) => p.key === oldest.key).reduce((n, p) => n + p.rows, 0);
      // Wait for company while the delay allows. With no delay set, still wait briefly when far
      // fewer rows are queued than the last batch had: under load the clients of that batch are
      // sending their next requests right now, and a batch of one would leave them all waiting.
      const delay = this.#options.maxQueueDelayMs || (this.#lastRows >= 4 && readyRows * 2 < this.#lastRows ? CATCH_UP_MS : 0);
      if (!this.#closed && readyRows < this.#options.maxBatchSize && waited < delay) {
        this.#timer = setTimeout(() => this.#pump(), delay - waited);
        return;
      }
      this.#start(this.#take());
    }
  }

  /**
   * The oldest request, plus compatible ones that fit the batch limits: closest in length
   * first (then oldest first), so a batch pads as little as it can.
   */
  #take(): Pending<I, R>[] {
    const first = this.#queue.shift()!;
    const batch = [first];
    let rows = first.rows;
    const length = this.#hooks.length;
    const target = length ? length(first.item) : 0;
    const candidates = this.#queue
      .map((p, index) => ({ p, index, distance: length ? Math.abs(length(p.item) - target) : 0 }))
      .filter(({ p }) => p.key === first.key)
      .sort((a, b) => a.distance - b.distance || a.index - b.index);
    const chosen = new Set<Pending<I, R>>();
    for (const { p } of candidates) {
      if (rows >= this.#options.maxBatchSize) break;
      if (rows + p.rows > this.#options.maxBatchSize) continue;
      const items = [...batch.map((b) => b.item), p.item];
      const cost = this.#hooks.cost ? this.#hooks.cost(items) : rows + p.rows;
      if (cost > this.#options.maxBatchCost) continue;
      if (this.#hooks.fits && !this.#hooks.fits(items)) continue;
      batch.push(p);
      chosen.add(p);
      rows += p.rows;
    }
    if (chosen.size) {
      for (let i = this.#queue.length - 1; i >= 0; i--) if (chosen.has(this.#queue[i]!)) this.#queue.splice(i, 1);
    }
    return batch;
  }

  #start(batch: Pending<I, R>[]): void {
    this.#running++;
    this.#lastRows = batch.reduce((n, p) => n + p.rows, 0);
    const now = performance.now();
    const stats: BatchStats = { queueMs: batch.map((p) => now - p.enqueuedAt), rows: batch.reduce((n, p) => n + p.rows, 0) };
    // Timers stop here: a running request is not dropped half-way.
    for (const p of batch) if (p.timer) clearTimeout(p.timer);
    this.#run(
      batch.map((p) => p.item),
      stats,
    ).then(
      (results) => {
        batch.forEach((p, i) => {
          const result = results[i]!;
          this.#settle(p, () => (result instanceof ItemFailure ? p.reject(result.error) : p.resolve(result)));
        });
      },
      (error: unknown) => {
        for (const p of batch) this.#settle(p, () => p.reject(error));
      },
    ).finally(() => {
      this.#running--;
      this.#pump();
      this.#notifyIdle();
    });
  }

  #notifyIdle(): void {
    if (this.#queue.length === 0 && this.#running === 0 && this.#idleWaiters.length) {
      for (const resolve of this.#idleWaiters.splice(0)) resolve();
    }
  }
}
