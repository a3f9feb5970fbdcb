/**
 * Continuous batching for text generation (iteration-level scheduling, as TGI's batching task
 * and vLLM's scheduler do it): every decode step runs all of a model's active sequences in one
 * forward of the past key/values module. Sequences that arrive while others decode are
 * prefilled together (their prompts left-padded; the module derives position ids from the
 * attention mask, so a padded row gives the logits of the same sequence alone) and join at the
 * next step; a sequence that finishes (its handler says so: EOS, a stop sequence, its token
 * budget), whose client left or whose deadline passed leaves at once and its memory is freed.
 *
 * The batch's cache is one tensor per layer and key/value, [rows, heads, longest, head_dim],
 * each row left-padded to the longest (TGI's `CausalLMBatch`): a step feeds the previous step's
 * `present` tensors back as `past` unchanged, so rows are copied only when sequences join
 * (`concatenate`) or leave (`filter`, which also drops padding nobody needs any more).
 *
 * Bounds: at most `maxSequences` active at once, and the tokens they may grow to (prompt +
 * token budget, summed) at most `maxTotalTokens`: the K/V memory the batch can reach is bounded
 * by that. Beyond them requests wait in a queue of `maxQueueSize` (then QUEUE_FULL).
 */
import { CancelledError, DeadlineExceededError, QueueClosedError, QueueFullError, type SubmitOptions } from '../../batching/batcher.js';
import { type Tensor, tensor } from '../../runtime/index.js';
import type { PastKeyValuesSection } from '../manifest.js';

/** One sequence as the task drives it. */
export interface SequenceHandler {
  prompt: number[];
  /** Most new tokens it may generate (its budget; bounded by the context by the caller). */
  maxNewTokens: number;
  /** The logits of its last position; the next token to feed, or undefined when it is finished. */
  next(logits: Float32Array): Promise<number | undefined>;
}

export interface DecodeLimits {
  maxSequences: number;
  maxTotalTokens: number;
  maxQueueSize: number;
}

/** What the scheduler reports per model (metrics). */
export interface DecodeObserver {
  /** A forward over `rows` sequences: a prefill of `rows` new prompts, or a decode step. */
  step(kind: 'prefill' | 'decode', rows: number, seconds: number): void;
  /** A sequence's first token, `seconds` after it was submitted. */
  firstToken(seconds: number): void;
  /** A finished sequence: forwards it took (≈ tokens), mean seconds per token after the first. */
  finished(tokens: number, secondsPerToken: number | undefined): void;
  active(count: number): void;
}

/** The incremental-decoding module: (input_ids, attention_mask, ...past) -> (logits, ...present). */
export interface PastModule {
  forward(inputs: Tensor[]): Promise<unknown>;
}

interface Sequence {
  handler: SequenceHandler;
  submitted: number;
  firstTokenAt: number | undefined;
  generated: number;
  /** Tokens in the cache (prompt + fed tokens). */
  length: number;
  /** The token to feed at the next step. */
  pending: number;
  deadline: number;
  timeoutMs: number;
  signal: AbortSignal | undefined;
  resolve(): void;
  reject(error: unknown): void;
}

interface Waiting {
  handler: SequenceHandler;
  submitted: number;
  deadline: number;
  timeoutMs: number;
  signal: AbortSignal | undefined;
  resolve(): void;
  reject(error: unknown): void;
}

/** Left-padded batch cache: 2 × n_layer tensors [rows, heads, width, headDim] (data only). */
interface BatchCache {
  layers: Float32Array[];
  width: number;
}

export class DecodeScheduler {
  readonly #module: PastModule;
  readonly #geometry: PastKeyValuesSection;
  readonly #limits: DecodeLimits;
  readonly #observer: DecodeObserver;
  readonly #waiting: Waiting[] = [];
  #active: Sequence[] = [];
  #cache: BatchCache = { layers: [], width: 0 };
  #running: Promise<void> | undefined;
  #closed = false;

  constructor(module: PastModule, geometry: PastKeyValuesSection, limits: DecodeLimits, observer: DecodeObserver) {
    this.#module = module;
    this.#geometry = geometry;
    this.#limits = limits;
    this.#observer = observer;
  }

  get queued(): number {
    return this.#waiting.length;
  }

  get active(): number {
    return this.#active.length;
  }

  get idle(): boolean {
    return !this.#running && this.#waiting.length === 0;
  }

  /** Generate one sequence; resolves when its handler says it is finished. */
  submit(handler: SequenceHandler, options: SubmitOptions = {}): Promise<void> {
    if (this.#closed) return Promise.reject(new QueueClosedError());
    if (options.signal?.aborted) return Promise.reject(new CancelledError());
    if (this.#waiting.length >= this.#limits.maxQueueSize) return Promise.reject(new QueueFullError(1, this.#limits.maxQueueSize));
    return new Promise<void>((resolve, reject) => {
      const now = performance.now();
      const timeoutMs = options.timeoutMs ?? 0;
      const waiting: Waiting = { handler, submitted: now, deadline: timeoutMs > 0 ? now + timeoutMs : Infinity, timeoutMs, signal: options.signal, resolve, reject };
      // While it waits, a client that leaves or a deadline that passes takes it out at once.
      const leave = (error: Error) => {
        const at = this.#waiting.indexOf(waiting);
        if (at >= 0) this.#waiting.splice(at, 1)[0]!.reject(error);
      };
      const onAbort = () => leave(new CancelledError());
      const timer = timeoutMs > 0 ? setTimeout(() => leave(new DeadlineExceededError(timeoutMs)), timeoutMs) : undefined;
      options.signal?.addEventListener('abort', onAbort, { once: true });
      const settled = () => {
        if (timer) clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
      };
      waiting.resolve = () => {
        settled();
        resolve();
      };
      waiting.reject = (error) => {
        settled();
        reject(error);
      };
      this.#waiting.push(waiting);
      this.#kick();
    });
  }

  /** Run the loop unless it runs; when it ends, run it again if work arrived meanwhile. */
  #kick(): void {
    if (this.#running) return;
    this.#running = this.#loop().finally(() => {
      this.#running = undefined;
      if (this.#waiting.length || this.#active.length) this.#kick();
    });
  }

  /** Stop taking sequences; resolves when every queued and active one has finished. */
  async drain(): Promise<void> {
    this.#closed = true;
    while (this.#running) await this.#running;
  }

  async #loop(): Promise<void> {
    // Yield once so that requests arriving together are prefilled together.
    await new Promise((resolve) => setImmediate(resolve));
    while (this.#active.length || this.#waiting.length) {
      this.#dropGone();
      try {
        await this.#admit();
        if (this.#active.length) await this.#step();
      } catch (error) {
        // A failed forward fails the sequences it ran; the model stays usable for the next ones.
        for (const s of this.#active) s.reject(error);
        this.#active = [];
        this.#cache = { layers: [], width: 0 };
      }
      this.#observer.active(this.#active.length);
    }
  }

  /**
   * Active sequences whose client left or whose deadline passed leave now. (Waiting ones leave
   * the moment it happens: submit's abort listener and deadline timer take them out.)
   */
  #dropGone(): void {
    const now = performance.now();
    const keep: boolean[] = this.#active.map((s) => {
      const error = s.signal?.aborted ? new CancelledError() : now >= s.deadline ? new DeadlineExceededError(s.timeoutMs) : undefined;
      if (error) s.reject(error);
      return !error;
    });
    if (keep.includes(false)) this.#filter(keep);
  }

  /** Prefill the waiting sequences that fit, and join them to the batch. */
  async #admit(): Promise<void> {
    let reserved = this.#active.reduce((n, s) => n + s.handler.prompt.length + s.handler.maxNewTokens, 0);
    const joining: Waiting[] = [];
    while (this.#waiting.length && this.#active.length + joining.length < this.#limits.maxSequences) {
      const next = this.#waiting[0]!;
      const need = next.handler.prompt.length + next.handler.maxNewTokens;
      // One sequence alone always runs, whatever it reserves (else it could never run at all).
      if (reserved + need > this.#limits.maxTotalTokens && (this.#active.length || joining.length)) break;
      joining.push(this.#waiting.shift()!);
      reserved += need;
    }
    if (!joining.length) return;
    const { n_layer, n_head, head_dim } = this.#geometry;
    const width = Math.max(...joining.map((w) => w.handler.prompt.length));
    const rows = joining.length;
    const ids = new Array<number>(rows * width).fill(0);
    const mask = new Array<number>(rows * width).fill(0);
    joining.forEach((w, r) => {
      const p = w.handler.prompt;
      const pad = width - p.length;
      for (let i = 0; i < p.length; i++) {
        ids[r * width + pad + i] = p[i]!;
        mask[r * width + pad + i] = 1;
      }
    });
    const empty = () => tensor('float32', [rows, n_head, 0, head_dim], new Float32Array(0));
    const t0 = performance.now();
    let out: Tensor[];
    try {
      out = (await this.#module.forward([tensor('int64', [rows, width], ids), tensor('int64', [rows, width], mask), ...Array.from({ length: 2 * n_layer }, empty)])) as Tensor[];
    } catch (error) {
      // A prefill that fails fails the prompts it ran; the batch already decoding goes on.
      for (const w of joining) w.reject(error);
      return;
    }
    this.#observer.step('prefill', rows, (performance.now() - t0) / 1000);
    // The last position of each row (exports since the prefill change return only that one).
    const logits = out[0]!;
    const positions = logits.shape[1]!;
    const vocab = logits.shape[2]!;
    const data = logits.data as Float32Array;
    const sequences: Sequence[] = joining.map((w, r) => ({
      handler: w.handler,
      submitted: w.submitted,
      firstTokenAt: undefined,
      generated: 0,
      length: w.handler.prompt.length,
      pending: -1,
      deadline: w.deadline,
      timeoutMs: w.timeoutMs,
      signal: w.signal,
      resolve: w.resolve,
      reject: w.reject,
    }));
    const keepNew = await Promise.all(sequences.map((s, r) => this.#advance(s, data.subarray(((r + 1) * positions - 1) * vocab, (r + 1) * positions * vocab))));
    this.#concatenate(sequences, { layers: out.slice(1).map((t) => t.data as Float32Array), width });
    this.#filter([...this.#active.slice(0, this.#active.length - sequences.length).map(() => true), ...keepNew]);
  }

  /** One decode step over every active sequence. */
  async #step(): Promise<void> {
    const rows = this.#active.length;
    const width = this.#cache.width;
    const { n_head, head_dim } = this.#geometry;
    const ids = this.#active.map((s) => s.pending);
    const mask = new Array<number>(rows * (width + 1)).fill(0);
    this.#active.forEach((s, r) => {
      for (let i = width - s.length; i <= width; i++) mask[r * (width + 1) + i] = 1;
    });
    // The cache goes in as it is (no copy here; the addon copies each input once).
    const past = this.#cache.layers.map((data): Tensor => ({ dtype: 'float32', shape: [rows, n_head, width, head_dim], data }));
    const t0 = performance.now();
    const out = (await this.#module.forward([tensor('int64', [rows, 1], ids), tensor('int64', [rows, width + 1], mask), ...past])) as Tensor[];
    this.#observer.step('decode', rows, (performance.now() - t0) / 1000);
    this.#cache = { layers: out.slice(1).map((t) => t.data as Float32Array), width: width + 1 };
    for (const s of this.#active) s.length++;
    const logits = out[0]!.data as Float32Array;
    const vocab = out[0]!.shape[2]!;
    const keep = await Promise.all(this.#active.map((s, r) => this.#advance(s, logits.subarray(r * vocab, (r + 1) * vocab))));
    if (keep.includes(false)) this.#filter(keep);
  }

  /** Give a sequence its logits; false when it finished (and was settled). */
  async #advance(s: Sequence, logits: Float32Array): Promise<boolean> {
    let token: number | undefined;
    try {
      token = await s.handler.next(logits);
    } catch (error) {
      s.reject(error);
      return false;
    }
    const now = performance.now();
    if (s.firstTokenAt === undefined) {
      s.firstTokenAt = now;
      this.#observer.firstToken((now - s.submitted) / 1000);
    }
    if (token === undefined) {
      s.generated++;
      this.#observer.finished(s.generated, s.generated > 1 ? (now - s.firstTokenAt) / 1000 / (s.generated - 1) : undefined);
      s.resolve();
      return false;
    }
    s.generated++;
    s.pending = token;
    return true;
  }

  /** Append sequences (with their own left-padded cache) to the batch. */
  #concatenate(sequences: Sequence[], cache: BatchCache): void {
    if (!this.#active.length) {
      this.#active = sequences;
      this.#cache = cache;
      return;
    }
    const { n_head, head_dim } = this.#geometry;
    const oldRows = this.#active.length;
    const newRows = sequences.length;
    const width = Math.max(this.#cache.width, cache.width);
    const block = width * head_dim;
    this.#cache = {
      width,
      layers: this.#cache.layers.map((old, l) => {
        const merged = new Float32Array((oldRows + newRows) * n_head * block);
        copyRows(old, oldRows, this.#cache.width, merged, 0, width, n_head, head_dim);
        copyRows(cache.layers[l]!, newRows, cache.width, merged, oldRows, width, n_head, head_dim);
        return merged;
      }),
    };
    this.#active = [...this.#active, ...sequences];
  }

  /** Keep the rows marked true; drop left padding no remaining row needs. */
  #filter(keep: boolean[]): void {
    const kept = this.#active.filter((_, i) => keep[i]);
    if (!kept.length) {
      this.#active = [];
      this.#cache = { layers: [], width: 0 };
      return;
    }
    const { n_head, head_dim } = this.#geometry;
    const oldWidth = this.#cache.width;
    const width = Math.max(...kept.map((s) => s.length));
    const rows = this.#active.map((_, i) => i).filter((i) => keep[i]);
    const block = oldWidth * head_dim;
    const newBlock = width * head_dim;
    const skip = (oldWidth - width) * head_dim;
    this.#cache = {
      width,
      layers: this.#cache.layers.map((old) => {
        const out = new Float32Array(rows.length * n_head * newBlock);
        rows.forEach((row, r) => {
          for (let h = 0; h < n_head; h++) {
            const src = (row * n_head + h) * block + skip;
            out.set(old.subarray(src, src + newBlock), (r * n_head + h) * newBlock);
          }
        });
        return out;
      }),
    };
    this.#active = kept;
  }
}

/** Copy `rows` rows of a [rows, heads, fromWidth, d] cache into [.., heads, toWidth, d] at row `at`, right-aligned. */
function copyRows(src: Float32Array, rows: number, fromWidth: number, dst: Float32Array, at: number, toWidth: number, heads: number, d: number): void {
  const shift = (toWidth - fromWidth) * d;
  for (let r = 0; r < rows; r++) {
    for (let h = 0; h < heads; h++) {
      const from = (r * heads + h) * fromWidth * d;
      dst.set(src.subarray(from, from + fromWidth * d), ((at + r) * heads + h) * toWidth * d + shift);
    }
  }
}
