/**
 * GET /info: a text-generation model as text-generation-inference describes the model it serves,
 * an embedding model as text-embeddings-inference does, from the manifest and the settings the
 * model's engine runs with.
 */
import { sectionOf } from '../models/manifest.js';
import type { ServerContext } from './context.js';
import { HttpError } from './http-errors.js';
import type { TgiInfo } from './tgi-schemas.js';

/** Tokenization runs on libuv's thread pool (see text-tokenizer.ts). */
const tokenizationWorkers = () => Number(process.env.UV_THREADPOOL_SIZE) || 4;

export async function describeForTgi(ctx: ServerContext, model: string, version: string): Promise<TgiInfo> {
  const entry = await ctx.registry.find(model);
  const manifest = entry.manifest;
  if (entry.state === 'failed' || !manifest) throw Object.assign(new Error(`model '${model}' failed to load: ${entry.error}`), { code: 'MODEL_NOT_READY' });
  const serving = ctx.registry.servingOptions(entry.name, manifest);
  const source = manifest.source as { revision?: unknown } | undefined;
  const common = {
    model_id: entry.name,
    model_sha: typeof source?.revision === 'string' ? source.revision : null,
    model_dtype: manifest.dtype,
    model_device_type: entry.engine?.device ?? ctx.config.device,
    version,
    router: 'atenspace-serve',
    sha: null,
    docker_label: null,
  };
  const maxInput = manifest.tokenizer ? ctx.tasks.tokenizer(entry).maxLength : (manifest.max_sequence_length ?? 512);

  if (manifest.task === 'text-generation') {
    const { context_length } = sectionOf(manifest, 'generation');
    const maxInputTokens = Math.min(context_length - 1, maxInput);
    return {
      ...common,
      model_pipeline_tag: 'text-generation',
      // Waiting (MAX_QUEUE_SIZE) and decoding (MAX_CONCURRENT_SEQUENCES) before 429.
      max_concurrent_requests: serving.maxQueueSize + serving.maxConcurrentSequences,
      max_best_of: 1,
      max_stop_sequences: 8,
      max_input_tokens: maxInputTokens,
      max_input_length: maxInputTokens,
      max_total_tokens: context_length,
      max_batch_total_tokens: serving.maxBatchTotalTokens,
      max_batch_size: serving.maxConcurrentSequences,
      max_client_batch_size: 1,
    };
  }
  if (manifest.task === 'embedding') {
    return {
      ...common,
      model_pipeline_tag: 'feature-extraction',
      model_type: { embedding: { pooling: sectionOf(manifest, 'embedding').pooling } },
      max_concurrent_requests: serving.maxQueueSize,
      max_input_length: maxInput,
      max_batch_tokens: Number.isFinite(serving.maxBatchTokens) ? serving.maxBatchTokens : ctx.config.maxBatchTokens,
      max_batch_requests: serving.maxBatchSize,
      max_client_batch_size: ctx.config.maxTextsPerRequest,
      auto_truncate: false,
      tokenization_workers: tokenizationWorkers(),
    };
  }
  throw new HttpError(400, 'BAD_INPUT', `model '${model}' is a ${manifest.task} model; /info describes text-generation and embedding models`);
}
