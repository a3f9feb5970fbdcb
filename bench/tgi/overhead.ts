/**
 * What the TGI routes cost over /v1/completions on the same decode path: one request at a time
 * (greedy, the same prompt and token budget), POST /v1/completions, POST /generate, POST /generate
 * with `details` (per-token log-probabilities) and POST /generate_stream (read to the end),
 * alternating each round; then logProbability alone on a row of the model's vocabulary size.
 *
 * The server runs in this process (the client's work is a few JSON parses per request).
 *
 * Usage: node dist/bench/tgi/overhead.js MODEL_REPOSITORY MODEL [ROUNDS=7] [TOKENS=32]
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';

import { logProbability } from '../../src/models/tasks/sampling.js';
import { buildApp } from '../../src/server/app.js';
import { loadConfig } from '../../src/server/config.js';

const [repository, model, roundsArg, tokensArg] = process.argv.slice(2);
if (!repository || !model) throw new Error('usage: overhead.js MODEL_REPOSITORY MODEL [ROUNDS] [TOKENS]');
const ROUNDS = Number(roundsArg ?? 7);
const TOKENS = Number(tokensArg ?? 32);
const PROMPT = 'Once upon a time, in a land far away,';

const config = loadConfig({ MODEL_REPOSITORY: repository, LOAD_MODELS: model, DEVICE: 'cpu', LOG_LEVEL: 'silent', DATA_DIR: mkdtempSync(join(tmpdir(), 'tgi-bench-')) }, []);
const { app, loadStartupModels } = await buildApp(config, { logger: false });
await loadStartupModels();
await app.listen({ port: 0, host: '127.0.0.1' });
const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;

const post = async (path: string, body: unknown): Promise<string> => {
  const res = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${path}: ${res.status} ${text}`);
  return text;
};

/** Each variant returns the number of tokens it generated. */
const variants: Record<string, () => Promise<number>> = {
  '/v1/completions': async () => JSON.parse(await post('/v1/completions', { model, prompt: PROMPT, max_tokens: TOKENS, temperature: 0 })).usage.completion_tokens,
  '/generate': async () => {
    await post('/generate', { model, inputs: PROMPT, parameters: { max_new_tokens: TOKENS } });
    return NaN; // no count without details
  },
  '/generate details': async () => JSON.parse(await post('/generate', { model, inputs: PROMPT, parameters: { max_new_tokens: TOKENS, details: true } })).details.generated_tokens,
  '/generate_stream': async () => (await post('/generate_stream', { model, inputs: PROMPT, parameters: { max_new_tokens: TOKENS } })).split('\n\n').filter((e) => e.startsWith('data:')).length,
};

const names = Object.keys(variants);
const times = new Map<string, number[]>(names.map((n) => [n, []]));
const counts = new Map<string, number>();
for (const name of names) await variants[name]!(); // warm-up
for (let round = 0; round < ROUNDS; round++) {
  // Rotate the order so no variant always follows the same one.
  for (const name of [...names.slice(round % names.length), ...names.slice(0, round % names.length)]) {
    const t0 = performance.now();
    const n = await variants[name]!();
    times.get(name)!.push(performance.now() - t0);
    if (!Number.isNaN(n)) counts.set(name, n);
  }
}
await app.close();

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const reference = median(times.get('/v1/completions')!);
console.log(`model ${model}, prompt ${JSON.stringify(PROMPT)}, max ${TOKENS} new tokens, greedy, ${ROUNDS} rounds, one request at a time`);
console.log('| route | median ms | ms / token | vs /v1/completions | tokens |');
console.log('|---|---:|---:|---:|---:|');
for (const name of names) {
  const m = median(times.get(name)!);
  const tokens = counts.get(name) ?? counts.get('/v1/completions')!;
  console.log(`| ${name} | ${m.toFixed(1)} | ${(m / tokens).toFixed(2)} | ${((m / reference - 1) * 100).toFixed(1)} % | ${counts.get(name) ?? '–'} |`);
}

const vocab = (JSON.parse(readFileSync(join(repository, model, 'atenspace.json'), 'utf8')) as { generation: { vocab_size: number } }).generation.vocab_size;
const row = Float32Array.from({ length: vocab }, (_, i) => Math.sin(i * 12.9898) * 8);
let sink = 0;
const calls = 2000;
for (let i = 0; i < 200; i++) sink += logProbability(row, i % vocab);
const t0 = performance.now();
for (let i = 0; i < calls; i++) sink += logProbability(row, (i * 7919) % vocab);
const us = ((performance.now() - t0) * 1000) / calls;
console.log(`logProbability over ${vocab} logits: ${us.toFixed(1)} µs per token (checksum ${sink.toFixed(1)})`);
