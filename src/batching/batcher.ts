/**
 * A bounded queue that runs its items in batches: up to `maxBatchSize` rows within
 * `maxQueueDelayMs`, on at most `instances` concurrent executions. Only items with the same
 * `key` (their non-batch shape) share a batch. Which waiting items form the next batch is the
 * `select` hook's choice when given (a scheduling policy), else the oldest item and the
 * compatible ones after it, in arrival order.
 * Items may carry a deadline and an AbortSignal: expired or cancelled ones leave the queue
 * without running. Knows nothing of models: the model engines and the AtomSpace's similarity
 * search both use it.
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
  /**
   * The scheduling policy: given everything waiting (oldest first), the indices of the items
   * that run next (at least one). Replaces the default choice (oldest + compatible, in order).
   */
  select?(waiting: readonly Waiting<I>[]): number[];
  /**
   * With an instance free and no MAX_QUEUE_DELAY_MS set: how long (ms, from the oldest item's
   * arrival) to hold the next batch for company. Replaces the default catch-up rule.
   */
  hold?(waiting: readonly Waiting<I>[]): number;
}

/** A queued item as a scheduling policy sees it. */
export interface Waiting<I> {
  item: I;
  key: string;
  rows: number;
  /** Batches that started while this item waited and did not take it. */
  skipped: number;
  /** Milliseconds it has waited so far. */
  waitedMs: number;
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
  skipped: number;
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
  readonly #options: BatcherOptions;
  readonly #hooks: BatchHooks<I>;
  readonly #run: RunBatch<I, R>;
  #running = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #idleWaiters: (() => void)[] = [];
  /** Rows of the last batch started: under load, the next one should be about as full. */
  #lastRows = 0;

  constructor(options: BatcherOptions, hooks: BatchHooks<I>, run: RunBatch<I, R>) {
    this.#options = { ...options };
    this.#hooks = hooks;
    this.#run = run;
  }

  get queued(): number {
    return this.#queue.length;
  }

  get running(): number {
    return this.#running;
  }

  get options(): Readonly<BatcherOptions> {
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
        skipped: 0,
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
      // Wait for company while the delay allows. With no delay set, the policy's `hold` decides;
      // without one, still wait briefly when far fewer rows are queued than the last batch had:
      // under load the clients of that batch are sending their next requests right now, and a
      // batch of one would leave them all waiting.
      const delay =
        this.#options.maxQueueDelayMs ||
        (this.#hooks.hold
          ? this.#hooks.hold(this.#waiting())
          : this.#lastRows >= 4 && readyRows * 2 < this.#lastRows
            ? CATCH_UP_MS
            : 0);
      if (!this.#closed && readyRows < this.#options.maxBatchSize && waited < delay) {
        this.#timer = setTimeout(() => this.#pump(), delay - waited);
        return;
      }
      this.#start(this.#take());
    }
  }

  /** The next batch out of the queue; every item left behind counts one more skip. */
  #take(): Pending<I, R>[] {
    const batch = this.#hooks.select ? this.#selected(this.#hooks.select) : this.#inOrder();
    for (const p of this.#queue) p.skipped++;
    return batch;
  }

  /** The queue as a policy sees it, oldest first. */
  #waiting(): Waiting<I>[] {
    const now = performance.now();
    return this.#queue.map((p) => ({ item: p.item, key: p.key, rows: p.rows, skipped: p.skipped, waitedMs: now - p.enqueuedAt }));
  }

  /** The policy's choice, taken out of the queue (an empty or invalid choice takes the oldest). */
  #selected(select: NonNullable<BatchHooks<I>['select']>): Pending<I, R>[] {
    const picked = select(this.#waiting());
    const indices = [...new Set(picked)].filter((i) => Number.isInteger(i) && i >= 0 && i < this.#queue.length).sort((a, b) => a - b);
    if (indices.length === 0) return [this.#queue.shift()!];
    const batch = indices.map((i) => this.#queue[i]!);
    for (let k = indices.length - 1; k >= 0; k--) this.#queue.splice(indices[k]!, 1);
    return batch;
  }

  /** The oldest request, plus the compatible ones after it, in arrival order, up to maxBatchSize rows. */
  #inOrder(): Pending<I, R>[] {
    const first = this.#queue.shift()!;
    const batch = [first];
    let rows = first.rows;
    for (let i = 0; i < this.#queue.length && rows < this.#options.maxBatchSize; ) {
      const p = this.#queue[i]!;
      if (p.key === first.key && rows + p.rows <= this.#options.maxBatchSize) {
        batch.push(p);
        rows += p.rows;
        this.#queue.splice(i, 1);
      } else {
        i++;
      }
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
    // When a batch ends, the next one starts before its requests are answered: their answers
    // (pooling, JSON, the reply) then run on the event loop while the executor is busy again.
    const next = () => {
      this.#running--;
      this.#pump();
    };
    let run: Promise<(R | ItemFailure)[]>;
    try {
      run = this.#run(
        batch.map((p) => p.item),
        stats,
      );
    } catch (error) {
      run = Promise.reject(error);
    }
    run.then(
      (results) => {
        next();
        batch.forEach((p, i) => {
          const result = results[i]!;
          this.#settle(p, () => (result instanceof ItemFailure ? p.reject(result.error) : p.resolve(result)));
        });
        this.#notifyIdle();
      },
      (error: unknown) => {
        next();
        for (const p of batch) this.#settle(p, () => p.reject(error));
        this.#notifyIdle();
      },
    );
  }

  #notifyIdle(): void {
    if (this.#queue.length === 0 && this.#running === 0 && this.#idleWaiters.length) {
      for (const resolve of this.#idleWaiters.splice(0)) resolve();
    }
  }
}
