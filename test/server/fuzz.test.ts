// Fuzz every route of the served OpenAPI spec (fast-check, fixed seed), over a real socket:
// no 5xx, no crash, every 4xx is JSON {error, code}, and afterwards correct requests still get
// correct answers (checked against transformers' outputs). FUZZ_RUNS and FUZZ_SEED override
// the CI slice; bench/fuzz/run.sh runs a longer one.
import { join } from 'node:path';

import fc from 'fast-check';
import t from 'tap';

import { startFuzzTarget } from '../helpers/fuzz-target.js';
import { checkResponse, describeRequest, type FuzzRequest, requestArbitrary } from '../helpers/openapi-fuzz.js';
import { readJson } from '../helpers/python-fixtures.js';
import { embedderCases, embedderRequest, maxDiff, serverFixtures } from '../helpers/server.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 2000);
const SEED = Number(process.env.FUZZ_SEED ?? 20261126);

interface Cases {
  sentences: { texts: string[]; normalized: number[][] };
  generation: { prompt: string; max_new_tokens: number; token_ids: number[] }[];
}

t.test('checkResponse fails what it should', async (t) => {
  const req: FuzzRequest = { method: 'POST', url: '/infer', headers: {}, operation: 'POST /infer', askedDeadline: false };
  const json = { 'content-type': 'application/json; charset=utf-8' };
  t.match(checkResponse(req, { statusCode: 500, headers: json, body: '{"error":"x","code":"INTERNAL"}' }), /^500/);
  t.match(checkResponse(req, { statusCode: 400, headers: json, body: '{"error":"x"}' }), /without a code/);
  t.match(checkResponse(req, { statusCode: 400, headers: { 'content-type': 'text/plain' }, body: 'bad' }), /content-type/);
  t.match(checkResponse(req, { statusCode: 413, headers: json, body: '{"code":"X"}' }), /without an error message/);
  t.match(checkResponse(req, { statusCode: 499, headers: json, body: '{"error":"gone","code":"CANCELLED"}' }), /still waiting/);
  t.match(checkResponse(req, { statusCode: 504, headers: json, body: '{"error":"late","code":"DEADLINE_EXCEEDED"}' }), /^504/, 'a 504 the client did not ask for');
  t.equal(checkResponse({ ...req, askedDeadline: true }, { statusCode: 504, headers: json, body: '{"error":"late","code":"DEADLINE_EXCEEDED"}' }), undefined);
  t.equal(checkResponse(req, { statusCode: 400, headers: json, body: '{"error":{"message":"m","type":"invalid_request_error"},"code":"BAD_INPUT"}' }), undefined, 'OpenAI shape');
  t.equal(checkResponse(req, { statusCode: 200, headers: json, body: '{}' }), undefined);
});

t.test(`${RUNS} fuzzed requests (seed ${SEED}): no 5xx, every 4xx is {error, code}, still correct afterwards`, async (t) => {
  const { app, http, spec, world, close } = await startFuzzTarget(4);
  t.teardown(close);

  // Atoms for the id-taking routes to find.
  for (let i = 0; i < 20; i++) {
    const body = i % 2 ? { type: 'ConceptNode', name: `seed-${i}`, embedding: [i, 1, 0, 0, 0, 0, 0, 1] } : { type: 'ConceptNode', name: `seed-${i}`, text: `seed text ${i}`, model: 'demo-embedder' };
    const seeded = await app.inject({ method: 'POST', url: '/atoms', payload: body });
    t.equal(seeded.statusCode, 201, seeded.body);
  }

  const requests = fc.sample(requestArbitrary(spec, world), { seed: SEED, numRuns: RUNS });

  const failures: string[] = [];
  const byStatus = new Map<number, number>();
  const byOperation = new Map<string, { ok: number; all: number }>();
  // Bodies in the binary tensor data extension's form, and how many of them were answered 200.
  const binary = { all: 0, ok: 0, binaryAnswers: 0 };
  const send = async (r: FuzzRequest, index: number) => {
    try {
      const res = await http.send(r); // rejects on a connection error or no answer in 60 s
      byStatus.set(res.statusCode, (byStatus.get(res.statusCode) ?? 0) + 1);
      const op = byOperation.get(r.operation) ?? { ok: 0, all: 0 };
      op.all++;
      if (res.statusCode < 300) op.ok++;
      byOperation.set(r.operation, op);
      if (r.headers['inference-header-content-length'] !== undefined && Buffer.isBuffer(r.payload)) {
        binary.all++;
        if (res.statusCode === 200) binary.ok++;
        if (res.headers['inference-header-content-length'] !== undefined) binary.binaryAnswers++;
      }
      if (process.env.FUZZ_DEBUG && res.statusCode >= 400) console.error(`FUZZ ${r.operation} ${res.statusCode} ${res.body.slice(0, 160)}`);
      const why = checkResponse(r, { statusCode: res.statusCode, headers: res.headers, body: res.body });
      if (why) failures.push(`#${index}: ${why}\n    ${describeRequest(r)}`);
    } catch (error) {
      failures.push(`#${index}: ${(error as Error).message}\n    ${describeRequest(r)}`);
    }
  };
  // Four at a time over the socket, so requests also meet each other in the batcher and the journal.
  for (let i = 0; i < requests.length; i += 4) await Promise.all(requests.slice(i, i + 4).map((r, j) => send(r, i + j)));

  t.comment(`statuses: ${JSON.stringify(Object.fromEntries([...byStatus].sort((a, b) => a[0] - b[0])))}`);
  t.comment(`operations (2xx/all): ${[...byOperation].map(([op, c]) => `${op} ${c.ok}/${c.all}`).join(', ')}`);
  t.same(failures.slice(0, 20), [], `no failures among ${RUNS} requests (${failures.length} in all)`);
  // The fuzzer must reach past validation: every operation is exercised, and many requests succeed.
  t.equal(byOperation.size, Object.values(spec.paths).reduce((n, item) => n + Object.keys(item).filter((m) => m !== 'parameters').length, 0), 'every operation was fuzzed');
  const successes = [...byStatus].filter(([s]) => s < 300).reduce((n, [, c]) => n + c, 0);
  t.ok(successes > RUNS * 0.15, `${successes} requests succeeded (more than 15%)`);
  t.comment(`binary tensor bodies: ${JSON.stringify(binary)}`);
  t.ok(binary.ok > 0 && binary.binaryAnswers > 0 && binary.ok < binary.all, 'binary tensor bodies were sent: some served (some answered in binary), some refused');

  // Correct requests still get correct answers: the fuzz corrupted nothing.
  const cases = readJson<Cases>(join(serverFixtures(), 'cases.json'));
  const live = await app.inject('/health/live');
  t.equal(live.statusCode, 200);
  const embedded = await app.inject({ method: 'POST', url: '/infer', payload: { model: 'demo-embedder', text: cases.sentences.texts } });
  t.equal(embedded.statusCode, 200);
  const vectors = embedded.json<{ embeddings: number[][] }>().embeddings;
  cases.sentences.normalized.forEach((want, i) => t.ok(maxDiff(vectors[i]!, want) < 1e-4, `sentence ${i} equals transformers' embedding`));
  const raw = embedderCases()[0]!;
  const tensors = await app.inject({ method: 'POST', url: '/infer', payload: embedderRequest(raw.input_ids) });
  t.ok(maxDiff(tensors.json().outputs[0].data, raw.expected) < 1e-4, 'raw tensors equal transformers');
  for (const g of cases.generation) {
    const res = await app.inject({ method: 'POST', url: '/infer', payload: { model: 'demo-gpt2', text: g.prompt, max_new_tokens: g.max_new_tokens } });
    t.same(res.json().token_ids, g.token_ids, `greedy generation of '${g.prompt}' is unchanged`);
  }
  const vector = [0.3, -0.2, 0.9, 0.1, 0, 0, 0.5, -0.7];
  const added = await app.inject({ method: 'POST', url: '/atoms', payload: { type: 'ConceptNode', name: 'after-fuzz', embedding: vector } });
  t.equal(added.statusCode, 201);
  const similar = await app.inject({ method: 'POST', url: '/atoms/similar', payload: { embedding: vector, k: 1, mode: 'exact' } });
  t.equal(similar.statusCode, 200);
  t.equal(similar.json().results[0].atom.id, added.json().id, 'the AtomSpace still finds what it stores');
});
