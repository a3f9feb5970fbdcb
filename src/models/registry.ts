/**
 * The model registry: the catalog of the repository's models and their lifecycle. It knows
 * which models exist and what state each is in; it loads each once (concurrent loads share one
 * promise) by starting its engine, unloads after the engine drains, evicts the least recently
 * used idle model to stay inside the memory budget, and announces every transition on
 * `lifecycle` (metrics, the response cache and readiness listen there). How a model's work is
 * batched and run is its engine's business (engine/model-engine.ts).
 */
import { stat } from 'node:fs/promises';

import { QueueClosedError } from '../batching/batcher.js';
import { trimMemory } from '../runtime/index.js';
import { ModelEngine, type ModelStats, type ServingOptions } from './engine/model-engine.js';
import { MemoryLimitError, ModelNotFoundError, ModelNotReadyError } from './errors.js';
import { ModelLifecycle } from './lifecycle.js';
import { type Manifest, readManifest, readServingOverrides } from './manifest.js';
import { noopObserver, type ModelObserver } from './observer.js';
import { ModelRepository } from './repository.js';

export type { ModelStats, ServingOptions };
export type ModelState = 'unloaded' | 'loading' | 'ready' | 'failed';

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

export class ModelEntry {
  state: ModelState = 'unloaded';
  error: string | undefined;
  manifest: Manifest | undefined;
  /** The serving engine while the model is loaded. */
  engine: ModelEngine | undefined;
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
  readonly lifecycle = new ModelLifecycle();
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

  /** Drain the model's engine, then release it. */
  async unload(name: string): Promise<ModelEntry> {
    const entry = await this.find(name);
    entry.unloading ??= this.#unload(entry).finally(() => {
      entry.unloading = undefined;
    });
    await entry.unloading;
    return entry;
  }

  /** A ready entry: loads it on first use when lazy loading is on. */
  async acquire(name: string): Promise<ModelEntry> {
    if (this.#closing) throw new ModelNotReadyError('the server is shutting down');
    const entry = await this.find(name);
    if (entry.state === 'ready' && entry.engine) {
      // Even while it unloads: its closed queue then sends the request through withEngine's retry.
      entry.lastUsed = Date.now();
      this.#observer.cacheHit(name);
      return entry;
    }
    if (entry.state === 'loading' || this.#options.lazyLoad) {
      if (entry.state !== 'loading') this.#observer.cacheMiss(name);
      const loaded = await this.load(name);
      loaded.lastUsed = Date.now();
      return loaded;
    }
    throw new ModelNotReadyError(
      entry.state === 'failed' ? `model '${name}' failed to load: ${entry.error}` : `model '${name}' is not loaded (POST /models/${name}/load)`,
    );
  }

  /**
   * Run `use` on the engine of an acquired entry. When the engine's queue closes under it (the
   * model was unloaded meanwhile), wait for the unload, acquire the model again (which reloads
   * it when LAZY_LOAD is on) and run `use` again, up to UNLOAD_RETRIES times.
   */
  async withEngine<T>(acquired: ModelEntry, use: (engine: ModelEngine) => Promise<T>): Promise<T> {
    let entry = acquired;
    for (let attempt = 0; ; attempt++) {
      try {
        const engine = entry.engine && entry.state === 'ready' ? entry.engine : (await this.acquire(entry.name)).engine!;
        return await use(engine);
      } catch (error) {
        if (!(error instanceof QueueClosedError) || attempt === UNLOAD_RETRIES) throw error;
        await entry.unloading;
        entry = await this.acquire(entry.name);
      }
    }
  }

  /** Stop taking requests, finish what is queued, release every model. */
  async close(): Promise<void> {
    this.#closing = true;
    await Promise.all([...this.#entries.keys()].map((name) => this.unload(name).catch(() => undefined)));
  }

  /** The settings a model's engine runs with: server-wide, then per model, then its serving.json. */
  servingOptions(name: string, manifest: Manifest): Required<ServingOptions> {
    const merged = { ...this.#options.serving, ...(this.#options.perModel?.[name] ?? {}), ...(this.#entries.get(name)?.serving ?? {}) };
    return {
      maxBatchSize: Math.min(merged.maxBatchSize ?? manifest.max_batch_size, manifest.max_batch_size),
      maxQueueDelayMs: merged.maxQueueDelayMs,
      instances: merged.instances,
      maxQueueSize: merged.maxQueueSize,
      maxBatchTokens: merged.maxBatchTokens ?? Infinity,
      maxConcurrentSequences: merged.maxConcurrentSequences ?? 32,
      maxBatchTotalTokens: merged.maxBatchTotalTokens ?? 16384,
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
    this.lifecycle.emit('loading', entry.name);
    try {
      if (!(await this.#readManifest(entry))) throw new Error(entry.error);
      entry.state = 'loading';
      const manifest = entry.manifest!;
      const model = this.repository.fileIn(entry.folder, manifest.file);
      if (manifest.tokenizer) this.repository.fileIn(entry.folder, manifest.tokenizer.file ?? 'tokenizer.json');
      const past = manifest.generation?.past_key_values || undefined;
      entry.bytes = (manifest.file_bytes ?? (await stat(model)).size) + (past?.file_bytes ?? 0);
      await this.#makeRoom(entry);
      entry.engine = await ModelEngine.start({
        name: entry.name,
        manifest,
        device: this.#options.device,
        files: { model, past: past ? this.repository.fileIn(entry.folder, past.file) : undefined },
        serving: this.servingOptions(entry.name, manifest),
        warmup: this.#options.warmup,
        observer: this.#observer,
        stats: entry.stats,
      });
      entry.state = 'ready';
      entry.lastUsed = Date.now();
      const seconds = (performance.now() - started) / 1000;
      entry.stats.loadSeconds = seconds;
      this.lifecycle.emit('ready', entry.name, seconds);
    } catch (error) {
      entry.engine?.dispose();
      entry.engine = undefined;
      entry.state = 'failed';
      entry.error = (error as Error).message;
      this.lifecycle.emit('failed', entry.name, entry.error, (performance.now() - started) / 1000);
    }
  }

  async #unload(entry: ModelEntry): Promise<void> {
    if (entry.loading) await entry.loading.catch(() => undefined);
    const engine = entry.engine;
    const wasLoaded = entry.state === 'ready';
    if (wasLoaded) this.lifecycle.emit('unloading', entry.name);
    if (engine) {
      await engine.drain();
      engine.dispose();
      trimMemory();
    }
    entry.engine = undefined;
    entry.state = entry.state === 'failed' ? 'failed' : 'unloaded';
    if (entry.state === 'unloaded') entry.error = undefined;
    this.#observer.queueDepth(entry.name, 0);
    if (wasLoaded) this.lifecycle.emit('unloaded', entry.name);
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
        .filter((e) => e.state === 'ready' && e.engine?.idle)
        .sort((a, b) => a.lastUsed - b.lastUsed)[0];
      if (!victim) {
        throw new MemoryLimitError(`model '${entry.name}' does not fit in MODEL_MEMORY_LIMIT (${limit} bytes) and no idle model can be evicted`);
      }
      this.lifecycle.emit('evicted', victim.name);
      await this.unload(victim.name);
      used -= victim.bytes;
    }
  }
}
