/** A model entry as the API shows it. */
import type { ModelEntry, ModelRegistry } from '../models/registry.js';
import { datatypeOf } from './kserve-tensors.js';

export function describeModel(entry: ModelEntry, registry: ModelRegistry, device: string) {
  const m = entry.manifest;
  const serving = m ? registry.servingOptions(entry.name, m) : undefined;
  return {
    name: entry.name,
    task: m?.task ?? null,
    state: entry.state,
    ...(entry.error ? { error: entry.error } : {}),
    version: entry.version,
    version_policy: registry.policyOf(entry.name) ?? 'latest 1',
    versions: registry.versionsOf(entry.name).map(({ entry: v, served }) => ({ version: v.version, state: v.state, served, ...(v.error ? { error: v.error } : {}) })),
    device: entry.engine?.device ?? device,
    weights: m?.weights ?? null,
    dtype: m?.dtype ?? null,
    quantization: m?.quantization ?? null,
    inputs: (m?.inputs ?? []).map((s) => ({ name: s.name, datatype: datatypeOf(s.dtype), shape: s.shape })),
    outputs: (m?.outputs ?? []).map((s) => ({ name: s.name, datatype: datatypeOf(s.dtype), shape: s.shape })),
    max_batch_size: m?.max_batch_size ?? null,
    serving: serving
      ? { max_batch_size: serving.maxBatchSize, max_queue_delay_ms: serving.maxQueueDelayMs, instances: serving.instances, max_queue_size: serving.maxQueueSize }
      : null,
    stats: {
      requests: entry.stats.requests,
      failures: entry.stats.failures,
      inferences: entry.stats.inferences,
      executions: entry.stats.executions,
      queue_depth: entry.engine?.queued ?? 0,
      last_used: entry.stats.lastUsed,
      load_seconds: entry.stats.loadSeconds,
    },
  };
}
