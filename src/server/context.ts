/** What the routes share: the settings, the model registry and the metrics. */
import type { AtomSpace } from '../atomspace/atomspace.js';
import type { SimilaritySearch } from '../atomspace/similarity.js';
import type { ModelRegistry } from '../models/registry.js';
import type { ResponseCache } from '../models/response-cache.js';
import type { TaskRuntime } from '../models/tasks/task-runtime.js';
import type { ServerConfig } from './config.js';
import type { ServerMetrics } from './metrics.js';
import type { Tracing } from './tracing.js';

export interface ServerContext {
  config: ServerConfig;
  registry: ModelRegistry;
  metrics: ServerMetrics;
  tasks: TaskRuntime;
  responseCache: ResponseCache;
  atomspace: AtomSpace;
  similarity: SimilaritySearch;
  /** OpenTelemetry tracing, when an OTLP endpoint is set. */
  tracing: Tracing | undefined;
  /** True once the start-up models have loaded (or failed) and warmed up. */
  startupDone: () => boolean;
  /** Why the process is overloaded (sustained event-loop lag, memory past its limit), or undefined: front ends other than HTTP shed on it too. */
  overloaded: () => string | undefined;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Needs the API key when one is set; defaults to true for methods other than GET/HEAD/OPTIONS. Inference routes set false. */
    write?: boolean;
    /** Always open, even when reads need the key (health probes). */
    public?: boolean;
    /** Answered even when the process is overloaded (metrics); public routes are too. */
    alwaysServe?: boolean;
  }
}
