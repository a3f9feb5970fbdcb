// The AtomSpace over HTTP: CRUD with the status codes users expect, API-key rule for writes,
// and /atoms/similar by text giving the neighbours Python computes from the model's own
// embeddings (transformers eager + sentence pooling, in test/fixtures/make_server_fixtures.py).
import t from 'tap';
import { join } from 'node:path';

import { readJson } from '../helpers/python-fixtures.js';
import { metricValue, serverFixtures, testApp } from '../helpers/server.js';

const { sentences } = readJson<{ sentences: { texts: string[]; normalized: number[][] } }>(join(serverFixtures(), 'cases.json'));
const { app } = await testApp({ LOAD_MODELS: 'demo-embedder' });
t.teardown(() => app.close());
const send = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: object) => app.inject({ method, url, ...(payload ? { payload } : {}) });

t.test('similar by text equals the Python neighbours of the model embeddings', async (t) => {
  const ids: number[] = [];
  for (const [i, text] of sentences.texts.entries()) {
    const res = await send('POST', '/atoms', { type: 'ConceptNode', name: `s${i}`, text, model: 'demo-embedder' });
    t.equal(res.statusCode, 201);
    t.same(res.json().embeddings, ['demo-embedder']);
    ids.push(res.json().id);
  }
  const cos = (a: number[], b: number[]) => a.reduce((s, v, i) => s + v * b[i]!, 0);
  for (const [i, text] of sentences.texts.entries()) {
    const res = await send('POST', '/atoms/similar', { text, model: 'demo-embedder', k: 5 });
    t.equal(res.statusCode, 200);
    const got = res.json().results as { atom: { id: number; name: string }; score: number }[];
    const want = sentences.normalized
      .map((v, j) => ({ name: `s${j}`, score: cos(sentences.normalized[i]!, v) }))
      .sort((a, b) => b.score - a.score);
    t.same(got.map((r) => r.atom.name), want.map((w) => w.name), `neighbours of text ${i}`);
    got.forEach((r, j) => t.ok(Math.abs(r.score - want[j]!.score) <= 1e-4, `score ${i}/${j}`));
  }
  const byAtom = (await send('POST', '/atoms/similar', { atom: ids[0], k: 2 })).json();
  t.notOk(byAtom.results.some((r: { atom: { id: number } }) => r.atom.id === ids[0]), 'an atom query leaves the atom out');
  t.equal(byAtom.results.length, 2);
  const metrics = (await app.inject('/metrics')).body;
  t.ok(metricValue(metrics, 'atenspace_similarity_duration_seconds_count', { space: 'demo-embedder', mode: 'exact' }) >= 6);
  t.equal(metricValue(metrics, 'atenspace_atoms', { type: 'ConceptNode' }), sentences.texts.length);
  t.ok(metricValue(metrics, 'atenspace_journal_bytes', {}) > 0);
  t.ok(metricValue(metrics, 'atenspace_journal_fsync_duration_seconds_count', {}) >= 1);
});

t.test('CRUD, links, incoming, update, delete', async (t) => {
  const cat = (await send('POST', '/atoms', { type: 'ConceptNode', name: 'cat', embedding: [1, 0, 0] })).json();
  const again = await send('POST', '/atoms', { type: 'ConceptNode', name: 'cat' });
  t.equal(again.statusCode, 200, 'an existing atom is 200, not 201');
  t.equal(again.json().id, cat.id);
  const animal = (await send('POST', '/atoms', { type: 'ConceptNode', name: 'animal', embedding: [0.8, 0.6, 0] })).json();
  const link = await send('POST', '/atoms', { type: 'InheritanceLink', outgoing: [cat.id, animal.id], tv: { strength: 0.9, confidence: 0.8 } });
  t.equal(link.statusCode, 201);
  t.same(link.json().outgoing, [cat.id, animal.id]);
  const batch = await send('POST', '/atoms/batch', { atoms: [{ type: 'PredicateNode', name: 'eats' }, { type: 'SimilarityLink', outgoing: [animal.id, cat.id] }] });
  t.equal(batch.statusCode, 200);
  t.same(batch.json().atoms.map((a: { created: boolean }) => a.created), [true, true]);
  t.same((await send('GET', `/atoms/${cat.id}`)).json().name, 'cat');
  t.same((await send('GET', `/atoms/${cat.id}/incoming`)).json().atoms.map((a: { type: string }) => a.type).sort(), ['InheritanceLink', 'SimilarityLink']);
  const found = (await send('GET', '/atoms?type=ConceptNode&name=cat')).json();
  t.equal(found.total, 1);
  t.equal((await send('GET', '/atoms?type=Link')).json().total, 2, 'type queries include subtypes');
  const patched = await send('PATCH', `/atoms/${cat.id}`, { av: { sti: 5 }, tv: { strength: 0.5, confidence: 0.5 } });
  t.same(patched.json().av, { sti: 5, lti: 0 });
  const sim = (await send('POST', '/atoms/similar', { embedding: [1, 0.1, 0], k: 5 })).json();
  t.equal(sim.space, 'default');
  t.same(sim.results.map((r: { atom: { name: string } }) => r.atom.name), ['cat', 'animal']);
  const refused = await send('DELETE', `/atoms/${cat.id}`);
  t.equal(refused.statusCode, 409);
  t.equal(refused.json().code, 'HAS_INCOMING');
  const removed = await send('DELETE', `/atoms/${cat.id}?recursive=true`);
  t.equal(removed.statusCode, 200);
  t.equal(removed.json().removed.length, 3);
  t.equal((await send('GET', `/atoms/${cat.id}`)).statusCode, 404);
});

t.test('bad requests are 4xx naming the problem', async (t) => {
  const expect = async (method: 'GET' | 'POST' | 'PATCH', url: string, payload: object | undefined, status: number, message: RegExp) => {
    const res = await send(method, url, payload);
    t.equal(res.statusCode, status, `${url} ${JSON.stringify(payload)?.slice(0, 60)}`);
    t.match(res.json().error, message);
  };
  await expect('POST', '/atoms', { type: 'NopeNode', name: 'x' }, 400, /unknown atom type 'NopeNode'/);
  await expect('POST', '/atoms', { type: 'ListLink', outgoing: [987654] }, 404, /outgoing atom 987654/);
  await expect('POST', '/atoms', { type: 'ConceptNode', name: 'y', text: 'hello' }, 400, /text needs the model/);
  await expect('POST', '/atoms', { type: 'ConceptNode', name: 'z', embedding: [0, 0, 0] }, 400, /zero norm/);
  await expect('POST', '/atoms', { type: 'ConceptNode', name: 'w', embedding: [1, 2] }, 400, /3-dimensional vectors, got 2/);
  await expect('POST', '/atoms/similar', { k: 3 }, 400, /exactly one of/);
  await expect('POST', '/atoms/similar', { embedding: [1, 0], space: 'nope' }, 404, /no embedding space 'nope'/);
  await expect('POST', '/atoms/similar', { text: 'hi', model: 'demo-gpt2' }, 400, /text-generation model/);
  await expect('PATCH', '/atoms/1', {}, 400, /nothing to update/);
  await expect('GET', '/atoms/abc', undefined, 400, /id/);
});

t.test('writes need the API key when one is set; similarity is a read', async (t) => {
  const secured = await testApp({ LOAD_MODELS: 'none', API_KEY: 'k' });
  t.teardown(() => secured.app.close());
  t.equal((await secured.app.inject({ method: 'POST', url: '/atoms', payload: { type: 'ConceptNode', name: 'a', embedding: [1, 0] } })).statusCode, 401);
  const ok = await secured.app.inject({ method: 'POST', url: '/atoms', payload: { type: 'ConceptNode', name: 'a', embedding: [1, 0] }, headers: { authorization: 'Bearer k' } });
  t.equal(ok.statusCode, 201);
  t.equal((await secured.app.inject({ method: 'DELETE', url: `/atoms/${ok.json().id}` })).statusCode, 401);
  t.equal((await secured.app.inject({ method: 'POST', url: '/atoms/similar', payload: { embedding: [1, 0] } })).statusCode, 200);
});
