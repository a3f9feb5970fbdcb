/**
 * The serving engine of one loaded model: everything about how its work reaches the hardware.
 * It owns the model's modules (the main module, and the past key/values module of a
 * text-generation export), its queues (encoder batches; generation sequences), the batch
 * policy with its measured cost model, the one-by-one fallback when a batch fails, warm-up and
 * calibration, and the model's live statistics. It knows nothing of HTTP.
 *
 * In Triton's pytorch_backend terms, the engine is the `model_state` (per model: manifest,
 * settings, cost model, statistics) and its `instances` execution slots are the
 * `model_instance_state`s (they share the module, which LibTorch runs concurrently).
 */
import { Batcher, CancelledError, ItemFailure, QueueClosedError, type SubmitOptions } from '../../batching/batcher.js';
import { type Tensor, TorchRuntimeError, type TorchValue, ModelHandle, runtimeInfo } from '../../runtime/index.js';
import { type Manifest, sectionOf } from '../manifest.js';
import type { ModelObserver } from '../observer.js';
import { currentTrace } from '../request-trace.js';
import { batchKey, type InferItem, joinBatch, splitBatch, validateInputs } from '../tensor-batch.js';
import { chooseBatch, holdMs } from './batch-policy.js';
import { CostModel } from './cost-model.js';
import { DecodeScheduler, type SequenceHandler } from './decode-scheduler.js';
import { type Decoder, makeDecoder } from './decoder.js';
import { ThreadChoice } from './thread-choice.js';
import { hasTokens, warmUpAndCalibrate, warmUpPast } from './warmup.js';

export interface ServingOptions {
  maxBatchSize?: number;
  maxQueueDelayMs: number;
  instances: number;
  maxQueueSize: number;
  /** Padded tokens (rows x longest sequence) per batch of token inputs. */
  maxBatchTokens?: number;
  /** Text generation: sequences decoding at once. */
  maxConcurrentSequences?: number;
  /** Text generation: tokens (prompt + budget) the decoding sequences may reach together (bounds K/V memory). */
  maxBatchTotalTokens?: number;
}

export interface ModelStats {
  requests: number;
  failures: number;
  /** Rows inferred (sum of batch sizes of requests). */
  inferences: number;
  /** Forward calls; inferences / executions is the average batch size. */
  executions: number;
  lastUsed: string | null;
  loadSeconds: number | null;
}

/** Batches that may pass a waiting request over before it must run in the next one. */
export const MAX_SKIPS = 2;

export interface EngineOptions {
  name: string;
  manifest: Manifest;
  device: string;
  /** The main module's file, and the past key/values module's when the export has one. */
  files: { model: string; past?: string | undefined };
  serving: Required<ServingOptions>;
  warmup: boolean;
  /** Calibrate a ThreadChoice (CPU, with warm-up): small batches on one intra-op thread where that is faster. */
  chooseThreads?: boolean;
  observer: ModelObserver;
  /** The entry's statistics (they outlive one load), updated in place. */
  stats: ModelStats;
}

/** A sequence job: runs with a decoder over this model's modules, one at a time per instance. */
type SequenceJob<R> = (decoder: (prompt: number[]) => Decoder) => Promise<R>;

export class ModelEngine {
  readonly name: string;
  readonly manifest: Manifest;
  readonly serving: Required<ServingOptions>;
  readonly cost = new CostModel();
  /** Intra-op threads per batch (thread-choice.ts): one thread for batches that run faster so. */
  threads = new ThreadChoice();
  /**
   * The main module. A text-generation export with a past key/values module decodes with that
   * one alone, so its main module (the same weights again) loads only when raw tensors ask for it.
   */
  #module: ModelHandle | undefined;
  #moduleLoading: Promise<ModelHandle> | undefined;
  readonly #modulePath: string;
  readonly #devicePreference: string;
  readonly #past: ModelHandle | undefined;
  readonly #observer: ModelObserver;
  readonly #stats: ModelStats;
  readonly #encoder: Batcher<InferItem, Tensor[]>;
  /** Generation without past key/values: whole sequences, one at a time per instance. */
  readonly #sequences: Batcher<SequenceJob<unknown>, unknown>;
  /** Generation with past key/values: continuous batching. */
  readonly #decode: DecodeScheduler | undefined;
  #disposed = false;
  /** Arrivals to the batch queue: mean gap (ms, exponentially weighted) and the last one. */
  #arrivalGapMs = Infinity;
  #lastArrival = 0;
  /** Rows queued or running at each of the last arrivals: the load the clients keep up. */
  readonly #recentLoad = new Array<number>(32).fill(0);
  #loadAt = 0;
  #runningRows = 0;
  /** When the last batch ended, and the typical delay from a batch's end to the next arrival. */
  #lastBatchEnd = 0;
  #returnMs = Infinity;

  /** Load the modules, warm up and calibrate; the engine is ready to serve when this resolves. */
  static async start(options: EngineOptions): Promise<ModelEngine> {
    const geometry = options.manifest.generation?.past_key_values;
    const decodesWithPast = Boolean(options.files.past && geometry);
    let module: ModelHandle | undefined;
    let past: ModelHandle | undefined;
    try {
      const format = options.manifest.model_format;
      if (!decodesWithPast) module = await ModelHandle.load(options.files.model, { device: options.device, format });
      if (options.files.past) past = await ModelHandle.load(options.files.past, { device: options.device, format });
      const engine = new ModelEngine(options, module, past);
      if (options.warmup && module) {
        const samples = await warmUpAndCalibrate(module, options.manifest);
        engine.cost.calibrate(samples);
        const info = runtimeInfo();
        if (options.chooseThreads !== false && module.device === 'cpu' && info.threadsPerCall && info.intraOpThreads > 1) engine.threads = await ThreadChoice.calibrate(module, options.manifest, samples);
      }
      if (options.warmup && past && geometry) await warmUpPast(past, geometry);
      return engine;
    } catch (error) {
      module?.dispose();
      past?.dispose();
      throw error;
    }
  }

  private constructor(options: EngineOptions, module: ModelHandle | undefined, past: ModelHandle | undefined) {
    this.name = options.name;
    this.manifest = options.manifest;
    this.serving = options.serving;
    this.#module = module;
    this.#modulePath = options.files.model;
    this.#devicePreference = options.device;
    this.#past = past;
    this.#observer = options.observer;
    this.#stats = options.stats;
    const { maxBatchSize, maxQueueDelayMs, instances, maxQueueSize, maxBatchTokens } = options.serving;
    const limits = { maxBatchSize, maxBatchTokens: hasTokens(this.manifest) ? maxBatchTokens : Infinity, maxSkips: MAX_SKIPS };
    this.#encoder = new Batcher<InferItem, Tensor[]>(
      { maxBatchSize, maxQueueDelayMs, instances, maxQueueSize },
      {
        key: (item) => batchKey(this.manifest, item),
        rows: (item) => item.rows,
        select: (waiting) =>
          chooseBatch(
            waiting.map((w) => ({ key: w.key, rows: w.rows, length: w.item.seq, skipped: w.skipped })),
            limits,
            this.cost,
          ),
        hold: (waiting) => {
          const key = waiting[0]!.key;
          const same = waiting.filter((w) => w.key === key);
          const ready = same.reduce((n, w) => n + w.rows, 0);
          const length = Math.max(...same.map((w) => w.item.seq));
          // Who can still come: the load recently kept up, less what is here already.
          const coming = Math.max(...this.#recentLoad) - ready - this.#runningRows;
          return holdMs(ready, length, { perMs: 1 / this.#arrivalGapMs, coming, returnMs: this.#returnMs }, maxBatchSize, this.cost);
        },
      },
      (items, stats) => this.#runBatch(items, stats.queueMs, stats.rows),
    );
    const geometry = this.manifest.generation?.past_key_values;
    if (past && geometry) {
      const observer = this.#observer;
      const name = this.name;
      this.#decode = new DecodeScheduler(
        past,
        geometry,
        { maxSequences: Math.min(options.serving.maxConcurrentSequences, pastRowsBound(geometry)), maxTotalTokens: options.serving.maxBatchTotalTokens, maxQueueSize },
        {
          step: (kind, rows, seconds) => {
            observer.decodeStep(name, kind, rows, seconds);
            observer.stage(name, 'compute', seconds);
            this.#stats.executions++;
            this.#stats.inferences += rows;
          },
          firstToken: (seconds) => observer.firstToken(name, seconds),
          finished: (tokens, secondsPerToken) => observer.sequenceFinished(name, tokens, secondsPerToken),
          active: (count) => observer.activeSequences(name, count),
        },
      );
    }
    this.#sequences = new Batcher<SequenceJob<unknown>, unknown>(
      { maxBatchSize: 1, maxQueueDelayMs: 0, instances, maxQueueSize },
      { key: () => 'sequence', rows: () => 1 },
      async ([job], stats) => {
        this.#observer.stage(this.name, 'queue', stats.queueMs[0]! / 1000);
        return [await job!((prompt) => this.#decoder(prompt))];
      },
    );
  }

  /** The device the modules run on. */
  get device(): string {
    return (this.#module ?? this.#past)!.device;
  }

  /** Requests waiting in this model's queues. */
  get queued(): number {
    return this.#encoder.queued + this.#sequences.queued + (this.#decode?.queued ?? 0);
  }

  /** Sequences decoding now (text generation). */
  get activeSequences(): number {
    return (this.#decode?.active ?? 0) + this.#sequences.running;
  }

  /** Nothing queued and nothing running. */
  get idle(): boolean {
    return this.#encoder.idle && this.#sequences.idle && (this.#decode?.idle ?? true);
  }

  /** One request of named tensors through the batch queue; outputs by name. */
  async infer(named: Map<string, Tensor>, submit: SubmitOptions = {}): Promise<Map<string, Tensor>> {
    const item = validateInputs(this.manifest, named);
    const trace = currentTrace();
    if (trace) item.trace = trace;
    this.#used();
    this.#arrived(item.rows);
    try {
      const outputs = await this.#encoder.submit(item, submit);
      return new Map(this.manifest.outputs.map((spec, i) => [spec.name, outputs[i]!]));
    } catch (error) {
      if ((error as { code?: string }).code !== 'MODEL_NOT_READY') this.#stats.failures++;
      throw error;
    } finally {
      this.#observer.queueDepth(this.name, this.queued);
    }
  }

  /**
   * Generate one sequence: the handler gets the logits of each step and says the next token or
   * that it is done. With the past key/values module, sequences of this model decode together
   * (continuous batching); without it, each runs alone, recomputing the whole sequence per token.
   */
  async generate(handler: SequenceHandler, submit: SubmitOptions = {}): Promise<void> {
    this.#used();
    try {
      if (this.#decode) return await this.#decode.submit(handler, submit);
      await this.#sequences.submit(async (decoder) => {
        const steps = decoder(handler.prompt);
        const vocab = sectionOf(this.manifest, 'generation').vocab_size;
        let token: number | undefined;
        for (;;) {
          if (submit.signal?.aborted) throw new CancelledError();
          const logits = await steps.next(token);
          this.#observer.batchExecuted(this.name, 1, 1);
          token = await handler.next(logits.subarray(logits.length - vocab));
          if (token === undefined) return undefined;
        }
      }, submit);
    } catch (error) {
      if ((error as { code?: string }).code !== 'MODEL_NOT_READY') this.#stats.failures++;
      throw error;
    }
  }

  /** Stop taking work; resolves when everything queued or running has finished. */
  async drain(): Promise<void> {
    await Promise.all([this.#encoder.drain(), this.#sequences.drain(), this.#decode?.drain()]);
  }

  /** Free the modules (after drain). */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#module?.dispose();
    this.#module = undefined;
    this.#past?.dispose();
  }

  /** Keep the arrival rate and the load the clients keep up (for the hold decision). */
  #arrived(rows: number): void {
    const now = performance.now();
    if (this.#lastArrival) {
      const gap = now - this.#lastArrival;
      this.#arrivalGapMs = ewma(this.#arrivalGapMs, gap);
    }
    this.#lastArrival = now;
    if (this.#lastBatchEnd) {
      const since = now - this.#lastBatchEnd;
      this.#returnMs = ewma(this.#returnMs, since);
    }
    this.#recentLoad[this.#loadAt++ % this.#recentLoad.length] = this.#encoder.queued + rows + this.#runningRows;
  }

  /** The main module, loaded on first use (once, however many batches ask at the same time). */
  async #mainModule(): Promise<ModelHandle> {
    if (this.#module) return this.#module;
    this.#moduleLoading ??= ModelHandle.load(this.#modulePath, { device: this.#devicePreference, format: this.manifest.model_format }).then(
      (module) => {
        if (this.#disposed) {
          module.dispose();
          throw new QueueClosedError();
        }
        this.#module = module;
        return module;
      },
      (error: unknown) => {
        this.#moduleLoading = undefined;
        throw error;
      },
    );
    return this.#moduleLoading;
  }

  #used(): void {
    this.#stats.requests++;
    this.#stats.lastUsed = new Date().toISOString();
  }

  #decoder(prompt: number[]): Decoder {
    return makeDecoder(this.#module!, prompt);
  }

  async #runBatch(items: InferItem[], queueMs: number[], rows: number): Promise<(Tensor[] | ItemFailure)[]> {
    this.#runningRows += rows;
    try {
      return await this.#forwardBatch(items, queueMs, rows);
    } finally {
      this.#runningRows -= rows;
      this.#lastBatchEnd = performance.now();
    }
  }

  async #forwardBatch(items: InferItem[], queueMs: number[], rows: number): Promise<(Tensor[] | ItemFailure)[]> {
    for (const ms of queueMs) this.#observer.stage(this.name, 'queue', ms / 1000);
    this.#observer.queueDepth(this.name, this.queued);
    const t0 = performance.now();
    const module = await this.#mainModule();
    const length = Math.max(...items.map((it) => it.seq));
    const threads = this.threads.threadsFor(this.cost.predict(rows, length));
    const forward = async (some: InferItem[]) => toTensorList(await module.forward(joinBatch(this.manifest, some), threads ? { threads } : undefined), this.manifest);
    let results: (Tensor[] | ItemFailure)[];
    try {
      results = splitBatch(items, await forward(items));
      // The cost model predicts all-threads time: a batch run on fewer threads does not teach it.
      if (!threads) this.cost.observe({ rows, length, ms: performance.now() - t0 });
    } catch (error) {
      // One request's inputs (a token id past the vocabulary, say) must not fail the others
      // batched with it: run each alone, so only the bad one gets the error.
      if (items.length === 1 || !(error instanceof TorchRuntimeError) || error.code !== 'FORWARD_FAILED') throw error;
      results = [];
      for (const item of items) {
        try {
          results.push(splitBatch([item], await forward([item]))[0]!);
        } catch (itemError) {
          results.push(new ItemFailure(itemError));
        }
      }
    }
    const t1 = performance.now();
    this.#observer.stage(this.name, 'compute', (t1 - t0) / 1000);
    for (let i = 0; i < items.length; i++) {
      const trace = items[i]!.trace;
      if (!trace) continue;
      trace.stage('queue', t0 - queueMs[i]!, t0);
      trace.stage('compute', t0, t1, { batch_size: rows });
    }
    this.#stats.executions++;
    this.#stats.inferences += rows;
    this.#observer.batchExecuted(this.name, rows, items.length);
    return results;
  }
}

/** Rows the past key/values module takes at once: its exported batch bound (a .pt2), else no bound. */
function pastRowsBound(geometry: object): number {
  const declared = (geometry as { inputs?: unknown }).inputs;
  const inputs = Array.isArray(declared) ? (declared as { max_shape?: number[] }[]) : [];
  const bounds = inputs.map((spec) => spec.max_shape?.[0]).filter((n): n is number => typeof n === 'number');
  return bounds.length ? Math.min(...bounds) : Infinity;
}

/** An exponentially weighted running mean (weight 0.1 for the new value); the first value starts it. */
function ewma(mean: number, value: number): number {
  return Number.isFinite(mean) ? 0.9 * mean + 0.1 * value : value;
}

function toTensorList(value: TorchValue, manifest: Manifest): Tensor[] {
  const list = Array.isArray(value) ? value : [value];
  if (list.length < manifest.outputs.length) {
    throw new Error(`model returned ${list.length} output(s), the manifest declares ${manifest.outputs.length}`);
  }
  return list.slice(0, manifest.outputs.length) as Tensor[];
}
