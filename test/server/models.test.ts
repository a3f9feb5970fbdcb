// The model cache: start-up subsets, lazy loads, load/unload, failures reported with their
// reason, concurrent loads done once, LRU eviction under MODEL_MEMORY_LIMIT, no path escape.
import t from 'tap';

import { embedderRequest, metricValue, testApp } from '../helpers/server.js';

t.test('listing: every model with state, and a failed one with its reason', async (t) => {
  const { app } = await testApp({ LOAD_MODELS: 'demo-embedder,broken' });
  t.teardown(() => app.close());
  const { models } = (await app.inject('/models')).json();
  const byName = Object.fromEntries(models.map((m: { name: string }) => [m.name, m]));
  t.same(Object.keys(byName).sort(), ['broken', 'demo-embedder', 'demo-gpt2', 'demo-vit', 'demo-yolos', 'slow']);
  t.equal(byName['demo-embedder'].state, 'ready');
  t.equal(byName['demo-embedder'].weights, 'random-init');
  t.equal(byName['demo-embedder'].task, 'embedding');
  t.equal(byName['demo-gpt2'].state, 'unloaded');
  t.equal(byName.broken.state, 'failed');
  t.match(byName.broken.error, /cannot load '.*model\.pt' as TorchScript/);
  t.equal((await app.inject('/health/ready')).statusCode, 200, 'ready although one model failed');
  const broken = await app.inject({ method: 'POST', url: '/infer', payload: { model: 'broken', inputs: [{ name: 'x', shape: [1, 384], datatype: 'FP32', data: new Array(384).fill(0) }] } });
  t.equal(broken.statusCode, 503);
  t.equal(broken.json().code, 'MODEL_NOT_READY');
  t.equal((await app.inject('/models/demo-vit')).json().state, 'unloaded');
  t.equal((await app.inject('/models/nope')).statusCode, 404);
  t.equal((await app.inject('/models/..%2F..%2Fetc')).statusCode, 404, 'names cannot leave the repository');
  t.equal((await app.inject({ method: 'POST', url: '/models/..%2Fmodels%2Fslow/load' })).statusCode, 404);
});

t.test('lazy load on first request; load and unload by API; concurrent loads run once', async (t) => {
  const { app } = await testApp({ LOAD_MODELS: 'none' });
  t.teardown(() => app.close());
  const first = await app.inject({ method: 'POST', url: '/infer', payload: embedderRequest([5, 6, 7]) });
  t.equal(first.statusCode, 200, 'first request loads the model');
  let metrics = (await app.inject('/metrics')).body;
  t.equal(metricValue(metrics, 'atenspace_model_cache_misses_total', { model: 'demo-embedder' }), 1);
  await app.inject({ method: 'POST', url: '/infer', payload: embedderRequest([5, 6, 7]) });
  metrics = (await app.inject('/metrics')).body;
  t.equal(metricValue(metrics, 'atenspace_model_cache_hits_total', { model: 'demo-embedder' }), 1);

  const loads = await Promise.all(Array.from({ length: 5 }, () => app.inject({ method: 'POST', url: '/models/demo-vit/load' })));
  t.same(loads.map((r) => r.statusCode), [200, 200, 200, 200, 200]);
  t.equal(loads[0]!.json().state, 'ready');
  metrics = (await app.inject('/metrics')).body;
  t.equal(metricValue(metrics, 'atenspace_model_load_duration_seconds_count', { model: 'demo-vit', outcome: 'success' }), 1, 'five concurrent loads, one load');

  const unloaded = await app.inject({ method: 'POST', url: '/models/demo-vit/unload' });
  t.equal(unloaded.json().state, 'unloaded');
  const v2 = await app.inject({ method: 'POST', url: '/v2/repository/models/demo-vit/load' });
  t.equal(v2.statusCode, 200);
  const index = (await app.inject({ method: 'POST', url: '/v2/repository/index' })).json();
  t.equal(index.find((m: { name: string }) => m.name === 'demo-vit').state, 'READY');
});

t.test('without lazy loading an unloaded model is 503', async (t) => {
  const { app } = await testApp({ LOAD_MODELS: 'none', LAZY_LOAD: 'false' });
  t.teardown(() => app.close());
  const res = await app.inject({ method: 'POST', url: '/infer', payload: embedderRequest([5, 6]) });
  t.equal(res.statusCode, 503);
  t.match(res.json().error, /not loaded/);
  t.same((await app.inject('/v2/models/demo-embedder/ready')).json(), { ready: false, error: "model 'demo-embedder' is unloaded", code: 'MODEL_NOT_READY' });
});

t.test('MODEL_MEMORY_LIMIT evicts the least recently used idle model', async (t) => {
  // The embedder is ~0.8 MB, gpt2 ~0.6 MB, vit ~0.3 MB: a 1.2 MB budget holds embedder + vit, not + gpt2.
  const { app } = await testApp({ LOAD_MODELS: 'none', MODEL_MEMORY_LIMIT: '1.2MB' });
  t.teardown(() => app.close());
  t.equal((await app.inject({ method: 'POST', url: '/models/demo-vit/load' })).statusCode, 200);
  t.equal((await app.inject({ method: 'POST', url: '/infer', payload: embedderRequest([5, 6]) })).statusCode, 200);
  const gpt2 = await app.inject({ method: 'POST', url: '/models/demo-gpt2/load' });
  t.equal(gpt2.statusCode, 200);
  const states = Object.fromEntries((await app.inject('/models')).json().models.map((m: { name: string; state: string }) => [m.name, m.state]));
  t.equal(states['demo-vit'], 'unloaded', 'least recently used model evicted');
  t.equal(states['demo-embedder'], 'unloaded', 'and the next one, until gpt2 fitted');
  t.equal(states['demo-gpt2'], 'ready');
  const metrics = (await app.inject('/metrics')).body;
  t.equal(metricValue(metrics, 'atenspace_model_cache_evictions_total', { model: 'demo-vit' }), 1);
  const tooBig = await testApp({ LOAD_MODELS: 'none', MODEL_MEMORY_LIMIT: '100KB' });
  t.teardown(() => tooBig.app.close());
  const res = await tooBig.app.inject({ method: 'POST', url: '/models/demo-embedder/load' });
  t.equal(res.statusCode, 503);
  t.match(res.json().error, /MODEL_MEMORY_LIMIT/);
});

t.test("a model folder's serving.json overrides the server-wide batching settings", async (t) => {
  const { cpSync, mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { serverFixtures } = await import('../helpers/server.js');
  const repo = mkdtempSync(join(tmpdir(), 'atenspace-repo-'));
  cpSync(join(serverFixtures(), 'models', 'slow'), join(repo, 'slow'), { recursive: true });
  cpSync(join(serverFixtures(), 'models', 'slow'), join(repo, 'bad-serving'), { recursive: true });
  writeFileSync(join(repo, 'slow', 'serving.json'), JSON.stringify({ max_batch_size: 2, instances: 2, max_queue_delay_ms: 5 }));
  writeFileSync(join(repo, 'bad-serving', 'serving.json'), JSON.stringify({ instances: 0 }));
  const { app } = await testApp({ MODEL_REPOSITORY: repo, LOAD_MODELS: 'none', MAX_QUEUE_SIZE: '7' });
  t.teardown(() => app.close());
  const slow = (await app.inject('/models/slow')).json();
  t.same(slow.serving, { max_batch_size: 2, max_queue_delay_ms: 5, instances: 2, max_queue_size: 7 });
  const bad = (await app.inject('/models/bad-serving')).json();
  t.equal(bad.state, 'failed');
  t.match(bad.error, /serving\.json: \/instances must be >= 1/);
});
