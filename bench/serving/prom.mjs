/**
 * Just enough of the Prometheus text format to diff the server's /metrics around a load
 * point: per-stage request duration (atenspace_request_duration_seconds) and batch sizes.
 */

/** `name{labels} value` lines -> Map of key(name, labels) -> number (comments skipped). */
export function parseProm(text) {
  const samples = new Map();
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const labels = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    samples.set(key(match[1], labels), Number(match[3]));
  }
  return samples;
}

/** A sample's name and labels as one string, labels sorted so their order never matters. */
export function key(name, labels = {}) {
  return `${name}{${Object.keys(labels).sort().map((k) => `${k}="${labels[k]}"`).join(',')}}`;
}

export async function scrape(url) {
  const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
  if (!response.ok) throw new Error(`GET ${url}: ${response.status}`);
  return parseProm(await response.text());
}

/**
 * What the server saw for `model` between two scrapes: mean ms per stage (queue, compute,
 * total), executions, rows, and how many executions had each batch size (upper bucket bound).
 */
export function serverSide(before, after, model) {
  const delta = (name, labels) => (after.get(key(name, labels)) ?? 0) - (before.get(key(name, labels)) ?? 0);
  const stages = {};
  for (const stage of ['queue', 'compute', 'total']) {
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
