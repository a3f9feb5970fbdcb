/**
 * The model registry: the catalog of the repository's models, their versions, and their
 * lifecycle. It knows which models and versions exist and what state each version is in; it
 * loads each version once (concurrent loads share one promise) by starting its engine, unloads
 * after the engine drains, evicts the least recently used idle version to stay inside the memory
 * budget, and announces every transition on `lifecycle` (metrics, the response cache and
 * readiness listen there). How a model's work is batched and run is its engine's business
 * (engine/model-engine.ts).
 *
 * A request without a version goes to the model's default version: the newest served version
 * that is ready (else the newest served one). Loading a model applies its version policy: the
 * versions it names are loaded first, and only then are the ready versions it no longer names
 * unloaded, after their queues drain: a rollout during which no request fails.
 */
import { stat } from 'node:fs/promises';

import { QueueClosedError } from '../batching/batcher.js';
import { trimMemory } from '../runtime/index.js';
import { ModelEngine, type ModelStats, type ServingOptions } from './engine/model-engine.js';
import { MemoryLimitError, ModelNotFoundError, ModelNotReadyError } from './errors.js';
import { ModelLifecycle } from './lifecycle.js';
import { type Manifest, readManifest, readServingOverrides, readVersionPolicy } from './manifest.js';
import { noopObserver, type ModelObserver } from './observer.js';
import { ModelRepository } from './repository.js';
import { DEFAULT_VERSION_POLICY, describePolicy, servedVersions, type VersionPolicy } from './version-policy.js';

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
  /** Let calibration pick one intra-op thread for the batches it measured faster so (default true). */
  chooseThreads?: boolean;
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
    readonly version = '1',
  ) {}
}

/** A model of the repository: its versions (by number as text) and the policy that picks the served ones. */
interface ModelVersions {
  readonly name: string;
  readonly versions: Map<string, ModelEntry>;
  policy: VersionPolicy;
  /** Set when serving.json cannot be read. */
  policyError?: string;
}

const byVersion = (a: ModelEntry, b: ModelEntry) => Number(a.version) - Number(b.version);

export class ModelRegistry {
  readonly repository: ModelRepository;
  readonly lifecycle = new ModelLifecycle();
  readonly #options: RegistryOptions;
  readonly #observer: ModelObserver;
  readonly #models = new Map<string, ModelVersions>();
  #closing = false;

  constructor(repository: ModelRepository, options: RegistryOptions) {
    this.repository = repository;
    this.#options = options;
    this.#observer = options.observer ?? noopObserver;
  }

  /** Rescan the repository: new models and versions appear as unloaded, vanished unloaded ones go. */
  async refresh(): Promise<ModelEntry[]> {
    const names = await this.repository.scan();
    for (const name of names) await this.#refreshModel(name);
    for (const [name, model] of this.#models) {
      if (names.includes(name)) continue;
      for (const [version, entry] of model.versions) if (entry.state === 'unloaded') model.versions.delete(version);
      if (model.versions.size === 0) this.#models.delete(name);
    }
    return this.list();
  }

  async #refreshModel(name: string): Promise<ModelVersions | undefined> {
    const found = this.repository.versionsOf(name);
    let model = this.#models.get(name);
    if (!model) {
      if (found.length === 0) return undefined;
      model = { name, versions: new Map(), policy: DEFAULT_VERSION_POLICY };
      this.#models.set(name, model);
    }
    const folder = this.repository.folderOf(name);
    try {
      model.policy = folder ? await readVersionPolicy(folder) : model.policy;
      model.policyError = undefined;
    } catch (error) {
      model.policyError = (error as Error).message;
    }
    for (const { version, folder: versionFolder } of found) {
      if (model.versions.has(version)) continue;
      const entry = new ModelEntry(name, versionFolder, version);
      await this.#readManifest(entry);
      if (!model.versions.has(version)) model.versions.set(version, entry);
    }
    const present = new Set(found.map((f) => f.version));
    for (const [version, entry] of model.versions) if (!present.has(version) && entry.state === 'unloaded') model.versions.delete(version);
    return model;
  }

  /** One entry per model: its default version. */
  list(): ModelEntry[] {
    return [...this.#models.values()].map((m) => this.#default(m)!).filter(Boolean).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Every version of every model. */
  #all(): ModelEntry[] {
    return [...this.#models.values()].flatMap((m) => [...m.versions.values()]);
  }

  /** The versions of a model on disk or still loaded, oldest first, and which of them the policy serves. */
  versionsOf(name: string): { entry: ModelEntry; served: boolean }[] {
    const model = this.#models.get(name);
    if (!model) return [];
    const served = new Set(this.#served(model));
    return [...model.versions.values()].sort(byVersion).map((entry) => ({ entry, served: served.has(entry.version) }));
  }

  /** The model's version policy, in Triton's words. */
  policyOf(name: string): string | undefined {
    const model = this.#models.get(name);
    return model ? describePolicy(model.policy) : undefined;
  }

  #served(model: ModelVersions): string[] {
    return servedVersions(model.policy, [...model.versions.keys()]);
  }

  /**
   * Where a request without a version goes: the newest served version that is ready; else the
   * newest ready one (a version the policy no longer names keeps serving until its successor is
   * ready); else the newest served one.
   */
  #default(model: ModelVersions): ModelEntry | undefined {
    const all = [...model.versions.values()].sort(byVersion);
    const served = new Set(this.#served(model));
    const isReady = (e: ModelEntry) => e.state === 'ready' && e.engine !== undefined;
    return all.filter((e) => served.has(e.version) && isReady(e)).at(-1) ?? all.filter(isReady).at(-1) ?? all.filter((e) => served.has(e.version)).at(-1) ?? all.at(-1);
  }

  /** The model's default version, or the version asked for. */
  get(name: string, version?: string): ModelEntry | undefined {
    const model = this.#models.get(name);
    if (!model) return undefined;
    return version === undefined ? this.#default(model) : model.versions.get(version);
  }

  /** The entry (the default version, or `version`), or a ModelNotFoundError; picks up folders and versions added since the last scan. */
  async find(name: string, version?: string): Promise<ModelEntry> {
    let entry = this.get(name, version);
    if (!entry && this.repository.folderOf(name)) {
      await this.#refreshModel(name);
      entry = this.get(name, version);
    }
    if (!entry) {
      if (version !== undefined && this.#models.has(name)) {
        const known = [...this.#models.get(name)!.versions.keys()].sort((a, b) => Number(a) - Number(b));
        throw new ModelNotFoundError(name, `model '${name}' has no version ${version} (versions: ${known.join(', ')})`);
      }
      throw new ModelNotFoundError(name);
    }
    return entry;
  }

  /** True once close() has begun: no new work is accepted. */
  get closing(): boolean {
    return this.#closing;
  }

  /**
   * Load one version, or (without `version`) apply the model's version policy: rescan its
   * versions, load every served one, and once they are ready unload the loaded versions the
   * policy no longer serves (each after its queue drains). Returns the default version.
   */
  async load(name: string, version?: string): Promise<ModelEntry> {
    if (version !== undefined) return this.#loadVersion(await this.find(name, version));
    await this.find(name);
    const model = (await this.#refreshModel(name)) ?? this.#models.get(name)!;
    if (model.policyError) throw new ModelNotReadyError(`model '${name}': ${model.policyError}`);
    const served = this.#served(model).map((v) => model.versions.get(v)!);
    const results = await Promise.allSettled(served.map((entry) => this.#loadVersion(entry)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed && results.every((r) => r.status === 'rejected')) throw failed.reason;
    const keep = new Set(served);
    await Promise.all(
      [...model.versions.values()].filter((e) => !keep.has(e) && (e.state === 'ready' || e.state === 'loading')).map((e) => this.#unloadVersion(e)),
    );
    if (failed) throw failed.reason;
    return this.#default(model)!;
  }

  async #loadVersion(entry: ModelEntry): Promise<ModelEntry> {
    if (entry.state === 'ready') return entry;
    if (!entry.loading) {
      entry.loading = this.#load(entry).finally(() => {
        entry.loading = undefined;
      });
    }
    await entry.loading;
    if ((entry.state as ModelState) !== 'ready') throw new ModelNotReadyError(`model '${entry.name}'${this.#versionText(entry)} failed to load: ${entry.error}`);
    return entry;
  }

  #versionText(entry: ModelEntry): string {
    return (this.#models.get(entry.name)?.versions.size ?? 1) > 1 ? ` version ${entry.version}` : '';
  }

  /** Drain the engine of one version, or of every version, then release it. Returns the default version. */
  async unload(name: string, version?: string): Promise<ModelEntry> {
    const entry = await this.find(name, version);
    if (version !== undefined) return this.#unloadVersion(entry);
    await Promise.all([...this.#models.get(name)!.versions.values()].map((e) => this.#unloadVersion(e)));
    return this.get(name)!;
  }

  async #unloadVersion(entry: ModelEntry): Promise<ModelEntry> {
    entry.unloading ??= this.#unload(entry).finally(() => {
      entry.unloading = undefined;
    });
    await entry.unloading;
    return entry;
  }

  /** A ready entry (the default version, or `version`): loads it on first use when lazy loading is on. */
  async acquire(name: string, version?: string): Promise<ModelEntry> {
    if (this.#closing) throw new ModelNotReadyError('the server is shutting down');
    const entry = await this.find(name, version);
    if (entry.state === 'ready' && entry.engine) {
      // Even while it unloads: its closed queue then sends the request through withEngine's retry.
      entry.lastUsed = Date.now();
      this.#observer.cacheHit(name);
      return entry;
    }
    if (version !== undefined && entry.state !== 'loading' && !this.#served(this.#models.get(name)!).includes(version)) {
      throw new ModelNotFoundError(name, `version ${version} of model '${name}' is not served (version policy: ${this.policyOf(name)}; set version_policy in its serving.json)`);
    }
    if (entry.state === 'loading' || this.#options.lazyLoad) {
      if (entry.state !== 'loading') this.#observer.cacheMiss(name);
      const loaded = version === undefined && entry.state !== 'loading' ? await this.load(name) : await this.#loadVersion(entry);
      loaded.lastUsed = Date.now();
      return loaded;
    }
    const which = version !== undefined ? ` version ${version}` : '';
    throw new ModelNotReadyError(
      entry.state === 'failed' ? `model '${name}'${which} failed to load: ${entry.error}` : `model '${name}'${which} is not loaded (POST /models/${name}/load)`,
    );
  }

  /**
   * Run `use` on the engine of an acquired entry. When the engine's queue closes under it (the
   * version was unloaded meanwhile, e.g. by a rollout), wait for the unload, acquire the model
   * again (its new default version, or the same pinned `version`, reloading it when LAZY_LOAD
   * is on) and run `use` again, up to UNLOAD_RETRIES times.
   */
  async withEngine<T>(acquired: ModelEntry, use: (engine: ModelEngine, entry: ModelEntry) => Promise<T>, version?: string): Promise<T> {
    let entry = acquired;
    for (let attempt = 0; ; attempt++) {
      try {
        if (!(entry.engine && entry.state === 'ready')) entry = await this.acquire(entry.name, version);
        // An unload can finish between acquire's answer and this line (an idle engine drains at
        // once): that is the queue closing under the request, and is retried the same way.
        const engine = entry.engine;
        if (!engine) throw new QueueClosedError();
        return await use(engine, entry);
      } catch (error) {
        if (!(error instanceof QueueClosedError) || attempt === UNLOAD_RETRIES) throw error;
        await entry.unloading;
        entry = await this.acquire(entry.name, version);
      }
    }
  }

  /** Stop taking requests, finish what is queued, release every model. */
  async close(): Promise<void> {
    this.#closing = true;
    await Promise.all(this.#all().map((entry) => this.#unloadVersion(entry).catch(() => undefined)));
  }

  /** The settings a model's engine runs with: server-wide, then per model, then its serving.json. */
  servingOptions(name: string, manifest: Manifest): Required<ServingOptions> {
    const merged = { ...this.#options.serving, ...(this.#options.perModel?.[name] ?? {}), ...(this.get(name)?.serving ?? {}) };
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
      entry.serving = await readServingOverrides(this.repository.folderOf(entry.name) ?? entry.folder);
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
    this.lifecycle.emit('loading', entry.name, entry.version);
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
        chooseThreads: this.#options.chooseThreads ?? true,
        observer: this.#observer,
        stats: entry.stats,
      });
      entry.state = 'ready';
      entry.lastUsed = Date.now();
      const seconds = (performance.now() - started) / 1000;
      entry.stats.loadSeconds = seconds;
      this.lifecycle.emit('ready', entry.name, seconds, entry.version);
    } catch (error) {
      entry.engine?.dispose();
      entry.engine = undefined;
      entry.state = 'failed';
      entry.error = (error as Error).message;
      this.lifecycle.emit('failed', entry.name, entry.error, (performance.now() - started) / 1000, entry.version);
    }
  }

  async #unload(entry: ModelEntry): Promise<void> {
    if (entry.loading) await entry.loading.catch(() => undefined);
    const engine = entry.engine;
    const wasLoaded = entry.state === 'ready';
    if (wasLoaded) this.lifecycle.emit('unloading', entry.name, entry.version);
    if (engine) {
      await engine.drain();
      engine.dispose();
      trimMemory();
    }
    entry.engine = undefined;
    entry.state = entry.state === 'failed' ? 'failed' : 'unloaded';
    if (entry.state === 'unloaded') entry.error = undefined;
    if (!this.#all().some((e) => e.name === entry.name && e !== entry && e.engine)) this.#observer.queueDepth(entry.name, 0);
    if (wasLoaded) this.lifecycle.emit('unloaded', entry.name, entry.version);
  }

  /** Evict least recently used idle models until `entry` fits the memory budget. */
  async #makeRoom(entry: ModelEntry): Promise<void> {
    const limit = this.#options.memoryLimitBytes;
    if (!limit) return;
    if (entry.bytes > limit) {
      throw new MemoryLimitError(`model '${entry.name}' needs ${entry.bytes} bytes, more than MODEL_MEMORY_LIMIT (${limit})`);
    }
    const others = () => this.#all().filter((e) => e !== entry && (e.state === 'ready' || e.state === 'loading'));
    let used = others().reduce((n, e) => n + e.bytes, 0);
    while (used + entry.bytes > limit) {
      const victim = others()
        .filter((e) => e.state === 'ready' && e.engine?.idle)
        .sort((a, b) => a.lastUsed - b.lastUsed)[0];
      if (!victim) {
        throw new MemoryLimitError(`model '${entry.name}' does not fit in MODEL_MEMORY_LIMIT (${limit} bytes) and no idle model can be evicted`);
      }
      this.lifecycle.emit('evicted', victim.name, victim.version);
      await this.#unloadVersion(victim);
      used -= victim.bytes;
    }
  }
}
