/**
 * Forward time by intra-op thread count (issue 15's finding): the same model, shapes from a
 * (rows, tokens) grid, each forward run with forward's `threads` option at 1 and at every count
 * up to the machine's, alternating, median of the rounds. Prints one JSON line per shape.
 * Usage: node dist/bench/threads/forward.js MODEL_DIR [ROUNDS=30] [ROWS=1,4,16,32] [TOKENS=8,32,128]
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

import { readManifest } from '../../src/models/manifest.js';
import { exampleInputs } from '../../src/models/engine/warmup.js';
import { ModelHandle, runtimeInfo } from '../../src/runtime/index.js';

const [dir, roundsArg, rowsArg, tokensArg] = process.argv.slice(2);
if (!dir) throw new Error('usage: forward.js MODEL_DIR [ROUNDS] [ROWS] [TOKENS]');
const rounds = Number(roundsArg ?? 30);
const rowsGrid = (rowsArg ?? '1,4,16,32').split(',').map(Number);
const tokensGrid = (tokensArg ?? '8,32,128').split(',').map(Number);
const manifest = await readManifest(dir);
const model = await ModelHandle.load(join(dir, manifest.file));
const info = runtimeInfo();
const counts = [...new Set([1, ...Array.from({ length: availableParallelism() }, (_, i) => i + 1)])].filter((n) => n <= Math.max(info.intraOpThreads, availableParallelism()));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.error(JSON.stringify({ model: dir, threadsPerCall: info.threadsPerCall, intraOpThreads: info.intraOpThreads, counts }));
for (const tokens of tokensGrid) {
  for (const rows of rowsGrid) {
    if (rows > manifest.max_batch_size) continue;
    const inputs = exampleInputs(manifest, rows, tokens);
    const times = new Map<number, number[]>(counts.map((n) => [n, []]));
    for (const n of counts) for (let i = 0; i < 2; i++) await model.forward(inputs, { threads: n });
    for (let r = 0; r < rounds; r++) {
      for (const n of counts) {
        const t0 = performance.now();
        await model.forward(inputs, { threads: n });
        times.get(n)!.push(performance.now() - t0);
      }
    }
    const ms = Object.fromEntries(counts.map((n) => [n, Number(median(times.get(n)!).toFixed(3))]));
    console.log(JSON.stringify({ rows, tokens, ms }));
  }
}
model.dispose();
