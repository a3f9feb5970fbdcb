// Model versions: numbered version folders beside the flat layout, a version policy in the
// model's serving.json, the versioned KServe v2 routes, and a rollout (load the new version,
// unload the old one) under continuous traffic in which no request fails.
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';

import { embedderCases, embedderRequest, maxDiff, serverFixtures, testApp } from '../helpers/server.js';

const fixture = join(serverFixtures(), 'models', 'demo-embedder');
const cases = embedderCases();

/** A repository holding `emb` with the given versions (copies of the fixture embedder), and the flat demo-embedder. */
function repository(versions: number[], servingJson?: unknown): string {
  const root = mkdtempSync(join(tmpdir(), 'atenspace-versions-'));
  for (const v of versions) cpSync(fixture, join(root, 'emb', String(v)), { recursive: true });
  cpSync(fixture, join(root, 'demo-embedder'), { recursive: true });
  if (servingJson) writeFileSync(join(root, 'emb', 'serving.json'), JSON.stringify(servingJson));
  return root;
}

const v2Body = (ids: number[]) => (({ model: _m, ...rest }) => rest)(embedderRequest(ids));

t.test('versions on disk, the default policy (latest 1), and the versioned routes', async (t) => {
  const root = repository([1, 3]);
  const { app } = await testApp({ MODEL_REPOSITORY: root, LOAD_MODELS: 'all' });
  t.teardown(() => app.close());

  const models = (await app.inject('/models')).json().models as { name: string; version: string; version_policy: string; versions: unknown[] }[];
  const emb = models.find((m) => m.name === 'emb')!;
  t.equal(emb.version, '3');
  t.equal(emb.version_policy, 'latest 1');
  t.same(emb.versions, [
    { version: '1', state: 'unloaded', served: false },
    { version: '3', state: 'ready', served: true },
  ]);
  const flat = models.find((m) => m.name === 'demo-embedder')!;
  t.same(flat.versions, [{ version: '1', state: 'ready', served: true }], 'a flat folder is version 1');

  t.same((await app.inject('/v2/models/emb')).json().versions, ['3']);
  t.same((await app.inject('/v2/models/emb/versions/3')).json().versions, ['3']);
  t.same((await app.inject('/v2/models/emb/versions/3/ready')).json(), { ready: true });
  const notReady = await app.inject('/v2/models/emb/versions/1/ready');
  t.equal(notReady.statusCode, 400);
  t.match(notReady.json().error, /model 'emb' version 1 is unloaded/);
  const missing = await app.inject('/v2/models/emb/versions/2/ready');
  t.equal(missing.statusCode, 404);
  t.match(missing.json().error, /model 'emb' has no version 2 \(versions: 1, 3\)/);

  const c = cases[0]!;
  const res = await app.inject({ method: 'POST', url: '/v2/models/emb/versions/3/infer', payload: v2Body(c.input_ids) });
  t.equal(res.statusCode, 200);
  t.equal(res.json().model_version, '3');
  t.ok(maxDiff(res.json().outputs[0].data, c.expected) <= 1e-4);
  const raw = await app.inject({ method: 'POST', url: '/infer', payload: { ...embedderRequest(c.input_ids, 'emb'), version: '3' } });
  t.equal(raw.statusCode, 200);
  t.equal(raw.json().model_version, '3');

  const unserved = await app.inject({ method: 'POST', url: '/v2/models/emb/versions/1/infer', payload: v2Body(c.input_ids) });
  t.equal(unserved.statusCode, 404);
  t.match(unserved.json().error, /version 1 of model 'emb' is not served \(version policy: latest 1/);
  const badVersion = await app.inject({ method: 'POST', url: '/v2/models/emb/versions/0/infer', payload: v2Body(c.input_ids) });
  t.equal(badVersion.statusCode, 400, 'a version that is not a number ≥ 1');

  const index = (await app.inject({ method: 'POST', url: '/v2/repository/index' })).json() as { name: string; version: string; state: string }[];
  t.same(index.filter((e) => e.name === 'emb'), [
    { name: 'emb', version: '1', state: 'UNLOADED' },
    { name: 'emb', version: '3', state: 'READY' },
  ]);
});

t.test('version_policy all and specific', async (t) => {
  const root = repository([1, 2, 3], { version_policy: { specific: { versions: [1, 3] } } });
  const { app } = await testApp({ MODEL_REPOSITORY: root, LOAD_MODELS: 'emb' });
  t.teardown(() => app.close());
  t.same((await app.inject('/v2/models/emb')).json().versions, ['1', '3']);
  const c = cases[1]!;
  for (const v of ['1', '3']) {
    const res = await app.inject({ method: 'POST', url: `/v2/models/emb/versions/${v}/infer`, payload: v2Body(c.input_ids) });
    t.equal(res.json().model_version, v);
  }
  t.equal((await app.inject({ method: 'POST', url: '/v2/models/emb/infer', payload: v2Body(c.input_ids) })).json().model_version, '3', 'the default is the newest served');

  writeFileSync(join(root, 'emb', 'serving.json'), JSON.stringify({ version_policy: { all: {} } }));
  t.equal((await app.inject({ method: 'POST', url: '/v2/repository/models/emb/load' })).statusCode, 200);
  t.same((await app.inject('/v2/models/emb')).json().versions, ['1', '2', '3']);

  writeFileSync(join(root, 'emb', 'serving.json'), JSON.stringify({ version_policy: { newest: 2 } }));
  const bad = await app.inject({ method: 'POST', url: '/models/emb/load' });
  t.equal(bad.statusCode, 503);
  t.match(bad.json().error, /version_policy/);
});

t.test('a rollout under continuous traffic: no request fails, answers move from v1 to v2', async (t) => {
  const root = repository([1]);
  const { app } = await testApp({ MODEL_REPOSITORY: root, LOAD_MODELS: 'emb' });
  t.teardown(() => app.close());
  const c = cases[2]!;

  let running = true;
  const failures: string[] = [];
  const seen: string[][] = [];
  const client = async (k: number) => {
    const versions: string[] = [];
    seen[k] = versions;
    while (running) {
      const res = await app.inject({ method: 'POST', url: k % 2 ? '/v2/models/emb/infer' : '/infer', payload: k % 2 ? v2Body(c.input_ids) : embedderRequest(c.input_ids, 'emb') });
      if (res.statusCode !== 200) failures.push(`${res.statusCode} ${res.body.slice(0, 200)}`);
      else {
        versions.push(res.json().model_version);
        if (maxDiff(res.json().outputs[0].data, c.expected) > 1e-4) failures.push('wrong output');
      }
    }
  };
  const clients = Array.from({ length: 6 }, (_, k) => client(k));
  await new Promise((r) => setTimeout(r, 300));
  cpSync(fixture, join(root, 'emb', '2'), { recursive: true });
  const load = await app.inject({ method: 'POST', url: '/v2/repository/models/emb/load' });
  t.equal(load.statusCode, 200, 'rollout');
  await new Promise((r) => setTimeout(r, 300));
  running = false;
  await Promise.all(clients);

  t.same(failures, [], 'no request failed during the rollout');
  const all = seen.flat();
  t.ok(all.length > 20, `${all.length} requests during the rollout`);
  t.ok(all.includes('1') && all.includes('2'), 'answers came from both versions');
  for (const versions of seen) {
    const firstTwo = versions.indexOf('2');
    t.ok(firstTwo === -1 || versions.slice(firstTwo).every((v) => v === '2'), 'once a client gets v2 it never gets v1 again');
  }
  const models = (await app.inject('/models/emb')).json();
  t.same(models.versions, [
    { version: '1', state: 'unloaded', served: false },
    { version: '2', state: 'ready', served: true },
  ]);
});
