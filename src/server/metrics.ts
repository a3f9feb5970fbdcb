/**
 * Prometheus metrics (prom-client), prefix atenspace_, base units, label `model`.
 * Implements the model layer's observer, and counts HTTP outcomes.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, exponentialBuckets } from 'prom-client';

import type { ModelLifecycle } from '../models/lifecycle.js';
import type { ModelObserver, Outcome, Stage } from '../models/observer.js';
import { runtimeInfo, type RuntimeInfo } from '../runtime/index.js';

export const METRIC_PREFIX = 'atenspace_';

/** The front end a request came in through (the `protocol` label of atenspace_requests_total). */
export type Protocol = 'http' | 'grpc';

// 25 µs to ~26 s, doubling: covers a tiny model's queue wait and a cold load alike.
const SECONDS_BUCKETS = exponentialBuckets(0.000025, 2, 21);

export class ServerMetrics implements ModelObserver {
  readonly registry = new Registry();
  readonly requests: Counter<'model' | 'outcome' | 'protocol'>;
  readonly duration: Histogram<'model' | 'task' | 'stage'>;
  readonly batchSize: Histogram<'model'>;
  readonly inferences: Counter<'model'>;
  readonly executions: Counter<'model'>;
  readonly queueDepthGauge: Gauge<'model'>;
  readonly inflightRequests: Gauge<'model'>;
  readonly generatedTokens: Counter<'model'>;
  readonly timeToFirstToken: Histogram<'model'>;
  readonly timePerOutputToken: Histogram<'model'>;
  readonly activeSequencesGauge: Gauge<'model'>;
  readonly decodeBatchRows: Histogram<'model' | 'kind'>;
  readonly loadDuration: Histogram<'model' | 'outcome'>;
  readonly cacheHits: Counter<'model'>;
  readonly cacheMisses: Counter<'model'>;
  readonly cacheEvictions: Counter<'model'>;
  readonly modelsLoaded: Gauge;
  readonly tokens: Histogram<'model'>;
  readonly responseCacheHits: Counter<'model'>;
  readonly responseCacheMisses: Counter<'model'>;
  readonly responseCacheEvictions: Counter<'model'>;
  readonly responseCacheBytes: Gauge;
  readonly atoms: Gauge<'type'>;
  readonly similarityDuration: Histogram<'space' | 'mode'>;
  readonly similarityCandidates: Histogram<'space' | 'mode'>;
  readonly journalBytes: Gauge;
  readonly journalFsync: Histogram;
  readonly deviceMemory: Gauge<'device' | 'kind'>;
  readonly nativeLiveTensors: Gauge<'kind'>;
  readonly nativeLiveTensorBytes: Gauge<'kind'>;
  readonly nativeLiveModules: Gauge;
  /** CUDA memory per device, read at scrape time; set by the app. */
  deviceMemoryOf: () => { device: string; allocated: number; reserved: number }[] = () => [];
  /** Atom counts by type, read at scrape time; set by the app. */
  atomCounts: () => Map<string, number> = () => new Map();
  /** The task of a model, for the `task` label; set by the app from its registry. */
  taskOf: (model: string) => string = () => 'unknown';
  readonly #loaded = new Set<string>();

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: METRIC_PREFIX });
    this.requests = new Counter({
      name: `${METRIC_PREFIX}requests_total`,
      help: 'Inference requests by model and outcome (success, client_error, server_error, rejected, timeout, cancelled) and protocol (http, grpc)',
      labelNames: ['model', 'outcome', 'protocol'],
      registers,
    });
    this.duration = new Histogram({
      name: `${METRIC_PREFIX}request_duration_seconds`,
      help: 'Time spent per request stage (preprocess, queue, compute, postprocess, total), by model and task',
      labelNames: ['model', 'task', 'stage'],
      buckets: SECONDS_BUCKETS,
      registers,
    });
    this.batchSize = new Histogram({
      name: `${METRIC_PREFIX}batch_size`,
      help: 'Rows per executed batch',
      labelNames: ['model'],
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
      registers,
    });
    this.inferences = new Counter({
      name: `${METRIC_PREFIX}inference_count_total`,
      help: 'Rows inferred (a request of batch size n counts n)',
      labelNames: ['model'],
      registers,
    });
    this.executions = new Counter({
      name: `${METRIC_PREFIX}execution_count_total`,
      help: 'Forward executions; inference_count / execution_count is the average batch size',
      labelNames: ['model'],
      registers,
    });
    this.queueDepthGauge = new Gauge({
      name: `${METRIC_PREFIX}queue_depth`,
      help: 'Requests waiting in the model queue',
      labelNames: ['model'],
      registers,
    });
    this.inflightRequests = new Gauge({
      name: `${METRIC_PREFIX}inflight_requests`,
      help: 'Inference requests of a model being served now (queued, computing or streaming): the per-model load that autoscaling scales on',
      labelNames: ['model'],
      registers,
    });
    this.generatedTokens = new Counter({ name: `${METRIC_PREFIX}generated_tokens_total`, help: 'Text generation: tokens generated (one per forward step of a sequence)', labelNames: ['model'], registers });
    this.timeToFirstToken = new Histogram({
      name: `${METRIC_PREFIX}time_to_first_token_seconds`,
      help: 'Text generation: from the request queued to its first token',
      labelNames: ['model'],
      buckets: SECONDS_BUCKETS,
      registers,
    });
    this.timePerOutputToken = new Histogram({
      name: `${METRIC_PREFIX}time_per_output_token_seconds`,
      help: 'Text generation: mean time between tokens after the first, per sequence',
      labelNames: ['model'],
      buckets: SECONDS_BUCKETS,
      registers,
    });
    this.activeSequencesGauge = new Gauge({ name: `${METRIC_PREFIX}active_sequences`, help: 'Text generation: sequences decoding now (continuous batching)', labelNames: ['model'], registers });
    this.decodeBatchRows = new Histogram({
      name: `${METRIC_PREFIX}decode_batch_rows`,
      help: 'Text generation: sequences per forward, kind=decode for a decode step, kind=prefill for new prompts joining',
      labelNames: ['model', 'kind'],
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
      registers,
    });
    this.loadDuration = new Histogram({
      name: `${METRIC_PREFIX}model_load_duration_seconds`,
      help: 'Model load time including warm-up, by outcome (success, failure)',
      labelNames: ['model', 'outcome'],
      buckets: exponentialBuckets(0.01, 2, 14),
      registers,
    });
    this.cacheHits = new Counter({ name: `${METRIC_PREFIX}model_cache_hits_total`, help: 'Requests that found their model loaded', labelNames: ['model'], registers });
    this.cacheMisses = new Counter({ name: `${METRIC_PREFIX}model_cache_misses_total`, help: 'Requests that had to load their model', labelNames: ['model'], registers });
    this.cacheEvictions = new Counter({ name: `${METRIC_PREFIX}model_cache_evictions_total`, help: 'Models unloaded to stay within MODEL_MEMORY_LIMIT', labelNames: ['model'], registers });
    this.modelsLoaded = new Gauge({ name: `${METRIC_PREFIX}models_loaded`, help: 'Model versions loaded and ready', registers });
    this.tokens = new Histogram({
      name: `${METRIC_PREFIX}request_tokens`,
      help: 'Tokens per text request (all texts of the request, special tokens included)',
      labelNames: ['model'],
      buckets: exponentialBuckets(1, 2, 16),
      registers,
    });
    this.responseCacheHits = new Counter({ name: `${METRIC_PREFIX}response_cache_hits_total`, help: 'Responses served from the response cache', labelNames: ['model'], registers });
    this.responseCacheMisses = new Counter({ name: `${METRIC_PREFIX}response_cache_misses_total`, help: 'Cacheable requests not in the response cache', labelNames: ['model'], registers });
    this.responseCacheEvictions = new Counter({ name: `${METRIC_PREFIX}response_cache_evictions_total`, help: 'Responses evicted to stay within RESPONSE_CACHE_SIZE', labelNames: ['model'], registers });
    this.responseCacheBytes = new Gauge({ name: `${METRIC_PREFIX}response_cache_bytes`, help: 'Bytes held by the response cache', registers });
    const counts = () => this.atomCounts();
    this.atoms = new Gauge({
      name: `${METRIC_PREFIX}atoms`,
      help: 'Atoms in the AtomSpace by type',
      labelNames: ['type'],
      registers,
      collect() {
        this.reset();
        for (const [type, n] of counts()) this.set({ type }, n);
      },
    });
    this.similarityDuration = new Histogram({
      name: `${METRIC_PREFIX}similarity_duration_seconds`,
      help: 'Nearest-atom search time by embedding space and mode (exact, approximate)',
      labelNames: ['space', 'mode'],
      buckets: SECONDS_BUCKETS,
      registers,
    });
    this.similarityCandidates = new Histogram({
      name: `${METRIC_PREFIX}similarity_candidates`,
      help: 'Vectors scanned (exact) or visited (approximate, estimated) per search',
      labelNames: ['space', 'mode'],
      buckets: exponentialBuckets(10, 4, 10),
      registers,
    });
    this.journalBytes = new Gauge({ name: `${METRIC_PREFIX}journal_bytes`, help: 'Bytes in the current AtomSpace journal file', registers });
    const memory = () => this.deviceMemoryOf();
    this.deviceMemory = new Gauge({
      name: `${METRIC_PREFIX}device_memory_bytes`,
      help: 'CUDA caching allocator memory by device and kind (allocated, reserved)',
      labelNames: ['device', 'kind'],
      registers,
      collect() {
        this.reset();
        for (const d of memory()) {
          this.set({ device: d.device, kind: 'allocated' }, d.allocated);
          this.set({ device: d.device, kind: 'reserved' }, d.reserved);
        }
      },
    });
    this.journalFsync = new Histogram({ name: `${METRIC_PREFIX}journal_fsync_duration_seconds`, help: 'fdatasync time per journal group commit', buckets: SECONDS_BUCKETS, registers });
    // The addon's live counts, read at scrape time (nothing is reported if the addon cannot load).
    const native = (): RuntimeInfo | undefined => {
      try {
        return runtimeInfo();
      } catch {
        return undefined;
      }
    };
    this.nativeLiveTensors = new Gauge({
      name: `${METRIC_PREFIX}native_live_tensors`,
      help: 'Tensors alive at the addon boundary: kind=output are forward results held by JS buffers, kind=input are inputs copied from JS not yet freed',
      labelNames: ['kind'],
      registers,
      collect() {
        const info = native();
        if (!info) return;
        this.set({ kind: 'output' }, info.liveTensors);
        this.set({ kind: 'input' }, info.liveInputTensors);
      },
    });
    this.nativeLiveTensorBytes = new Gauge({
      name: `${METRIC_PREFIX}native_live_tensor_bytes`,
      help: 'Data bytes of the tensors counted by atenspace_native_live_tensors',
      labelNames: ['kind'],
      registers,
      collect() {
        const info = native();
        if (!info) return;
        this.set({ kind: 'output' }, info.liveTensorBytes);
        this.set({ kind: 'input' }, info.liveInputTensorBytes);
      },
    });
    this.nativeLiveModules = new Gauge({
      name: `${METRIC_PREFIX}native_live_modules`,
      help: 'TorchScript modules alive in the addon (loaded and not yet freed)',
      registers,
      collect() {
        const info = native();
        if (info) this.set(info.liveModules);
      },
    });
  }

  readonly journal = {
    fsync: (seconds: number) => this.journalFsync.observe(seconds),
    bytes: (total: number) => this.journalBytes.set(total),
  };

  readonly similarity = {
    query: (space: string, seconds: number, scanned: number, mode: 'exact' | 'approximate') => {
      this.similarityDuration.observe({ space, mode }, seconds);
      this.similarityCandidates.observe({ space, mode }, scanned);
    },
  };

  /** The response cache's observer. */
  readonly responseCache = {
    hit: (model: string) => this.responseCacheHits.inc({ model }),
    miss: (model: string) => this.responseCacheMisses.inc({ model }),
    eviction: (model: string) => this.responseCacheEvictions.inc({ model }),
    bytes: (total: number) => this.responseCacheBytes.set(total),
  };

  /** An inference request for `model` began (counted in atenspace_inflight_requests until it ends). */
  requestStarted(model: string): void {
    this.inflightRequests.inc({ model });
  }

  /** The request that `requestStarted` counted has been answered (or failed). */
  requestEnded(model: string): void {
    this.inflightRequests.dec({ model });
  }

  request(model: string, outcome: Outcome, seconds: number | undefined, protocol: Protocol = 'http'): void {
    this.requests.inc({ model, outcome, protocol });
    if (seconds !== undefined) this.duration.observe({ model, task: this.taskOf(model), stage: 'total' }, seconds);
  }

  /** Follow a registry's lifecycle: load times and outcomes, loaded models, evictions. */
  watch(lifecycle: ModelLifecycle): void {
    lifecycle.on('ready', (model, seconds, version) => {
      this.loadDuration.observe({ model, outcome: 'success' }, seconds);
      this.#loaded.add(`${model}\0${version}`);
      this.modelsLoaded.set(this.#loaded.size);
    });
    lifecycle.on('failed', (model, _error, seconds) => this.loadDuration.observe({ model, outcome: 'failure' }, seconds));
    lifecycle.on('unloaded', (model, version) => {
      this.#loaded.delete(`${model}\0${version}`);
      this.modelsLoaded.set(this.#loaded.size);
    });
    lifecycle.on('evicted', (model) => this.cacheEvictions.inc({ model }));
  }

  cacheHit(model: string): void {
    this.cacheHits.inc({ model });
  }

  cacheMiss(model: string): void {
    this.cacheMisses.inc({ model });
  }

  batchExecuted(model: string, rows: number): void {
    this.batchSize.observe({ model }, rows);
    this.inferences.inc({ model }, rows);
    this.executions.inc({ model });
  }

  stage(model: string, stage: Stage, seconds: number): void {
    this.duration.observe({ model, task: this.taskOf(model), stage }, seconds);
  }

  tokensPerRequest(model: string, count: number): void {
    this.tokens.observe({ model }, count);
  }

  decodeStep(model: string, kind: 'prefill' | 'decode', rows: number): void {
    this.decodeBatchRows.observe({ model, kind }, rows);
    this.batchSize.observe({ model }, rows);
    this.inferences.inc({ model }, rows);
    this.executions.inc({ model });
  }

  firstToken(model: string, seconds: number): void {
    this.timeToFirstToken.observe({ model }, seconds);
  }

  sequenceFinished(model: string, tokens: number, secondsPerToken: number | undefined): void {
    this.generatedTokens.inc({ model }, tokens);
    if (secondsPerToken !== undefined) this.timePerOutputToken.observe({ model }, secondsPerToken);
  }

  activeSequences(model: string, count: number): void {
    this.activeSequencesGauge.set({ model }, count);
  }

  queueDepth(model: string, depth: number): void {
    this.queueDepthGauge.set({ model }, depth);
  }
}
