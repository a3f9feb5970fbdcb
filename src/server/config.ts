/**
 * Server settings: every one is an environment variable and a CLI flag (the flag wins),
 * validated at start-up. `describeSettings()` is what the README's table lists.
 */
import { parseArgs } from 'node:util';

import { DEFAULT_LIMITS, type RequestLimits } from '../models/limits.js';

/** The per-request limits (src/models/limits.ts) are settings too. */
export interface ServerConfig extends RequestLimits {
  modelRepository: string;
  port: number;
  host: string;
  /** gRPC port (KServe v2 over gRPC); 0: no gRPC server. */
  grpcPort: number;
  grpcMaxMessageBytes: number;
  /** Tracing (OpenTelemetry, standard variable names): on when an OTLP endpoint is set. */
  otlpEndpoint: string | undefined;
  otlpTracesEndpoint: string | undefined;
  serviceName: string;
  /** 'all', 'none' or a list of model names to load at start-up. */
  loadModels: 'all' | 'none' | string[];
  lazyLoad: boolean;
  device: string;
  modelMemoryLimit: number;
  maxBatchSize: number | undefined;
  maxQueueDelayMs: number;
  maxQueueSize: number;
  maxBatchTokens: number;
  maxConcurrentSequences: number;
  maxBatchTotalTokens: number;
  instances: number;
  responseCacheSize: number;
  embedModel: string | undefined;
  dataDir: string;
  atomspaceStore: 'journal' | 'postgres';
  databaseUrl: string | undefined;
  pgPoolSize: number;
  atomTypes: string | undefined;
  snapshotBytes: number;
  approximateFrom: number;
  hnswConnectivity: number;
  hnswExpansionAdd: number;
  hnswExpansionSearch: number;
  workerThreads: number | undefined;
  intraOpThreads: number | undefined;
  interOpThreads: number | undefined;
  apiKey: string | undefined;
  authReads: boolean;
  bodyLimit: number;
  drainLimit: number;
  maxEventLoopDelayMs: number;
  maxRssBytes: number;
  maxHeapUsedBytes: number;
  memoryTrimIntervalMs: number;
  corsOrigins: string[] | undefined;
  warmup: boolean;
  /** Whether small batches may run on one intra-op thread where calibration measured it faster (thread-choice.ts). */
  batchThreads: 'auto' | 'all';
  logLevel: string;
}

interface Setting {
  key: keyof ServerConfig;
  env: string;
  flag: string;
  default: string;
  help: string;
  parse(value: string, name: string): unknown;
}

export class ConfigError extends Error {}

function integer(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string, name: string) => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got '${value}'`);
    }
    return n;
  };
}

function optionalInteger(min: number, max?: number) {
  const parse = integer(min, max);
  return (value: string, name: string) => (value === '' || value === 'auto' ? undefined : parse(value, name));
}

function optionalUrl(value: string, name: string): string | undefined {
  if (value.trim() === '') return undefined;
  if (!URL.canParse(value) || !/^https?:$/.test(new URL(value).protocol)) throw new ConfigError(`${name} must be an http(s) URL, got '${value}'`);
  return value;
}

/** One of a few words, e.g. oneOf('journal', 'postgres'). */
function oneOf<T extends string>(...choices: T[]) {
  return (value: string, name: string): T => {
    if (!(choices as string[]).includes(value)) throw new ConfigError(`${name} must be ${choices.slice(0, -1).join(', ')} or ${choices.at(-1)}, got '${value}'`);
    return value as T;
  };
}

function boolean(value: string, name: string): boolean {
  if (/^(1|true|yes|on)$/i.test(value)) return true;
  if (/^(0|false|no|off)$/i.test(value)) return false;
  throw new ConfigError(`${name} must be true or false, got '${value}'`);
}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30 };

export function parseBytes(value: string, name: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
  const unit = match ? UNITS[match[2]!.toLowerCase()] : undefined;
  if (!match || unit === undefined) throw new ConfigError(`${name} must be a size like 0, 512MiB or 2GB, got '${value}'`);
  return Math.round(Number(match[1]) * unit);
}

const SETTINGS: Setting[] = [
  { key: 'modelRepository', env: 'MODEL_REPOSITORY', flag: 'model-repository', default: './models', help: 'folder of exported models', parse: (v) => v },
  { key: 'port', env: 'PORT', flag: 'port', default: '8080', help: 'HTTP port', parse: integer(0, 65535) },
  { key: 'host', env: 'HOST', flag: 'host', default: '0.0.0.0', help: 'address to listen on', parse: (v) => v },
  { key: 'grpcPort', env: 'GRPC_PORT', flag: 'grpc-port', default: '8081', help: 'gRPC port: KServe v2 GRPCInferenceService, grpc.health.v1 and reflection (0: off)', parse: integer(0, 65535) },
  { key: 'grpcMaxMessageBytes', env: 'GRPC_MAX_MESSAGE_BYTES', flag: 'grpc-max-message-bytes', default: '16MiB', help: 'largest gRPC request message (RESOURCE_EXHAUSTED beyond)', parse: parseBytes },
  { key: 'otlpEndpoint', env: 'OTEL_EXPORTER_OTLP_ENDPOINT', flag: 'otel-exporter-otlp-endpoint', default: '', help: 'OpenTelemetry collector base URL: traces are exported over OTLP/HTTP (protobuf) to {url}/v1/traces (empty: tracing off)', parse: optionalUrl },
  { key: 'otlpTracesEndpoint', env: 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', flag: 'otel-exporter-otlp-traces-endpoint', default: '', help: 'full OTLP/HTTP URL for traces (wins over OTEL_EXPORTER_OTLP_ENDPOINT)', parse: optionalUrl },
  { key: 'serviceName', env: 'OTEL_SERVICE_NAME', flag: 'otel-service-name', default: 'atenspace-serve', help: 'service.name of the exported spans', parse: (v) => v || 'atenspace-serve' },
  {
    key: 'loadModels',
    env: 'LOAD_MODELS',
    flag: 'load-models',
    default: 'all',
    help: 'models loaded at start-up: all, none, or a comma-separated list',
    parse: (v) => (v === 'all' || v === 'none' ? v : v.split(',').map((s) => s.trim()).filter(Boolean)),
  },
  { key: 'lazyLoad', env: 'LAZY_LOAD', flag: 'lazy-load', default: 'true', help: 'load an unloaded model on its first request', parse: boolean },
  {
    key: 'device',
    env: 'DEVICE',
    flag: 'device',
    default: 'auto',
    help: 'cpu, cuda, cuda:N or auto (CUDA when available)',
    parse: (v, name) => {
      if (!/^(cpu|cuda|cuda:\d+|auto)$/.test(v)) throw new ConfigError(`${name} must be cpu, cuda, cuda:N or auto, got '${v}'`);
      return v;
    },
  },
  { key: 'modelMemoryLimit', env: 'MODEL_MEMORY_LIMIT', flag: 'model-memory-limit', default: '0', help: 'weights bytes loaded at once (0: no limit); LRU idle models are evicted', parse: parseBytes },
  { key: 'maxBatchSize', env: 'MAX_BATCH_SIZE', flag: 'max-batch-size', default: 'auto', help: "rows per batch (auto: the manifest's max_batch_size)", parse: optionalInteger(1, 4096) },
  { key: 'maxQueueDelayMs', env: 'MAX_QUEUE_DELAY_MS', flag: 'max-queue-delay-ms', default: '0', help: 'how long a request may wait for others to batch with while an instance is free', parse: integer(0, 10000) },
  { key: 'maxQueueSize', env: 'MAX_QUEUE_SIZE', flag: 'max-queue-size', default: '1024', help: 'requests waiting per model before 429', parse: integer(1, 1_000_000) },
  { key: 'maxBatchTokens', env: 'MAX_BATCH_TOKENS', flag: 'max-batch-tokens', default: '16384', help: 'padded tokens (rows x longest text) per batch of text inputs', parse: integer(1, 10_000_000) },
  { key: 'maxConcurrentSequences', env: 'MAX_CONCURRENT_SEQUENCES', flag: 'max-concurrent-sequences', default: '32', help: 'text generation: sequences of one model decoding together (continuous batching)', parse: integer(1, 4096) },
  {
    key: 'maxBatchTotalTokens',
    env: 'MAX_BATCH_TOTAL_TOKENS',
    flag: 'max-batch-total-tokens',
    default: '16384',
    help: 'text generation: prompt + max_tokens summed over the decoding sequences of one model; bounds K/V memory (more wait in the queue)',
    parse: integer(1, 100_000_000),
  },
  { key: 'responseCacheSize', env: 'RESPONSE_CACHE_SIZE', flag: 'response-cache-size', default: '0', help: 'bytes of finished responses cached per server, LRU (0: off); never for sampling', parse: parseBytes },
  { key: 'embedModel', env: 'EMBED_MODEL', flag: 'embed-model', default: '', help: 'model for /embed, /tokenize and /v1/embeddings requests that name none (default: the first embedding model)', parse: (v) => v || undefined },
  { key: 'dataDir', env: 'DATA_DIR', flag: 'data-dir', default: './data', help: "the AtomSpace's journal and snapshots", parse: (v) => v },
  {
    key: 'atomspaceStore',
    env: 'ATOMSPACE_STORE',
    flag: 'atomspace-store',
    default: 'journal',
    help: "where the AtomSpace is kept: journal (DATA_DIR, one process) or postgres (DATABASE_URL, shared by replicas; memory is a cache)",
    parse: oneOf('journal', 'postgres'),
  },
  { key: 'databaseUrl', env: 'DATABASE_URL', flag: 'database-url', default: '', help: 'PostgreSQL URL for ATOMSPACE_STORE=postgres: postgres://user:password@host:5432/db', parse: (v) => v || undefined },
  { key: 'pgPoolSize', env: 'PG_POOL_SIZE', flag: 'pg-pool-size', default: '10', help: 'PostgreSQL connections per server (the change listener takes one more)', parse: integer(1, 1000) },
  { key: 'atomTypes', env: 'ATOM_TYPES', flag: 'atom-types', default: '', help: 'JSON file of extra atom types: [{"name", "parent", "unordered"?}]', parse: (v) => v || undefined },
  { key: 'snapshotBytes', env: 'SNAPSHOT_BYTES', flag: 'snapshot-bytes', default: '64MiB', help: 'journal size that triggers a snapshot (and drops older journals)', parse: parseBytes },
  { key: 'approximateFrom', env: 'APPROXIMATE_FROM', flag: 'approximate-from', default: '100000', help: 'vectors in a space from which /atoms/similar uses the HNSW index unless exact is asked (0: always)', parse: integer(0, 2 ** 31) },
  { key: 'hnswConnectivity', env: 'HNSW_CONNECTIVITY', flag: 'hnsw-connectivity', default: '16', help: 'HNSW graph degree (M)', parse: integer(2, 256) },
  { key: 'hnswExpansionAdd', env: 'HNSW_EXPANSION_ADD', flag: 'hnsw-expansion-add', default: '128', help: 'HNSW candidates while building (efConstruction)', parse: integer(1, 4096) },
  { key: 'hnswExpansionSearch', env: 'HNSW_EXPANSION_SEARCH', flag: 'hnsw-expansion-search', default: '128', help: 'HNSW candidates while searching (ef): higher is slower and closer to exact', parse: integer(1, 4096) },
  { key: 'instances', env: 'INSTANCES', flag: 'instances', default: '1', help: 'concurrent executions per model', parse: integer(1, 64) },
  { key: 'workerThreads', env: 'WORKER_THREADS', flag: 'worker-threads', default: 'auto', help: "threads of the addon's pool (auto: one per core)", parse: optionalInteger(1, 1024) },
  { key: 'intraOpThreads', env: 'INTRA_OP_THREADS', flag: 'intra-op-threads', default: 'auto', help: 'LibTorch intra-op threads (auto: LibTorch default)', parse: optionalInteger(1, 1024) },
  { key: 'interOpThreads', env: 'INTER_OP_THREADS', flag: 'inter-op-threads', default: 'auto', help: 'LibTorch inter-op threads', parse: optionalInteger(1, 1024) },
  { key: 'apiKey', env: 'API_KEY', flag: 'api-key', default: '', help: 'when set, load/unload and writes need Authorization: Bearer <key>', parse: (v) => v || undefined },
  { key: 'authReads', env: 'AUTH_READS', flag: 'auth-reads', default: 'false', help: 'with API_KEY, require it for reads too (health stays open)', parse: boolean },
  { key: 'bodyLimit', env: 'BODY_LIMIT', flag: 'body-limit', default: '16MiB', help: 'largest request body (413 beyond)', parse: parseBytes },
  { key: 'drainLimit', env: 'DRAIN_LIMIT', flag: 'drain-limit', default: '64MiB', help: 'body bytes still read (and discarded) after an answer sent before the body arrived (401, 413, 503), so clients that send before they read get it', parse: parseBytes },
  { key: 'maxTensorElements', env: 'MAX_TENSOR_ELEMENTS', flag: 'max-tensor-elements', default: String(DEFAULT_LIMITS.maxTensorElements), help: 'elements over all input tensors of one raw-tensor request (413 beyond)', parse: integer(1) },
  { key: 'maxTextsPerRequest', env: 'MAX_TEXTS_PER_REQUEST', flag: 'max-texts-per-request', default: String(DEFAULT_LIMITS.maxTextsPerRequest), help: 'texts in one embedding or tokenize request (413 beyond)', parse: integer(1, 1_000_000) },
  { key: 'maxTokensPerText', env: 'MAX_TOKENS_PER_TEXT', flag: 'max-tokens-per-text', default: String(DEFAULT_LIMITS.maxTokensPerText), help: "tokens in one text or prompt (0: the model's own limit, which is never exceeded); longer is 413 unless truncate", parse: integer(0) },
  { key: 'maxImageBytes', env: 'MAX_IMAGE_BYTES', flag: 'max-image-bytes', default: '16MiB', help: 'bytes of one encoded image (413 beyond)', parse: parseBytes },
  { key: 'maxImagePixels', env: 'MAX_IMAGE_PIXELS', flag: 'max-image-pixels', default: String(DEFAULT_LIMITS.maxImagePixels), help: 'width x height of one image, checked before decoding (413 beyond)', parse: integer(1) },
  { key: 'maxNewTokens', env: 'MAX_NEW_TOKENS', flag: 'max-new-tokens', default: String(DEFAULT_LIMITS.maxNewTokens), help: 'max_new_tokens one generation request may ask for (400 beyond)', parse: integer(1, 1_000_000) },
  { key: 'maxAtomsPerBatch', env: 'MAX_ATOMS_PER_BATCH', flag: 'max-atoms-per-batch', default: String(DEFAULT_LIMITS.maxAtomsPerBatch), help: 'atoms in one POST /atoms/batch (413 beyond)', parse: integer(1, 10_000_000) },
  { key: 'maxK', env: 'MAX_K', flag: 'max-k', default: String(DEFAULT_LIMITS.maxK), help: 'neighbours one /atoms/similar query may ask for (400 beyond)', parse: integer(1, 10_000_000) },
  { key: 'maxEventLoopDelayMs', env: 'MAX_EVENT_LOOP_DELAY_MS', flag: 'max-event-loop-delay-ms', default: '1000', help: 'mean event-loop delay which, in two 500 ms samples in a row, makes requests get 503 + Retry-After (health and metrics still answer; 0: off)', parse: integer(0, 600_000) },
  { key: 'maxRssBytes', env: 'MAX_RSS', flag: 'max-rss', default: '0', help: 'resident memory past which requests get 503 + Retry-After (0: off)', parse: parseBytes },
  { key: 'maxHeapUsedBytes', env: 'MAX_HEAP_USED', flag: 'max-heap-used', default: '0', help: 'V8 heap in use past which requests get 503 + Retry-After (0: off)', parse: parseBytes },
  { key: 'memoryTrimIntervalMs', env: 'MEMORY_TRIM_INTERVAL_MS', flag: 'memory-trim-interval-ms', default: '10000', help: "how often freed native memory is handed back to the OS (glibc malloc_trim, on a pool thread; 0: never). Keeps RSS flat under glibc; jemalloc does not need it", parse: integer(0, 3_600_000) },
  {
    key: 'corsOrigins',
    env: 'CORS_ORIGINS',
    flag: 'cors-origins',
    default: '',
    help: 'origins allowed to call the API from a browser: a comma-separated list or * (empty: CORS off)',
    parse: (v) => (v.trim() === '' ? undefined : v.split(',').map((s) => s.trim()).filter(Boolean)),
  },
  { key: 'warmup', env: 'WARMUP', flag: 'warmup', default: 'true', help: 'run warm-up forwards before a model is ready', parse: boolean },
  {
    key: 'batchThreads',
    env: 'BATCH_THREADS',
    flag: 'batch-threads',
    default: 'auto',
    help: 'intra-op threads per batch: auto (a batch calibration measured faster on one thread runs on one; CPU, needs WARMUP) or all',
    parse: oneOf('auto', 'all'),
  },
  { key: 'logLevel', env: 'LOG_LEVEL', flag: 'log-level', default: 'info', help: 'pino level: fatal, error, warn, info, debug, trace, silent', parse: (v, name) => {
    if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(v)) throw new ConfigError(`${name} must be a pino level, got '${v}'`);
    return v;
  } },
];

export function describeSettings(): { env: string; flag: string; default: string; help: string }[] {
  return SETTINGS.map((s) => ({ env: s.env, flag: `--${s.flag}`, default: s.default, help: s.help }));
}

/** Read settings from the environment and argv. Throws ConfigError naming the bad one. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, argv: string[] = process.argv.slice(2)): ServerConfig {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: argv,
      options: Object.fromEntries(SETTINGS.map((s) => [s.flag, { type: 'string' as const }])),
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    throw new ConfigError(`${(error as Error).message} (settings: ${SETTINGS.map((s) => `--${s.flag}`).join(', ')})`);
  }
  const config: Record<string, unknown> = {};
  for (const s of SETTINGS) {
    const fromFlag = values[s.flag];
    const raw = typeof fromFlag === 'string' ? fromFlag : env[s.env] ?? s.default;
    config[s.key] = s.parse(raw, typeof fromFlag === 'string' ? `--${s.flag}` : s.env);
  }
  if (config.atomspaceStore === 'postgres') {
    if (!config.databaseUrl) throw new ConfigError('ATOMSPACE_STORE=postgres needs DATABASE_URL (postgres://user:password@host:5432/db)');
    let url: URL | undefined;
    try {
      url = new URL(config.databaseUrl as string);
    } catch {
      url = undefined;
    }
    if (!url || !/^postgres(ql)?:$/.test(url.protocol)) throw new ConfigError('DATABASE_URL must be a postgres:// or postgresql:// URL');
  }
  return config as unknown as ServerConfig;
}
