/** Builds the Fastify app: plugins, error mapping, auth, load shedding, routes. Listening is main.ts's job. */
import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import multipart from '@fastify/multipart';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import underPressure from '@fastify/under-pressure';
import type { IncomingMessage } from 'node:http';

import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';

import { readFile } from 'node:fs/promises';

import { AtomSpace } from '../atomspace/atomspace.js';
import { PostgresStore } from '../atomspace/postgres-store.js';
import { SimilaritySearch } from '../atomspace/similarity.js';
import type { TypeDefinition } from '../atomspace/types.js';
import { ModelRegistry } from '../models/registry.js';
import { ModelRepository } from '../models/repository.js';
import { ResponseCache } from '../models/response-cache.js';
import { TaskRuntime } from '../models/tasks/task-runtime.js';
import { registerAuth } from './auth.js';
import type { ServerConfig } from './config.js';
import type { ServerContext } from './context.js';
import { clientErrorHandler } from './client-errors.js';
import { registerEarlyAnswers } from './early-answer.js';
import { EventLoopLag } from './event-loop-lag.js';
import { errorHandler, namingLimits } from './http-errors.js';
import { ServerMetrics } from './metrics.js';
import { healthRoutes } from './routes/health.js';
import { inferRoutes } from './routes/infer.js';
import { atomRoutes } from './routes/atoms.js';
import { compatRoutes } from './routes/compat.js';
import { openAiRoutes } from './routes/openai.js';
import { tgiRoutes } from './routes/tgi.js';
import { ConfigError } from './config.js';
import { trimMemoryEvery } from '../runtime/index.js';
import { deviceMemory } from './device-memory.js';
import { modelRoutes } from './routes/models.js';
import { taskInferRoutes } from './routes/task-infer.js';
import { Tracing, TaskStageSpans } from './tracing.js';
import { registerHttpTracing } from './tracing-http.js';

export const API_VERSION = '0.1.0';

export interface App {
  app: FastifyInstance;
  context: ServerContext;
  /** Load the start-up models (LOAD_MODELS); readiness turns true when done. */
  loadStartupModels(): Promise<void>;
  /** Closing the app first awaits `close` (another front end, e.g. gRPC, finishing its requests), then unloads the models. */
  closeFirst(close: () => Promise<void>): void;
  /**
   * Begin a graceful stop's hand-over: every answer from now on says `Connection: close`, and idle
   * keep-alive connections are closed as they become idle, so that clients and balancers (which
   * keep connections open) take their next requests elsewhere instead of meeting the closing
   * server's 503. Returns a function that stops the idle sweep.
   */
  startDraining(): () => void;
}

/** Request ids: the caller's X-Request-Id when sent, else a short counter. */
function requestIds(): (req: IncomingMessage) => string {
  let n = 0;
  return (req) => {
    const given = req.headers['x-request-id'];
    return typeof given === 'string' && given.length <= 128 ? given : `req-${(++n).toString(36)}`;
  };
}

export async function buildApp(config: ServerConfig, options: { logger?: boolean | object } = {}): Promise<App> {
  const app = Fastify({
    // Credentials never reach the logs, whatever the level (request headers are logged only by custom serializers, but be sure).
    logger: options.logger ?? { level: config.logLevel, redact: { paths: ['req.headers.authorization', 'req.headers.cookie', 'req.headers["x-api-key"]'], censor: '[redacted]' } },
    bodyLimit: config.bodyLimit,
    genReqId: requestIds(),
    requestIdHeader: false,
    forceCloseConnections: 'idle',
    // Path and query strings are coerced to the declared types; bodies keep unknown fields so they can be named in errors.
    ajv: { customOptions: { coerceTypes: 'array', removeAdditional: false, allErrors: false } },
    clientErrorHandler,
    // Errors the router raises before any route runs (a malformed URL, a parameter too long) get the same {error, code} body.
    frameworkErrors: (error, _request, raw) => {
      const reply = raw as unknown as FastifyReply;
      const status = typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 400;
      void reply.status(status).send({ error: error.message, code: error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'URL_TOO_LONG' : 'BAD_URL' });
    },
  });

  const metrics = new ServerMetrics();
  const registry = new ModelRegistry(new ModelRepository(config.modelRepository), {
    device: config.device,
    memoryLimitBytes: config.modelMemoryLimit,
    serving: {
      ...(config.maxBatchSize ? { maxBatchSize: config.maxBatchSize } : {}),
      maxQueueDelayMs: config.maxQueueDelayMs,
      instances: config.instances,
      maxQueueSize: config.maxQueueSize,
      maxBatchTokens: config.maxBatchTokens,
      maxConcurrentSequences: config.maxConcurrentSequences,
      maxBatchTotalTokens: config.maxBatchTotalTokens,
    },
    warmup: config.warmup,
    chooseThreads: config.batchThreads === 'auto',
    lazyLoad: config.lazyLoad,
    observer: metrics,
  });
  await registry.refresh();
  metrics.taskOf = (model) => registry.get(model)?.manifest?.task ?? 'unknown';
  const responseCache = new ResponseCache(config.responseCacheSize, metrics.responseCache);
  metrics.watch(registry.lifecycle);
  // A model's cached answers go with it, and a reload (perhaps of new weights) starts afresh.
  registry.lifecycle.on('unloaded', (model) => responseCache.dropModel(model));
  registry.lifecycle.on('ready', (model) => responseCache.dropModel(model));
  registry.lifecycle.on('ready', (model, seconds, version) => {
    const engine = registry.get(model, version)?.engine;
    app.log.info({ model, version, seconds, singleThreadUpToMs: engine?.threads.singleThreadUpToMs }, 'model ready');
  });
  // Tracing is on only with an OTLP endpoint; off, nothing on the request path looks for a trace.
  const tracing = Tracing.start(config, API_VERSION);
  const tasks = new TaskRuntime(registry, tracing ? new TaskStageSpans(metrics) : metrics, config);

  const { atomspace, recovered } = await openAtomSpace(config, metrics, app.log);
  metrics.atomCounts = () => atomspace.countsByType();
  metrics.deviceMemoryOf = deviceMemory;
  const similarity = new SimilaritySearch(atomspace, {
    approximateFrom: config.approximateFrom,
    observer: metrics.similarity,
    hnsw: { connectivity: config.hnswConnectivity, expansionAdd: config.hnswExpansionAdd, expansionSearch: config.hnswExpansionSearch },
  });

  let startupDone = config.loadModels === 'none';
  const context: ServerContext = { config, registry, metrics, tasks, responseCache, atomspace, similarity, tracing, startupDone: () => startupDone, overloaded: () => undefined };
  app.log.info({ store: atomspace.store, ...(config.atomspaceStore === 'journal' ? { dataDir: config.dataDir } : {}), atoms: recovered.atoms, truncatedBytes: recovered.truncatedBytes }, 'atomspace recovered');
  if (recovered.storageError) app.log.warn({ dataDir: config.dataDir, err: recovered.storageError }, 'the AtomSpace data directory cannot be written: atom writes answer 503 until it can');

  app.setErrorHandler((error, request, reply) => errorHandler(namingLimits(error, config), request, reply));
  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send({ error: `no route ${request.method} ${request.url.split('?')[0]}`, code: 'NOT_FOUND' });
  });
  let draining = false;
  app.addHook('onSend', async (request, reply) => {
    void reply.header('x-request-id', request.id);
    if (draining) void reply.header('connection', 'close');
  });
  if (tracing) registerHttpTracing(app, tracing);
  registerAuth(app, config.apiKey, config.authReads);
  registerEarlyAnswers(app, { drainBytes: config.drainLimit, drainMs: 30_000 });
  context.overloaded = await registerLoadShedding(app, config);
  if (config.corsOrigins) {
    // Off unless CORS_ORIGINS is set: browsers on other origins may not call the API.
    await app.register(cors, { origin: config.corsOrigins.includes('*') ? '*' : config.corsOrigins, exposedHeaders: ['x-request-id', 'retry-after'] });
  }

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'ATenSpace Serve',
        description: 'Serve HuggingFace models exported to TorchScript, through a native LibTorch binding. KServe v2 compatible.',
        version: API_VERSION,
      },
      tags: [
        { name: 'inference', description: 'Run models' },
        { name: 'models', description: 'Model repository and cache' },
        { name: 'kserve-v2', description: 'KServe v2 / Open Inference Protocol' },
        { name: 'embeddings', description: 'TEI- and OpenAI-compatible embeddings' },
        { name: 'openai', description: 'OpenAI-compatible completions, chat completions and models' },
        { name: 'tgi', description: 'text-generation-inference and text-embeddings-inference routes: POST /, /generate, /generate_stream, /info' },
        { name: 'atomspace', description: 'The AtomSpace: atoms, links, embeddings, similarity' },
        { name: 'health', description: 'Health and metrics' },
      ],
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'API_KEY, when the server sets one' } } },
    },
  });
  // The docs pages get helmet's security headers (CSP, frame and sniffing guards); the API's JSON does not need them.
  await app.register(async (docs) => {
    await docs.register(helmet, {
      global: true,
      // No upgrade-insecure-requests: the server often runs on plain http (TLS is the proxy's job),
      // and upgraded fetches of /docs/json would fail there.
      contentSecurityPolicy: { directives: { 'img-src': ["'self'", 'data:'], 'style-src': ["'self'", "'unsafe-inline'"], 'script-src': ["'self'"], 'upgrade-insecure-requests': null } },
    });
    await docs.register(swaggerUi, { routePrefix: '/docs', uiConfig: { tryItOutEnabled: true, validatorUrl: null } });
  });
  await app.register(multipart, { limits: { fileSize: config.maxImageBytes, files: 1, fields: 16, fieldSize: config.bodyLimit } });

  await app.register(async (scope) => healthRoutes(scope, context));
  await app.register(async (scope) => modelRoutes(scope, context));
  await app.register(async (scope) => inferRoutes(scope, context));
  await app.register(async (scope) => taskInferRoutes(scope, context));
  await app.register(async (scope) => compatRoutes(scope, context));
  await app.register(async (scope) => openAiRoutes(scope, context));
  await app.register(async (scope) => tgiRoutes(scope, context, API_VERSION));
  await app.register(async (scope) => atomRoutes(scope, context));

  const stopTrimming = config.memoryTrimIntervalMs > 0 ? trimMemoryEvery(config.memoryTrimIntervalMs) : () => undefined;
  const closingFirst: (() => Promise<void>)[] = [];
  app.addHook('onClose', async () => {
    stopTrimming();
    await Promise.all(closingFirst.map((close) => close()));
    await registry.close();
    await atomspace.close();
    await tracing?.shutdown();
  });

  const loadStartupModels = async () => {
    const names = config.loadModels === 'all' ? registry.list().map((e) => e.name) : config.loadModels === 'none' ? [] : config.loadModels;
    for (const name of names) {
      if (!registry.get(name)) app.log.warn({ model: name }, `LOAD_MODELS names '${name}', which is not in ${registry.repository.root}`);
    }
    await Promise.all(
      names
        .filter((name) => registry.get(name))
        .map(async (name) => {
          try {
            await registry.load(name);
            app.log.info({ model: name, device: registry.get(name)?.engine?.device }, 'model ready');
          } catch (error) {
            app.log.error({ model: name, err: (error as Error).message }, 'model failed to load');
          }
        }),
    );
    startupDone = true;
  };

  const startDraining = () => {
    draining = true;
    app.server.closeIdleConnections();
    const sweep = setInterval(() => app.server.closeIdleConnections(), 100);
    sweep.unref();
    return () => clearInterval(sweep);
  };
  return { app, context, loadStartupModels, closeFirst: (close) => void closingFirst.push(close), startDraining };
}

/**
 * Process-wide pressure (event-loop delay, RSS, heap past their settings) answers 503 with
 * Retry-After before any work is done; health probes and /metrics are always answered.
 * Returns the same judgement for the other front ends (gRPC): why the process is overloaded.
 */
async function registerLoadShedding(app: FastifyInstance, config: ServerConfig): Promise<() => string | undefined> {
  const retryAfter = 2;
  const settings = {
    eventLoopDelay: `MAX_EVENT_LOOP_DELAY_MS (${config.maxEventLoopDelayMs} ms)`,
    rssBytes: `MAX_RSS (${config.maxRssBytes} bytes)`,
    heapUsedBytes: `MAX_HEAP_USED (${config.maxHeapUsedBytes} bytes)`,
  };
  // Event-loop delay is judged by event-loop-lag.ts (sustained lag, not one stall). Memory is
  // sampled by under-pressure, given no limits of its own so that it only measures.
  const lag = config.maxEventLoopDelayMs > 0 ? new EventLoopLag({ limitMs: config.maxEventLoopDelayMs }).start() : undefined;
  if (lag) app.addHook('onClose', async () => lag.stop());
  await app.register(underPressure, { sampleInterval: 500 });
  const overloaded = (): string | undefined => {
    const over = (what: string) => `the server is overloaded: ${what}; retry after ${retryAfter} s`;
    const delay = lag?.overloaded();
    if (delay !== undefined) return over(`eventLoopDelay is ${Math.round(delay)} ms, more than ${settings.eventLoopDelay} for ${lag!.sustained} samples in a row`);
    const { rssBytes, heapUsed } = app.memoryUsage();
    if (config.maxHeapUsedBytes > 0 && heapUsed > config.maxHeapUsedBytes) return over(`heapUsedBytes is ${heapUsed} bytes, more than ${settings.heapUsedBytes}`);
    if (config.maxRssBytes > 0 && rssBytes > config.maxRssBytes) return over(`rssBytes is ${rssBytes} bytes, more than ${settings.rssBytes}`);
    return undefined;
  };
  app.addHook('onRequest', async (request, reply) => {
    const route = request.routeOptions.config as { public?: boolean; alwaysServe?: boolean };
    if (route.public || route.alwaysServe) return; // served anyway
    const why = overloaded();
    if (why) return reply.status(503).header('retry-after', String(retryAfter)).send({ error: why, code: 'OVERLOADED' });
  });
  return overloaded;
}

/** The AtomSpace in the store ATOMSPACE_STORE names: the journal in DATA_DIR, or PostgreSQL at DATABASE_URL. */
async function openAtomSpace(config: ServerConfig, metrics: ServerMetrics, log: FastifyInstance['log']): Promise<{ atomspace: AtomSpace; recovered: { atoms: number; truncatedBytes: number; storageError?: string } }> {
  const types = await readAtomTypes(config.atomTypes);
  if (config.atomspaceStore === 'journal') return AtomSpace.open({ dataDir: config.dataDir, types, snapshotBytes: config.snapshotBytes, journalObserver: metrics.journal });
  const store = new PostgresStore({ connectionString: config.databaseUrl!, poolSize: config.pgPoolSize, log: { info: (f, m) => log.info(f, m), warn: (f, m) => log.warn(f, m) } });
  try {
    const opened = await AtomSpace.openShared({ types, store });
    if (opened.recovered.migrated.length) log.info({ store: store.description, versions: opened.recovered.migrated }, 'atomspace schema migrated');
    return opened;
  } catch (error) {
    await store.close().catch(() => undefined);
    const code = (error as { code?: string }).code;
    if (code === 'BAD_ATOM_TYPE') throw error;
    throw new ConfigError(`the AtomSpace cannot be loaded from PostgreSQL at ${store.description}: ${(error as Error).message}`);
  }
}

/** Extra atom types from the ATOM_TYPES file, if any. */
async function readAtomTypes(path: string | undefined): Promise<TypeDefinition[]> {
  if (!path) return [];
  try {
    const value = JSON.parse(await readFile(path, 'utf8')) as unknown;
    if (!Array.isArray(value)) throw new Error('expected an array of {name, parent, unordered?}');
    return value as TypeDefinition[];
  } catch (error) {
    throw new ConfigError(`ATOM_TYPES ${path}: ${(error as Error).message}`);
  }
}
