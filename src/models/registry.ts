/**
 * The model cache: every model of the repository with its state; loads once (concurrent
 * loads share one promise), warms up before it is ready, evicts the least recently used
 * idle model to stay inside the memory budget, and runs requests through each model's batcher.
 */
import { stat } from 'node:fs/promises';

import { type Tensor, TorchRuntimeError, type TorchValue, TorchScriptModule, tensor, trimMemory, zeros } from '../runtime/index.js';
import { Batcher, ItemFailure, QueueClosedError, type SubmitOptions } from '../batching/batcher.js';
import { type Manifest, type TensorSpec, readManifest, readServingOverrides } from './manifest.js';
import { noopObserver, type ModelObserver } from './observer.js';
import { ModelRepository } from './repository.js';
import { batchKey, type InferItem, isPaddable, joinBatch, splitBatch, validateInputs } from './tensor-batch.js';

export type ModelState = 'unloaded' | 'loading' | 'ready' | 'failed';

export interface ServingOptions {
  maxBatchSize?: number;
  maxQueueDelayMs: number;
  instances: number;
  maxQueueSize: number;
  /** Padded tokens (rows x longest sequence) per batch of token inputs. */
  maxBatchTokens?: number;
  /** Padded tokens over real tokens a text batch may reach. */
  maxPaddingRatio?: number;
}

export interface RegistryOptions {
  device: string;
  /** Bytes of model weights that may be loaded at once; 0 for no limit. */
  memoryLimitBytes: number;
  serving: ServingOptions;
  /** Per-model overrides, by model name. */
  perModel?: Record<string, Partial<ServingOptions>>;
  warmup: boolean;
  /** Load on first request when not loaded. */
  lazyLoad: boolean;
  observer?: ModelObserver;
}

/** Reloads a request waits through when its model is unloaded under it, before it gives up (503). */
const UNLOAD_RETRIES = 10;

export class ModelNotFoundError extends Error {
  readonly code = 'MODEL_NOT_FOUND';
  constructor(name: string) {
    super(`model '${name}' is not in the repository`);
  }
}

export class ModelNotReadyError extends Error {
  readonly code = 'MODEL_NOT_READY';
}

export class MemoryLimitError extends Error {
  readonly code = 'MODEL_MEMORY_LIMIT';
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

export class ModelEntry {
  state: ModelState = 'unloaded';
  error: string | undefined;
  manifest: Manifest | undefined;
  module: TorchScriptModule | undefined;
  /** Text generation with past key/values: the incremental-decoding module, when exported. */
  pastModule: TorchScriptModule | undefined;
  batcher: Batcher<InferItem, Tensor[]> | undefined;
  /** Other queues using this model's modules (text generation's): unload drains them too. */
  readonly drains = new Set<() => Promise<void>>();
  loading: Promise<void> | undefined;
  unloading: Promise<void> | undefined;
  /** Overrides from the folder's optional serving.json. */
  serving: Partial<ServingOptions> = {};
  lastUsed = 0;
  bytes = 0;
  readonly stats: ModelStats = { requests: 0, failures: 0, inferences: 0, executions: 0, lastUsed: null, loadSeconds: null };

  constructor(
    readonly name: string,
    readonly folder: string,
  ) {}
}

export class ModelRegistry {
  readonly repository: ModelRepository;
  readonly #options: RegistryOptions;
  readonly #observer: ModelObserver;
  readonly #entries = new Map<string, ModelEntry>();
  #closing = false;

  constructor(repository: ModelRepository, options: RegistryOptions) {
    this.repository = repository;
    this.#options = options;
    this.#observer = options.observer ?? noopObserver;
  }

  /** Rescan the repository: new folders appear as unloaded, vanished unloaded ones go. */
  async refresh(): Promise<ModelEntry[]> {
    const names = await this.repository.scan();
    for (const name of names) {
      if (!this.#entries.has(name)) {
        const entry = new ModelEntry(name, this.repository.folderOf(name)!);
        this.#entries.set(name, entry);
        await this.#readManifest(entry);
      }
    }
    for (const [name, entry] of this.#entries) {
      if (!names.includes(name) && entry.state === 'unloaded') this.#entries.delete(name);
    }
    return this.list();
  }

  list(): ModelEntry[] {
    return [...this.#entries.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  get(name: string): ModelEntry | undefined {
    return this.#entries.get(name);
  }

  /** The entry, or a ModelNotFoundError; picks up folders added since the last scan. */
  async find(name: string): Promise<ModelEntry> {
    let entry = this.#entries.get(name);
    if (!entry && this.repository.folderOf(name)) {
      await this.refresh();
      entry = this.#entries.get(name);
    }
    if (!entry) throw new ModelNotFoundError(name);
    return entry;
  }

  /** True once close() has begun: no new work is accepted. */
  get closing(): boolean {
    return this.#closing;
  }

  /** Load a model (once, however many callers ask at the same time). */
  async load(name: string): Promise<ModelEntry> {
    const entry = await this.find(name);
    if (entry.state === 'ready') return entry;
    if (!entry.loading) {
      entry.loading = this.#load(entry).finally(() => {
        entry.loading = undefined;
      });
    }
    await entry.loading;
    if ((entry.state as ModelState) !== 'ready') throw new ModelNotReadyError(`model '${name}' failed to load: ${entry.error}`);
    return entry;
  }

  /** Drain the model's queue, then release it. */
  async unload(name: string): Promise<ModelEntry> {
    const entry = await this.find(name);
    entry.unloading ??= this.#unload(entry).finally(() => {
      entry.unloading = undefined;
    });
    await entry.unloading;
    return entry;
  }

  /**
   * Run `use` on an acquired entry. When the queue it submits to closes under it (someone
   * unloaded the model meanwhile), wait for the unload, acquire the model again (which reloads
   * it when LAZY_LOAD is on) and run `use` again, up to UNLOAD_RETRIES times. Every queue that
   * uses a model's modules (the batcher, text generation's) goes through here.
   */
  async withModel<T>(acquired: ModelEntry, use: (entry: ModelEntry, lastTry: boolean) => Promise<T>): Promise<T> {
    let entry = acquired;
    for (let attempt = 0; ; attempt++) {
      const lastTry = attempt === UNLOAD_RETRIES;
      try {
        return await use(entry, lastTry);
      } catch (error) {
        if (!(error instanceof QueueClosedError) || lastTry) throw error;
        await entry.unloading;
        entry = await this.acquire(entry.name);
      }
    }
  }

  async #unload(entry: ModelEntry): Promise<void> {
    const { name } = entry;
    if (entry.loading) await entry.loading.catch(() => undefined);
    if (entry.batcher) await entry.batcher.drain();
    // Queues created while we wait are drained too (new ones are refused once unloading is set).
    while (entry.drains.size) {
      const drains = [...entry.drains];
      entry.drains.clear();
      await Promise.all(drains.map((drain) => drain()));
    }
    entry.module?.dispose();
    entry.pastModule?.dispose();
    if (entry.module) trimMemory();
    const wasLoaded = entry.state === 'ready';
    entry.module = undefined;
    entry.pastModule = undefined;
    entry.batcher = undefined;
    entry.state = entry.state === 'failed' ? 'failed' : 'unloaded';
    if (entry.state === 'unloaded') entry.error = undefined;
    if (wasLoaded) this.#observer.modelUnloaded(name);
    this.#observer.queueDepth(name, 0);
  }

  /** Run one request through the model's batcher. Inputs are named tensors. */
  async infer(name: string, inputs: Map<string, Tensor>, options: SubmitOptions = {}): Promise<Map<string, Tensor>> {
    return this.run(await this.acquire(name), inputs, options);
  }

  /**
   * Run one request on an entry already acquired (a task pipeline acquires once per request,
   * then runs each of its texts or images here). Re-acquires if the model went away meanwhile.
   */
  async run(acquired: ModelEntry, inputs: Map<string, Tensor>, options: SubmitOptions = {}): Promise<Map<string, Tensor>> {
    return this.withModel(acquired, async (live, lastTry) => {
      const entry = live.state === 'ready' && live.batcher ? live : await this.acquire(live.name);
      const { name } = entry;
      const manifest = entry.manifest!;
      const item = validateInputs(manifest, inputs);
      entry.stats.requests++;
      entry.lastUsed = Date.now();
      entry.stats.lastUsed = new Date(entry.lastUsed).toISOString();
      try {
        const outputs = await entry.batcher!.submit(item, options);
        return new Map(manifest.outputs.map((spec, i) => [spec.name, outputs[i]!]));
      } catch (error) {
        // A closed queue is retried by withModel; only the last try counts as a failure.
        if (!(error instanceof QueueClosedError) || lastTry) entry.stats.failures++;
        throw error;
      } finally {
        this.#observer.queueDepth(name, entry.batcher?.queued ?? 0);
      }
    });
  }

  /** A ready entry: loads it on first use when lazy loading is on. */
  async acquire(name: string): Promise<ModelEntry> {
    if (this.#closing) throw new ModelNotReadyError('the server is shutting down');
    const entry = await this.find(name);
    if (entry.state === 'ready') {
      this.#observer.cacheHit(name);
      return entry;
    }
    if (entry.state === 'loading' || this.#options.lazyLoad) {
      if (entry.state !== 'loading') this.#observer.cacheMiss(name);
      return this.load(name);
    }
    throw new ModelNotReadyError(
      entry.state === 'failed' ? `model '${name}' failed to load: ${entry.error}` : `model '${name}' is not loaded (POST /models/${name}/load)`,
    );
  }

  /** Stop taking requests, finish what is queued, release every model. */
  async close(): Promise<void> {
    this.#closing = true;
    await Promise.all([...this.#entries.keys()].map((name) => this.unload(name).catch(() => undefined)));
  }

  servingOptions(name: string, manifest: Manifest): Required<ServingOptions> {
    const merged = { ...this.#options.serving, ...(this.#options.perModel?.[name] ?? {}), ...(this.#entries.get(name)?.serving ?? {}) };
    return {
      maxBatchSize: Math.min(merged.maxBatchSize ?? manifest.max_batch_size, manifest.max_batch_size),
      maxQueueDelayMs: merged.maxQueueDelayMs,
      instances: merged.instances,
      maxQueueSize: merged.maxQueueSize,
      maxBatchTokens: merged.maxBatchTokens ?? Infinity,
      maxPaddingRatio: merged.maxPaddingRatio ?? Infinity,
    };
  }

  async #readManifest(entry: ModelEntry): Promise<boolean> {
    try {
      entry.manifest = await readManifest(entry.folder);
      entry.serving = await readServingOverrides(entry.folder);
      return true;
    } catch (error) {
      entry.state = 'failed';
      entry.error = (error as Error).message;
      return false;
    }
  }

  async #load(entry: ModelEntry): Promise<void> {
    const started = performance.now();
    entry.state = 'loading';
    entry.error = undefined;
    try {
      if (!(await this.#readManifest(entry))) throw new Error(entry.error);
      entry.state = 'loading';
      const manifest = entry.manifest!;
      const file = this.repository.fileIn(entry.folder, manifest.file);
      const tokenizerFile = (manifest.tokenizer as { file?: string } | undefined)?.file;
      if (manifest.tokenizer) this.repository.fileIn(entry.folder, tokenizerFile ?? 'tokenizer.json');
      entry.bytes = manifest.file_bytes ?? (await stat(file)).size;
      await this.#makeRoom(entry);
      const past = pastKeyValuesFile(manifest);
      if (past) entry.bytes += past.bytes;
      const module = await TorchScriptModule.load(file, { device: this.#options.device });
      entry.module = module;
      if (past) entry.pastModule = await TorchScriptModule.load(this.repository.fileIn(entry.folder, past.file), { device: this.#options.device });
      const serving = this.servingOptions(entry.name, manifest);
      entry.batcher = new Batcher<InferItem, Tensor[]>(
        {
          maxBatchSize: serving.maxBatchSize,
          maxQueueDelayMs: serving.maxQueueDelayMs,
          instances: serving.instances,
          maxQueueSize: serving.maxQueueSize,
          maxBatchCost: serving.maxBatchTokens,
        },
        {
          key: (item) => batchKey(manifest, item),
          rows: (item) => item.rows,
          // Token batches: padded size; a single request may always run, whatever its size.
          cost: (items) => (items[0]!.seq ? items.reduce((n, it) => n + it.rows, 0) * Math.max(...items.map((it) => it.seq)) : 0),
          length: (item) => item.seq,
          // Padding is wasted compute: a text batch runs only while its padded tokens stay
          // within MAX_PADDING_RATIO of its real ones; the rest wait for the next batch.
          fits: (items) => {
            if (!items[0]!.seq) return true;
            const longest = Math.max(...items.map((it) => it.seq));
            const real = items.reduce((n, it) => n + it.rows * it.seq, 0);
            const padded = items.reduce((n, it) => n + it.rows, 0) * longest;
            return padded <= real * serving.maxPaddingRatio;
          },
        },
        async (items, stats) => {
          for (const ms of stats.queueMs) this.#observer.stage(entry.name, 'queue', ms / 1000);
          this.#observer.queueDepth(entry.name, entry.batcher?.queued ?? 0);
          const t0 = performance.now();
          const forward = async (some: InferItem[]) => toTensorList(await module.forward(joinBatch(manifest, some)), manifest);
          let results: (Tensor[] | ItemFailure)[];
          try {
            results = splitBatch(items, await forward(items));
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
          this.#observer.stage(entry.name, 'compute', (performance.now() - t0) / 1000);
          entry.stats.executions++;
          entry.stats.inferences += stats.rows;
          this.#observer.batchExecuted(entry.name, stats.rows, items.length);
          return results;
        },
      );
      if (this.#options.warmup) await this.#warmup(module, manifest);
      entry.state = 'ready';
      entry.lastUsed = Date.now();
      const seconds = (performance.now() - started) / 1000;
      entry.stats.loadSeconds = seconds;
      this.#observer.modelLoaded(entry.name, seconds, true);
    } catch (error) {
      entry.module?.dispose();
      entry.pastModule?.dispose();
      entry.module = undefined;
      entry.pastModule = undefined;
      entry.batcher = undefined;
      entry.state = 'failed';
      entry.error = (error as Error).message;
      this.#observer.modelLoaded(entry.name, (performance.now() - started) / 1000, false);
    }
  }

  /** Evict least recently used idle models until `entry` fits the memory budget. */
  async #makeRoom(entry: ModelEntry): Promise<void> {
    const limit = this.#options.memoryLimitBytes;
    if (!limit) return;
    if (entry.bytes > limit) {
      throw new MemoryLimitError(`model '${entry.name}' needs ${entry.bytes} bytes, more than MODEL_MEMORY_LIMIT (${limit})`);
    }
    const others = () => [...this.#entries.values()].filter((e) => e !== entry && (e.state === 'ready' || e.state === 'loading'));
    let used = others().reduce((n, e) => n + e.bytes, 0);
    while (used + entry.bytes > limit) {
      const victim = others()
        .filter((e) => e.state === 'ready' && e.batcher?.idle)
        .sort((a, b) => a.lastUsed - b.lastUsed)[0];
      if (!victim) {
        throw new MemoryLimitError(`model '${entry.name}' does not fit in MODEL_MEMORY_LIMIT (${limit} bytes) and no idle model can be evicted`);
      }
      await this.unload(victim.name);
      this.#observer.cacheEviction(victim.name);
      used -= victim.bytes;
    }
  }

  /** Run forwards at the manifest's shapes so the first user request is not the slow one. */
  async #warmup(module: TorchScriptModule, manifest: Manifest): Promise<void> {
    for (const batch of [1, Math.min(2, manifest.max_batch_size)]) {
      const inputs = manifest.inputs.map((spec) => exampleInput(manifest, spec.name, spec.dtype, spec.shape, batch));
      // The profiling executor optimises after a couple of runs at a shape.
      for (let i = 0; i < 2; i++) await module.forward(inputs);
    }
  }
}

function exampleInput(manifest: Manifest, name: string, dtype: Tensor['dtype'], shape: number[], batch: number): Tensor {
  const image = manifest.image as { height?: number; width?: number } | undefined;
  const dims = shape.map((d, i) => {
    if (d !== -1) return d;
    if (i === 0) return batch;
    if (shape.length === 4 && i === 2) return image?.height ?? 32;
    if (shape.length === 4 && i === 3) return image?.width ?? 32;
    return Math.min(8, manifest.max_sequence_length ?? 8);
  });
  if (name === 'attention_mask') return tensor(dtype, dims, new Array(dims.reduce((a, b) => a * b, 1)).fill(1));
  if (dtype === 'int64' && isPaddable({ name, dtype: 'int64', shape } as TensorSpec, manifest)) {
    return tensor(dtype, dims, new Array(dims.reduce((a, b) => a * b, 1)).fill(1));
  }
  return zeros(dtype, dims);
}

/** The incremental-decoding file of a text-generation export, if it has one. */
function pastKeyValuesFile(manifest: Manifest): { file: string; bytes: number } | undefined {
  const generation = manifest.generation as { past_key_values?: false | { file: string; file_bytes?: number } } | undefined;
  const past = generation?.past_key_values;
  return past ? { file: past.file, bytes: past.file_bytes ?? 0 } : undefined;
}

function toTensorList(value: TorchValue, manifest: Manifest): Tensor[] {
  const list = Array.isArray(value) ? value : [value];
  if (list.length < manifest.outputs.length) {
    throw new Error(`model returned ${list.length} output(s), the manifest declares ${manifest.outputs.length}`);
  }
  return list.slice(0, manifest.outputs.length) as Tensor[];
}
