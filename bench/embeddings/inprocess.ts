/**
 * The in-process ceiling for the embedding benchmark: the same texts, tokenized up front,
 * sorted by length and run in batches of BATCH through the Node binding (padding only to each
 * batch's longest text), one forward at a time. Prints embeddings per second.
 *
 * Usage: node dist/bench/embeddings/inprocess.js WORK_DIR [BATCH=32] [ROUNDS=3]
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { Tokenizer } from 'tokenizers';

import { TorchScriptModule, tensor } from '../../src/runtime/index.js';

const [work, batchArg, roundsArg] = process.argv.slice(2);
const batchSize = Number(batchArg ?? 32);
const rounds = Number(roundsArg ?? 3);
const { texts } = JSON.parse(readFileSync(join(work!, 'texts.json'), 'utf8')) as { texts: string[] };
const folder = join(work!, 'models', 'minilm');
const tokenizer = Tokenizer.fromFile(join(folder, 'tokenizer.json'));
tokenizer.disablePadding();
const encoded = (await tokenizer.encodeBatch(texts)).map((e) => ({ ids: e.getIds(), types: e.getTypeIds() }));
encoded.sort((a, b) => a.ids.length - b.ids.length);
const model = await TorchScriptModule.load(join(folder, 'model.pt'));
const withTypes = model.schema.arguments.some((a) => a.name === 'token_type_ids');

const batches = [];
for (let i = 0; i < encoded.length; i += batchSize) {
  const group = encoded.slice(i, i + batchSize);
  const len = Math.max(...group.map((g) => g.ids.length));
  const ids: number[] = [];
  const mask: number[] = [];
  for (const g of group) {
    ids.push(...g.ids, ...new Array(len - g.ids.length).fill(0));
    mask.push(...new Array(g.ids.length).fill(1), ...new Array(len - g.ids.length).fill(0));
  }
  const shape = [group.length, len];
  batches.push([tensor('int64', shape, ids), tensor('int64', shape, mask), ...(withTypes ? [tensor('int64', shape, new Array(ids.length).fill(0))] : [])]);
}
for (const b of batches.slice(0, 3)) await model.forward(b);
let best = 0;
for (let r = 0; r < rounds; r++) {
  const start = performance.now();
  for (const b of batches) await model.forward(b);
  best = Math.max(best, texts.length / ((performance.now() - start) / 1000));
}
console.log(JSON.stringify({ batch: batchSize, texts: texts.length, embeddings_per_s: best }));
