/**
 * Just enough of the Prometheus text format to diff the server's /metrics around a load
 * point: per-stage request duration (atenspace_request_duration_seconds) and batch sizes.
 */

/** `name{labels} value` lines -> [{ name, labels, value }] (comments skipped). */
export function parseProm(text) {
  const samples = [];
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const labels = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

/** Sum of the samples named `name` whose labels include `labels` (others, e.g. task, may vary). */
export function total(samples, name, labels = {}) {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((n, s) => n + s.value, 0);
}

export async function scrape(url) {
  const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
  if (!response.ok) throw new Error(`GET ${url}: ${response.status}`);
  return parseProm(await response.text());
}

/**
 * What the server saw for `model` between two scrapes: mean ms per stage (preprocess, queue, compute, postprocess,
 * total), executions, rows, and how many executions had each batch size (upper bucket bound).
 */
export function serverSide(before, after, model) {
  const delta = (name, labels) => total(after, name, labels) - total(before, name, labels);
  const stages = {};
  for (const stage of ['preprocess', 'queue', 'compute', 'postprocess', 'total']) {
    const count = delta('atenspace_request_duration_seconds_count', { model, stage });
    if (count > 0) stages[stage] = { count, mean_ms: (delta('atenspace_request_duration_seconds_sum', { model, stage }) / count) * 1000 };
  }
  const executions = delta('atenspace_execution_count_total', { model });
  const rows = delta('atenspace_inference_count_total', { model });
  const batchSizes = {};
  let below = 0;
  for (const bound of [1, 2, 4, 8, 16, 32, 64, 128, 256]) {
    const cumulative = delta('atenspace_batch_size_bucket', { le: String(bound), model });
    if (cumulative - below > 0) batchSizes[`<=${bound}`] = cumulative - below;
    below = cumulative;
  }
  return { stages, executions, rows, mean_batch: executions ? rows / executions : 0, batch_sizes: batchSizes };
}
