// Continuous batching: concurrent generations decode together and each equals transformers'
// generate(do_sample=False) for its prompt alone; seeded sampling does not depend on what shares
// the batch; a bad request or a client leaving disturbs nobody else.
import t from 'tap';
import { join } from 'node:path';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';

import { readJson } from '../helpers/python-fixtures.js';
import { metricValue, serverFixtures, testApp } from '../helpers/server.js';

interface Case {
  prompt: string;
  max_new_tokens: number;
  token_ids: number[];
  eos_token_id: number;
}
const cases = readJson<{ concurrent: Case[] }>(join(serverFixtures(), 'cases.json')).concurrent;
const expectedOf = (c: Case) => (c.token_ids.includes(c.eos_token_id) ? c.token_ids.slice(0, c.token_ids.indexOf(c.eos_token_id)) : c.token_ids);

t.test('18 concurrent greedy generations of different lengths each equal transformers alone', async (t) => {
  const { app } = await testApp({ LOAD_MODELS: 'demo-gpt2' });
  t.teardown(() => app.close());
  const post = (payload: object) => app.inject({ method: 'POST', url: '/infer', payload }).then((r) => r);
  const results = await Promise.all(cases.map((c) => post({ model: 'demo-gpt2', text: c.prompt, max_new_tokens: c.max_new_tokens })));
  results.forEach((res, i) => {
    t.equal(res.statusCode, 200, res.body.slice(0, 200));
    t.same(res.json().token_ids, expectedOf(cases[i]!), `prompt ${i} (${cases[i]!.prompt.split(' ').length} words, ${cases[i]!.max_new_tokens} tokens)`);
  });
  const metrics = (await app.inject('/metrics')).body;
  const steps = metricValue(metrics, 'atenspace_decode_batch_rows_count', { model: 'demo-gpt2', kind: 'decode' });
  const rows = metricValue(metrics, 'atenspace_decode_batch_rows_sum', { model: 'demo-gpt2', kind: 'decode' });
  t.ok(rows / steps > 4, `decode steps ran ${(rows / steps).toFixed(1)} sequences on average (batched, not one by one)`);
  t.equal(metricValue(metrics, 'atenspace_active_sequences', { model: 'demo-gpt2' }), 0, 'nothing left decoding');
  t.ok(metricValue(metrics, 'atenspace_time_to_first_token_seconds_count', { model: 'demo-gpt2' }) >= 18);
});

t.test('a seeded sample is the same alone and amid other generations', async (t) => {
  const { app } = await testApp({ LOAD_MODELS: 'demo-gpt2' });
  t.teardown(() => app.close());
  const post = (payload: object) => app.inject({ method: 'POST', url: '/infer', payload }).then((r) => r);
  const sampled = { model: 'demo-gpt2', text: 'the quick brown fox', max_new_tokens: 20, temperature: 1.3, top_k: 40, top_p: 0.9, seed: 11 };
  const alone = (await post(sampled)).json().token_ids as number[];
  const crowd = await Promise.all([
    ...cases.slice(0, 8).map((c) => post({ model: 'demo-gpt2', text: c.prompt, max_new_tokens: c.max_new_tokens, temperature: 0.8, seed: 3 })),
    post(sampled),
    ...cases.slice(8, 12).map((c) => post({ model: 'demo-gpt2', text: c.prompt, max_new_tokens: c.max_new_tokens })),
  ]);
  t.same(crowd[8]!.json().token_ids, alone, 'same tokens with 12 others in the batch');
  t.ok(alone.length > 0);
});

t.test('bad requests and a client that leaves mid-generation disturb nobody else', async (t) => {
  const { app } = await testApp({ LOAD_MODELS: 'demo-gpt2' });
  t.teardown(() => app.close());
  await app.listen({ port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const post = (payload: object) => fetch(`${base}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload) });
  const good = cases
    .slice(0, 10)
    .map((c) => post({ model: 'demo-gpt2', text: c.prompt, max_new_tokens: c.max_new_tokens }).then(async (r) => ({ status: r.status, body: (await r.json()) as { token_ids: number[] } })));
  // While those decode: a request that cannot run, one too long for the context, and one whose client leaves.
  await new Promise((r) => setTimeout(r, 5));
  const bad = await post({ model: 'demo-gpt2', text: 'hello', max_new_tokens: 0 });
  t.equal(bad.status, 400);
  const tooLong = await post({ model: 'demo-gpt2', text: 'cat '.repeat(300), max_new_tokens: 4 });
  t.equal(tooLong.status, 400);
  t.match(((await tooLong.json()) as { error: string }).error, /256 tokens/);
  // A client that leaves: its socket closes mid-generation (node:http, so the connection really goes).
  const leaving = httpRequest({ host: '127.0.0.1', port: new URL(base).port, path: '/infer', method: 'POST', headers: { 'content-type': 'application/json' } });
  const gaveUp = new Promise<Error>((resolve) => leaving.on('error', resolve));
  leaving.end(JSON.stringify({ model: 'demo-gpt2', text: 'a long walk', max_new_tokens: 200 }));
  await new Promise((r) => setTimeout(r, 30));
  leaving.destroy();
  t.ok((await gaveUp) instanceof Error, 'the client gave up');
  const answers = await Promise.all(good);
  answers.forEach((a, i) => {
    t.equal(a.status, 200);
    t.same(a.body.token_ids, expectedOf(cases[i]!), `prompt ${i} still exact`);
  });
  for (let i = 0; i < 100; i++) {
    const active = metricValue((await app.inject('/metrics')).body, 'atenspace_active_sequences', { model: 'demo-gpt2' });
    if (active === 0) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  t.equal(metricValue((await app.inject('/metrics')).body, 'atenspace_active_sequences', { model: 'demo-gpt2' }), 0, 'the abandoned sequence left the batch');
});
