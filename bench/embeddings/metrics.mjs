// The server's counters that explain a load run, as JSON: batches and rows, and the summed
// seconds of each stage for the model. Run before and after a load point; report.py diffs them.
// Usage: node bench/embeddings/metrics.mjs BASE_URL MODEL
const [base, model] = process.argv.slice(2);
const text = await (await fetch(`${base}/metrics`)).text();
const value = (name, labels = {}) => {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (want.every((w) => line.includes(w))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
};
const out = { at: Date.now() / 1000, batches: value('atenspace_batch_size_count', { model }), rows: value('atenspace_batch_size_sum', { model }) };
for (const stage of ['queue', 'compute', 'preprocess', 'postprocess', 'total']) {
  out[`${stage}_s`] = value('atenspace_request_duration_seconds_sum', { model, stage });
  out[`${stage}_n`] = value('atenspace_request_duration_seconds_count', { model, stage });
}
console.log(JSON.stringify(out));
