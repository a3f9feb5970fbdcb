/**
 * Forward time of the same model as TorchScript and as .pt2, through our binding (ModelHandle),
 * at the shapes: batch x sequence 1x16, 8x32, 32x32, 8x128. Alternates the formats
 * round by round so drift on a shared machine hits both alike; reports medians, the ratio
 * TorchScript / .pt2 per shape and its geometric mean. Prints JSON.
 *
 * Usage: node dist/bench/pt2/forward.js MODELS_DIR [ROUNDS=30] [NAMES=minilm,minilm-pt2,...]
 * `load` mode: node dist/bench/pt2/forward.js load FILE  -> load time and RSS growth (one model per process)
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { ModelHandle, type Tensor, configureRuntime, tensor } from '../../src/runtime/index.js';

const SHAPES: [number, number][] = [
  [1, 16],
  [8, 32],
  [32, 32],
  [8, 128],
];

let vocab = 100;

function inputs(batch: number, seq: number): Tensor[] {
  const n = batch * seq;
  const ids = Array.from({ length: n }, (_, i) => 5 + ((i * 7919) % (vocab - 5)));
  return [tensor('int64', [batch, seq], ids), tensor('int64', [batch, seq], new Array(n).fill(1)), tensor('int64', [batch, seq], new Array(n).fill(0))];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const rssMiB = () => process.memoryUsage().rss / 2 ** 20;

if (process.argv[2] === 'load') {
  const file = process.argv[3]!;
  vocab = JSON.parse(readFileSync(join(dirname(file), 'config.json'), 'utf8')).vocab_size;
  configureRuntime({});
  const before = rssMiB();
  const t0 = performance.now();
  const model = await ModelHandle.load(file);
  const loadMs = performance.now() - t0;
  const loaded = rssMiB();
  await model.forward(inputs(1, 16));
  const t1 = performance.now();
  await model.forward(inputs(1, 16));
  const firstMs = performance.now() - t1;
  console.log(JSON.stringify({ file, format: model.format, load_ms: Math.round(loadMs), rss_loaded_mib: +(loaded - before).toFixed(1), rss_after_forward_mib: +(rssMiB() - before).toFixed(1), second_forward_ms: +firstMs.toFixed(2) }));
  process.exit(0);
}

const dir = process.argv[2]!;
const rounds = Number(process.argv[3] ?? 30);
const names = (process.argv[4] ?? 'minilm,minilm-pt2,minilm-pt2-nofreeze').split(',');
vocab = JSON.parse(readFileSync(join(dir, names[0]!, 'config.json'), 'utf8')).vocab_size;
const files: Record<string, string> = {};
for (const name of names) files[name] = join(dir, name, name.includes('pt2') ? 'model.pt2' : 'model.pt');
const models = await Promise.all(names.map((name) => ModelHandle.load(files[name]!)));

const results: Record<string, unknown>[] = [];
for (const [batch, seq] of SHAPES) {
  const x = inputs(batch, seq);
  for (const m of models) for (let i = 0; i < 3; i++) await m.forward(x); // warm-up
  const times: number[][] = models.map(() => []);
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < models.length; k++) {
      const t0 = performance.now();
      await models[k]!.forward(x);
      times[k]!.push(performance.now() - t0);
    }
  }
  const row: Record<string, unknown> = { shape: `${batch}x${seq}` };
  names.forEach((name, k) => (row[`${name}_ms`] = +median(times[k]!).toFixed(3)));
  for (const name of names.slice(1)) row[`speedup_${name}`] = +(median(times[0]!) / median(times[names.indexOf(name)]!)).toFixed(3);
  results.push(row);
  console.error(JSON.stringify(row));
}
const geo: Record<string, number> = {};
for (const name of names.slice(1)) {
  const logs = results.map((r) => Math.log(r[`speedup_${name}`] as number));
  geo[name] = +Math.exp(logs.reduce((a, b) => a + b, 0) / logs.length).toFixed(3);
}
console.log(JSON.stringify({ rounds, baseline: names[0], shapes: results, geomean_speedup: geo }));
for (const m of models) m.dispose();
