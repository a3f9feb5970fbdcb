// Faults: corrupt and truncated model files are reported as failed while the rest serve;
// a forward that throws inside LibTorch fails only its own request and leaves the model
// usable; SIGTERM while models load drains and exits 0. (Storage faults of the AtomSpace:
// test/atomspace/storage-faults.test.ts.)
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';

import { repoRoot } from '../helpers/python-fixtures.js';
import { embedderCases, embedderRequest, maxDiff, serverFixtures, testApp } from '../helpers/server.js';

const fixtureModels = () => join(serverFixtures(), 'models');

t.test('corrupt, truncated and missing model files fail alone; the rest keep serving', async (t) => {
  const repo = mkdtempSync(join(tmpdir(), 'atenspace-faults-'));
  t.teardown(() => rmSync(repo, { recursive: true, force: true }));
  for (const name of ['demo-embedder', 'truncated', 'garbage', 'missing']) cpSync(join(fixtureModels(), 'demo-embedder'), join(repo, name), { recursive: true });
  const file = join(repo, 'truncated', 'model.pt');
  truncateSync(file, Math.floor(readFileSync(file).length / 2));
  writeFileSync(join(repo, 'garbage', 'model.pt'), Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 31) % 256)));
  rmSync(join(repo, 'missing', 'model.pt'));
  writeFileSync(join(repo, 'bad-manifest'), ''); // a stray file is not a model
  cpSync(join(fixtureModels(), 'demo-embedder'), join(repo, 'bad-json'), { recursive: true });
  writeFileSync(join(repo, 'bad-json', 'atenspace.json'), '{"format": 1, "name": ');

  const { app } = await testApp({ MODEL_REPOSITORY: repo, LOAD_MODELS: 'all' });
  t.teardown(() => app.close());
  const models = Object.fromEntries((await app.inject('/models')).json().models.map((m: { name: string }) => [m.name, m]));
  t.equal(models['demo-embedder'].state, 'ready');
  for (const name of ['truncated', 'garbage', 'missing', 'bad-json']) {
    t.equal(models[name].state, 'failed', `${name} is reported as failed`);
    t.ok(models[name].error.length > 10, `${name} says why: ${models[name].error}`);
    t.notMatch(models[name].error, /\n\s+at |c10::|\.cpp:\d+/, `${name}: no C++ or JS backtrace in the reason`);
  }
  t.match(models.missing.error, /model\.pt/);
  t.match(models['bad-json'].error, /not valid JSON/);

  const failed = await app.inject({ method: 'POST', url: '/infer', payload: embedderRequest([5, 6, 7], 'truncated') });
  t.equal(failed.statusCode, 503);
  t.equal(failed.json().code, 'MODEL_NOT_READY');
  t.match(failed.json().error, /truncated/);
  const reload = await app.inject({ method: 'POST', url: '/models/garbage/load' });
  t.equal(reload.statusCode, 503, 'loading it again fails again, cleanly');
  t.equal(reload.json().code, 'MODEL_NOT_READY');

  const c = embedderCases()[0]!;
  const good = await app.inject({ method: 'POST', url: '/infer', payload: embedderRequest(c.input_ids) });
  t.equal(good.statusCode, 200);
  t.ok(maxDiff(good.json().outputs[0].data, c.expected) < 1e-4, 'the healthy model answers as transformers does');
});

t.test('a forward that throws in LibTorch fails only its own request, even inside a batch', async (t) => {
  // A queue delay so concurrent requests share batches.
  const { app, context } = await testApp({ LOAD_MODELS: 'demo-embedder', MAX_QUEUE_DELAY_MS: '30' });
  t.teardown(() => app.close());
  const cases = embedderCases();
  const before = context.registry.get('demo-embedder')!.stats.executions;
  const requests = cases.map((c) => embedderRequest(c.input_ids));
  const poisoned = embedderRequest([cases[0]!.input_ids[0]!, 999_999, 3]); // a token id past the vocabulary
  const all = await Promise.all([...requests, poisoned].map((payload) => app.inject({ method: 'POST', url: '/infer', payload })));
  const bad = all[all.length - 1]!;
  t.equal(bad.statusCode, 422);
  t.equal(bad.json().code, 'FORWARD_FAILED');
  t.match(bad.json().error, /could not run these inputs: index out of range/);
  t.notMatch(bad.json().error, /c10::|\.cpp:\d+|Exception raised from/, 'no C++ backtrace');
  cases.forEach((c, i) => {
    t.equal(all[i]!.statusCode, 200, `request ${i} batched with the bad one still succeeds`);
    t.ok(maxDiff(all[i]!.json().outputs[0].data, c.expected) < 1e-4, `request ${i} equals transformers`);
  });
  const executions = context.registry.get('demo-embedder')!.stats.executions - before;
  t.ok(executions < all.length, `the requests did share batches (${executions} executions for ${all.length} requests)`);
  // And the model goes on serving.
  const after = await app.inject({ method: 'POST', url: '/infer', payload: requests[1] });
  t.ok(maxDiff(after.json().outputs[0].data, cases[1]!.expected) < 1e-4);
});

t.test('SIGTERM while models are loading drains and exits 0', async (t) => {
  const port = 19000 + (process.pid % 1000);
  const child = spawn(process.execPath, [...process.execArgv, join(repoRoot, 'src', 'server', 'main.ts'), '--port', String(port), '--host', '127.0.0.1'], {
    env: { ...process.env, GRPC_PORT: '0', MODEL_REPOSITORY: fixtureModels(), LOAD_MODELS: 'all', LOG_LEVEL: 'info', DATA_DIR: mkdtempSync(join(tmpdir(), 'atenspace-data-')) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const listening = new Promise<void>((resolve) => {
    const onData = (d: Buffer) => {
      log += d;
      if (/Server listening/.test(log)) resolve();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (d) => (log += d));
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await listening;
  // A request that waits for its model to finish loading, then SIGTERM.
  const inFlight = fetch(`http://127.0.0.1:${port}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'demo-embedder', text: 'still loading' }) }).then(
    (r) => r.status,
    (e: Error) => `connection error: ${e.message}`,
  );
  await new Promise((r) => setTimeout(r, 20));
  child.kill('SIGTERM');
  const code = await exited;
  t.equal(code, 0, 'exit code 0');
  const stopping = log.indexOf('draining in-flight requests');
  t.ok(stopping >= 0, 'logged the drain');
  const ready = log.indexOf('"msg":"ready"');
  t.ok(ready === -1 || ready > stopping, 'SIGTERM arrived before start-up finished');
  t.match(log, /"msg":"stopped"/);
  const status = await inFlight;
  t.ok(status === 200 || status === 503, `the request in flight got an answer (${status})`);
  // The fixture repository's 'broken' model logs its load failure; nothing else may log an error.
  const errors = log.split('\n').filter((line) => /"level":(50|60)/.test(line) && !/"model":"broken"/.test(line));
  t.same(errors, [], 'no other error or fatal log lines');
  t.notMatch(log.slice(stopping), /"msg":"ready"/, 'not announced ready once stopping');
});
