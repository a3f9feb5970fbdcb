// The registry's lifecycle as events: load, unload, failure naming the manifest field, eviction.
import t from 'tap';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { ModelRegistry } from '../../src/models/registry.js';
import { ModelRepository } from '../../src/models/repository.js';
import { runtimeInfo, tensor } from '../../src/runtime/index.js';
import { serverFixtures } from '../helpers/server.js';

const serving = { maxQueueDelayMs: 0, instances: 1, maxQueueSize: 16 };

function repositoryWith(names: string[]): string {
  const root = mkdtempSync(join(tmpdir(), 'atenspace-registry-'));
  for (const name of names) cpSync(join(serverFixtures(), 'models', name), join(root, name), { recursive: true });
  return root;
}

function recorder(registry: ModelRegistry): string[] {
  const events: string[] = [];
  for (const name of ['loading', 'ready', 'failed', 'unloading', 'unloaded', 'evicted'] as const) {
    registry.lifecycle.on(name, (model: string) => events.push(`${name} ${model}`));
  }
  return events;
}

t.test('load and unload announce every transition, in order', async (t) => {
  const registry = new ModelRegistry(new ModelRepository(repositoryWith(['demo-embedder'])), { device: 'cpu', memoryLimitBytes: 0, serving, warmup: true, lazyLoad: false });
  await registry.refresh();
  const events = recorder(registry);
  const entry = await registry.load('demo-embedder');
  t.equal(entry.state, 'ready');
  t.ok(entry.engine, 'a ready model has its engine');
  t.ok(entry.engine!.cost.coefficients.measured, 'warm-up calibrated the cost model');
  const out = await registry.withEngine(entry, (engine) =>
    engine.infer(new Map([['input_ids', tensor('int64', [1, 3], [2, 5, 3])], ['attention_mask', tensor('int64', [1, 3], [1, 1, 1])], ['token_type_ids', tensor('int64', [1, 3], [0, 0, 0])]])),
  );
  t.ok(out.size > 0, 'the engine serves');
  await registry.unload('demo-embedder');
  t.equal(entry.state, 'unloaded');
  t.equal(entry.engine, undefined);
  t.same(events, ['loading demo-embedder', 'ready demo-embedder', 'unloading demo-embedder', 'unloaded demo-embedder']);
  t.equal(entry.stats.requests, 1, 'statistics outlive the engine');
});

t.test('a manifest with a bad task section fails to load, naming the field', async (t) => {
  const root = repositoryWith(['demo-embedder']);
  const path = join(root, 'demo-embedder', 'atenspace.json');
  const manifest = JSON.parse(readFileSync(path, 'utf8'));
  manifest.embedding.pooling = 'max';
  writeFileSync(path, JSON.stringify(manifest));
  const registry = new ModelRegistry(new ModelRepository(root), { device: 'cpu', memoryLimitBytes: 0, serving, warmup: false, lazyLoad: false });
  await registry.refresh();
  const failures: string[] = [];
  registry.lifecycle.on('failed', (model, error) => failures.push(`${model}: ${error}`));
  await t.rejects(registry.load('demo-embedder'), { code: 'MODEL_NOT_READY', message: /\/embedding\/pooling/ });
  t.equal(registry.get('demo-embedder')!.state, 'failed');
  t.match(failures[0], /demo-embedder: .*\/embedding\/pooling/);
});

t.test('eviction under the memory limit: evicted, then unloaded, before the new model loads', async (t) => {
  const root = repositoryWith(['demo-embedder', 'demo-vit']);
  const registry = new ModelRegistry(new ModelRepository(root), { device: 'cpu', memoryLimitBytes: 1_000_000, serving, warmup: false, lazyLoad: false });
  await registry.refresh();
  await registry.load('demo-embedder');
  const events = recorder(registry);
  await registry.load('demo-vit');
  t.same(events, ['loading demo-vit', 'evicted demo-embedder', 'unloading demo-embedder', 'unloaded demo-embedder', 'ready demo-vit']);
  await registry.close();
});

t.test('a text-generation export with past key/values loads its main module only for raw tensors', async (t) => {
  const registry = new ModelRegistry(new ModelRepository(repositoryWith(['demo-gpt2'])), { device: 'cpu', memoryLimitBytes: 0, serving, warmup: true, lazyLoad: false });
  await registry.refresh();
  const before = runtimeInfo().liveModules;
  const entry = await registry.load('demo-gpt2');
  t.equal(runtimeInfo().liveModules - before, 1, 'only model_with_past.pt is loaded: generation needs nothing else');
  t.equal(entry.engine!.device, 'cpu');
  const out = await registry.withEngine(entry, (engine) => engine.infer(new Map([['input_ids', tensor('int64', [1, 3], [5, 6, 7])], ['attention_mask', tensor('int64', [1, 3], [1, 1, 1])]])));
  const logits = [...out.values()][0]!;
  t.same(logits.shape.slice(0, 2), [1, 3], 'raw tensors run through model.pt, loaded on first use');
  t.equal(runtimeInfo().liveModules - before, 2);
  await registry.close();
});

t.test('an unload that finishes between acquire and the forward is retried, not a TypeError', async (t) => {
  // Found by the socket fuzzer (unloads racing requests): acquire answered a ready entry, the
  // unload of that idle engine completed before withEngine's next line, and `engine.infer` ran on
  // undefined (500). Here the race is made certain: acquire unloads what it has just loaded, once.
  const registry = new ModelRegistry(new ModelRepository(repositoryWith(['demo-embedder'])), { device: 'cpu', memoryLimitBytes: 0, serving, warmup: false, lazyLoad: true });
  await registry.refresh();
  t.teardown(() => registry.close());
  const entry = await registry.load('demo-embedder');
  await registry.unload('demo-embedder');
  const acquire = registry.acquire.bind(registry);
  let raced = 0;
  registry.acquire = async (name: string, version?: string) => {
    const got = await acquire(name, version);
    if (raced++ === 0) await registry.unload(name);
    return got;
  };
  const out = await registry.withEngine(entry, (engine) =>
    engine.infer(new Map([['input_ids', tensor('int64', [1, 3], [2, 5, 3])], ['attention_mask', tensor('int64', [1, 3], [1, 1, 1])], ['token_type_ids', tensor('int64', [1, 3], [0, 0, 0])]])),
  );
  t.equal(raced, 2, 'acquired twice: once raced by the unload, once to run');
  t.ok(out.size > 0, 'served by the reloaded engine');
});
