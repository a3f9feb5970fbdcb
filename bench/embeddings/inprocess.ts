/**
 * The in-process ceiling for the embedding benchmark: a workload's texts, tokenized up front,
 * sorted by length and run in batches through the Node binding (padding only to each batch's
 * longest text), one forward at a time, for each batch size; prints embeddings per second of
 * each and the best. Intra-op threads: INTRA_OP_THREADS (as the server gets), else LibTorch's default.
 *
 * Usage: node dist/bench/embeddings/inprocess.js WORK_DIR [TEXTS=texts.json] [BATCHES=1,2,4,8,16,32] [ROUNDS=2] [COUNT=192]
 * (COUNT: how many of the workload's texts, taken evenly across it, so every length is represented)
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { Tokenizer } from 'tokenizers';

import { configureRuntime, TorchScriptModule, tensor, type Tensor } from '../../src/runtime/index.js';

const [work, textsArg, batchesArg, roundsArg, countArg] = process.argv.slice(2);
const batchSizes = (batchesArg ?? '1,2,4,8,16,32').split(',').map(Number);
const rounds = Number(roundsArg ?? 2);
if (process.env.INTRA_OP_THREADS) configureRuntime({ intraOpThreads: Number(process.env.INTRA_OP_THREADS) });
const all = (JSON.parse(readFileSync(join(work!, textsArg ?? 'texts.json'), 'utf8')) as { texts: string[] }).texts;
const count = Math.min(all.length, Number(countArg ?? 192));
const texts = Array.from({ length: count }, (_, i) => all[Math.floor((i * all.length) / count)]!);
const folder = join(work!, 'models', 'minilm');
const tokenizer = Tokenizer.fromFile(join(folder, 'tokenizer.json'));
tokenizer.disablePadding();
const encoded = (await tokenizer.encodeBatch(texts)).map((e) => ({ ids: e.getIds(), types: e.getTypeIds() }));
encoded.sort((a, b) => a.ids.length - b.ids.length);
const model = await TorchScriptModule.load(join(folder, 'model.pt'));
const withTypes = model.schema.arguments.some((a) => a.name === 'token_type_ids');

function batchesOf(size: number): Tensor[][] {
  const batches: Tensor[][] = [];
  for (let i = 0; i < encoded.length; i += size) {
    const group = encoded.slice(i, i + size);
    const len = Math.max(...group.map((g) => g.ids.length));
    const ids: number[] = [];
    const mask: number[] = [];
    for (const g of group) {
      ids.push(...g.ids, ...new Array<number>(len - g.ids.length).fill(0));
      mask.push(...new Array<number>(g.ids.length).fill(1), ...new Array<number>(len - g.ids.length).fill(0));
    }
    const shape = [group.length, len];
    batches.push([tensor('int64', shape, ids), tensor('int64', shape, mask), ...(withTypes ? [tensor('int64', shape, new Array<number>(ids.length).fill(0))] : [])]);
  }
  return batches;
}

const perBatch: Record<string, number> = {};
for (const size of batchSizes) {
  const batches = batchesOf(size);
  for (const b of batches) await model.forward(b); // every shape once: the profiling executor settles
  let best = 0;
  for (let r = 0; r < rounds; r++) {
    const start = performance.now();
    for (const b of batches) await model.forward(b);
    best = Math.max(best, texts.length / ((performance.now() - start) / 1000));
  }
  perBatch[size] = Math.round(best * 10) / 10;
}
const [bestBatch, bestRate] = Object.entries(perBatch).sort((a, b) => b[1] - a[1])[0]!;
console.log(JSON.stringify({ texts: texts.length, per_batch: perBatch, best_batch: Number(bestBatch), embeddings_per_s: bestRate }));
