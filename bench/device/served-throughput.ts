/**
 * Served throughput: batch-sized raw-tensor requests to a running server's /infer, a few in
 * flight at a time, for a fixed time. Prints JSON (sequences per second).
 *
 * Usage: node dist/bench/device/served-throughput.js BASE_URL MODEL BATCH SEQ SECONDS [CONCURRENCY=4]
 */
const [base, model, batchArg, seqArg, secondsArg, concurrencyArg] = process.argv.slice(2);
const batch = Number(batchArg);
const seq = Number(seqArg);
const seconds = Number(secondsArg);
const concurrency = Number(concurrencyArg ?? 4);
const ids = Array.from({ length: batch * seq }, (_, i) => 1000 + ((i * 7919) % 29000));
const body = JSON.stringify({
  model,
  inputs: [
    { name: 'input_ids', shape: [batch, seq], datatype: 'INT64', data: ids },
    { name: 'attention_mask', shape: [batch, seq], datatype: 'INT64', data: new Array(batch * seq).fill(1) },
  ],
});
const post = async () => {
  const res = await fetch(`${base}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  if (res.status !== 200) throw new Error(`status ${res.status}: ${(await res.text()).slice(0, 200)}`);
  await res.arrayBuffer();
};
for (let i = 0; i < 3; i++) await post();
let done = 0;
const start = performance.now();
const until = start + seconds * 1000;
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (performance.now() < until) {
      await post();
      done++;
    }
  }),
);
const elapsed = (performance.now() - start) / 1000;
console.log(JSON.stringify({ model, batch, seq, concurrency, requests: done, sequences_per_s: (done * batch) / elapsed }));
