/**
 * In-process figures through the Node binding (`TorchScriptModule.forward`, awaited one call at
 * a time), the yardsticks for the HTTP service:
 *   - tiny: p50 of one forward of `x + 1` on float32 [1, 4], the same call POST /infer makes;
 *   - minilm: sequences/s at batch 1, 2, 4, 8, 16, 32 (sequence 32), as python_inprocess.py.
 *
 * Usage: node dist/bench/serving/node-inprocess.js MODELS_DIR THREADS SECONDS_PER_BATCH
 * Prints one JSON line.
 */
import { TorchScriptModule, configureRuntime, tensor } from '../../src/runtime/index.js';

const BATCHES = [1, 2, 4, 8, 16, 32];
const SEQ = 32;

/** The same ids as python_inprocess.py and the HTTP request bodies. */
const tokenIds = (batch: number) => tensor('int64', [batch, SEQ], Array.from({ length: batch * SEQ }, (_, i) => 1000 + ((i * 7919) % 29000)));

function median(samples: number[]): number {
  const s = [...samples].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** Call `fn` one at a time for `seconds` (at least `minCalls` times). */
async function measure(fn: () => Promise<unknown>, seconds: number, minCalls = 5) {
  const samples: number[] = [];
  const start = performance.now();
  while (samples.length < minCalls || performance.now() - start < seconds * 1000) {
    const t0 = performance.now();
    await fn();
    samples.push(performance.now() - t0);
  }
  return { calls: samples.length, seconds: (performance.now() - start) / 1000, median_ms: median(samples) };
}

const [models, threadsArg, secondsArg] = process.argv.slice(2);
const seconds = Number(secondsArg ?? 3);
const info = configureRuntime({ workers: 1, intraOpThreads: Number(threadsArg ?? 2) });
const results: Record<string, unknown> = { runtime: 'node', libtorch: info.libtorch, threads: info.intraOpThreads, seq: SEQ };

const tiny = await TorchScriptModule.load(`${models}/tiny/model.pt`);
const x = tensor('float32', [1, 4], [0, 0, 0, 0]);
for (let i = 0; i < 2000; i++) await tiny.forward([x]);
const tinyRun = await measure(() => tiny.forward([x]), 2, 20000);
results.tiny = { ...tinyRun, p50_us: tinyRun.median_ms * 1000 };
console.error(`node tiny forward p50: ${(tinyRun.median_ms * 1000).toFixed(1)} us`);

const minilm = await TorchScriptModule.load(`${models}/minilm/model.pt`);
const batches: Record<string, unknown> = {};
for (const batch of BATCHES) {
  const inputs = [tokenIds(batch), tensor('int64', [batch, SEQ], new Array(batch * SEQ).fill(1))];
  const call = () => minilm.forward(inputs);
  await measure(call, Math.min(1, seconds / 3), 3); // the profiling executor specialises on the first calls
  const m = await measure(call, seconds);
  batches[batch] = { ...m, sequences_per_s: (batch * m.calls) / m.seconds };
  console.error(`node batch ${batch}: ${((batch * m.calls) / m.seconds).toFixed(1)} seq/s`);
}
results.batches = batches;
console.log(JSON.stringify(results));
