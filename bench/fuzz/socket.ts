/**
 * The long fuzz run over a real socket: the server listens on 127.0.0.1 and the requests of
 * test/helpers/openapi-fuzz.ts (driven by the served spec, fast-check, a seed) go through
 * node:http, 8 at a time, raw bytes and odd headers included. Pass: no 5xx, every 4xx is JSON
 * {error, code}, the server still answers correctly afterwards (transformers' embeddings).
 * Usage: bash bench/fuzz/run.sh [requests=10000] [seed=1]
 */
import { join } from 'node:path';

import fc from 'fast-check';

import { startFuzzTarget } from '../../test/helpers/fuzz-target.js';
import { checkResponse, describeRequest, requestArbitrary } from '../../test/helpers/openapi-fuzz.js';
import { readJson } from '../../test/helpers/python-fixtures.js';
import { maxDiff, serverFixtures } from '../../test/helpers/server.js';

const RUNS = Number(process.argv[2] ?? 10_000);
const SEED = Number(process.argv[3] ?? 1);

const { http, spec, world, close } = await startFuzzTarget(8);
const { send } = http;

for (let i = 0; i < 20; i++) {
  await send({ method: 'POST', url: '/atoms', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ type: 'ConceptNode', name: `seed-${i}`, embedding: [i, 1, 0, 0, 0, 0, 0, 1] }), operation: 'seed', askedDeadline: false });
}
const requests = fc.sample(requestArbitrary(spec, world), { seed: SEED, numRuns: RUNS });

const rssBefore = process.memoryUsage().rss;
const started = performance.now();
const statuses: Record<number, number> = {};
// Bodies in the KServe binary tensor form: how many, their statuses, how many answers came back binary.
const binary = { requests: 0, statuses: {} as Record<number, number>, binary_answers: 0 };
const failures: string[] = [];
let next = 0;
await Promise.all(
  Array.from({ length: 8 }, async () => {
    while (next < requests.length) {
      const index = next++;
      const r = requests[index]!;
      try {
        const res = await send(r);
        statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
        if (r.headers['inference-header-content-length'] !== undefined && Buffer.isBuffer(r.payload)) {
          binary.requests++;
          binary.statuses[res.statusCode] = (binary.statuses[res.statusCode] ?? 0) + 1;
          if (res.headers['inference-header-content-length'] !== undefined) binary.binary_answers++;
        }
        const why = checkResponse(r, res);
        if (why) failures.push(`#${index}: ${why} | ${describeRequest(r)}`);
        if (process.env.FUZZ_DEBUG && res.statusCode === Number(process.env.FUZZ_DEBUG)) console.error(`${res.statusCode} ${res.body.slice(0, 200)} | ${describeRequest(r)}`);
      } catch (error) {
        failures.push(`#${index}: ${(error as Error).message} | ${describeRequest(r)}`);
      }
    }
  }),
);
const seconds = (performance.now() - started) / 1000;

// Still correct afterwards.
const cases = readJson<{ sentences: { texts: string[]; normalized: number[][] } }>(join(serverFixtures(), 'cases.json'));
const after = JSON.parse(
  (await send({ method: 'POST', url: '/infer', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ model: 'demo-embedder', text: cases.sentences.texts }), operation: 'check', askedDeadline: false })).body,
) as { embeddings: number[][] };
const worst = Math.max(...cases.sentences.normalized.map((want, i) => maxDiff(after.embeddings[i]!, want)));

console.log(
  JSON.stringify(
    {
      requests: RUNS,
      seed: SEED,
      seconds: Number(seconds.toFixed(1)),
      requests_per_s: Math.round(RUNS / seconds),
      statuses,
      binary_tensor_bodies: binary,
      failures: failures.length,
      first_failures: failures.slice(0, 20),
      correct_afterwards: worst < 1e-4,
      max_abs_diff_afterwards: worst,
      rss_mib: { before: Math.round(rssBefore / 2 ** 20), after: Math.round(process.memoryUsage().rss / 2 ** 20) },
    },
    null,
    2,
  ),
);
await close();
process.exit(failures.length === 0 && worst < 1e-4 ? 0 : 1);
