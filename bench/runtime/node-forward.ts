/**
 * Time forward through the Node binding, the same way python_forward.py times torch.jit:
 * one call at a time (await each), same models, same shapes, same thread count.
 *
 * Usage: node dist/bench/runtime/node-forward.js MODELS_DIR ITERATIONS [THREADS]
 */
import { TorchScriptModule, configureRuntime, tensor, zeros } from '../../src/runtime/index.js';

async function timed(fn: () => Promise<unknown>, iterations: number, warmup: number) {
  for (let i = 0; i < warmup; i++) await fn();
  const samples: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const start = performance.now();
    await fn();
    samples.push(performance.now() - start);
  }
  samples.sort((a, b) => a - b);
  const median = samples.length % 2 ? samples[samples.length >> 1]! : (samples[samples.length / 2 - 1]! + samples[samples.length / 2]!) / 2;
  return { median_ms: median, mean_ms: samples.reduce((a, b) => a + b, 0) / samples.length, n: iterations };
}

const [models, iterationsArg, threadsArg] = process.argv.slice(2);
const iterations = Number(iterationsArg ?? 200);
const info = configureRuntime({ workers: 1, ...(threadsArg ? { intraOpThreads: Number(threadsArg) } : {}) });
const minilm = await TorchScriptModule.load(`${models}/minilm.pt`);
const tiny = await TorchScriptModule.load(`${models}/tiny.pt`);
const results: Record<string, unknown> = { threads: info.intraOpThreads, libtorch: info.libtorch };
for (const batch of [1, 8]) {
  const ids = tensor('int64', [batch, 32], Array.from({ length: batch * 32 }, (_, i) => 1000 + ((i * 7919) % 29000)));
  const mask = tensor('int64', [batch, 32], new Array(batch * 32).fill(1));
  results[`minilm_b${batch}`] = await timed(() => minilm.forward([ids, mask]), iterations, Math.max(10, iterations / 10));
}
const x = zeros('float32', [4]);
results.tiny = await timed(() => tiny.forward([x]), iterations * 50, 1000);
console.log(JSON.stringify(results));
