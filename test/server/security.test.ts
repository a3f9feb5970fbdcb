// Security: with API_KEY set, every write and management route of the spec refuses missing
// and wrong keys; model files never leave the repository; secrets never reach the logs;
// CORS is off unless configured; the docs pages carry helmet's headers.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';

import t from 'tap';

import { buildApp } from '../../src/server/app.js';
import { loadConfig } from '../../src/server/config.js';
import { operationsOf } from '../helpers/openapi-fuzz.js';
import { serverFixtures, testApp } from '../helpers/server.js';

const KEY = 'k3y-that-must-never-leak-0123456789';
/** POST routes that only read (inference, similarity): open unless AUTH_READS. */
const READS = ['POST /infer', 'POST /v2/models/{name}/infer', 'POST /v2/models/{name}/versions/{version}/infer', 'POST /', 'POST /generate', 'POST /generate_stream', 'POST /embed', 'POST /tokenize', 'POST /v1/embeddings', 'POST /v1/completions', 'POST /v1/chat/completions', 'POST /atoms/similar', 'POST /v2/repository/index'];
const PUBLIC = ['GET /health/live', 'GET /health/ready', 'GET /v2/health/live', 'GET /v2/health/ready'];

const urlOf = (path: string) => path.replace('{name}', 'demo-embedder').replace('{id}', '1').replace('{version}', '1');

t.test('API_KEY: every write and management route of the spec refuses missing and wrong keys', async (t) => {
  const { app } = await testApp({ LOAD_MODELS: 'demo-embedder', API_KEY: KEY });
  t.teardown(() => app.close());
  await app.ready();
  const ops = operationsOf(app.swagger() as unknown as { paths: Record<string, Record<string, unknown>> });
  const writes = ops.filter((op) => op.method !== 'GET' && !READS.includes(`${op.method} ${op.path}`));
  t.ok(writes.length >= 8, `${writes.length} write and management routes: ${writes.map((op) => `${op.method} ${op.path}`).join(', ')}`);
  for (const op of writes) {
    for (const authorization of [undefined, 'Bearer wrong', `Bearer ${KEY}x`, `Bearer ${KEY.slice(0, -1)}`, `Basic ${KEY}`, KEY]) {
      const res = await app.inject({ method: op.method as 'POST', url: urlOf(op.path), payload: {}, headers: authorization ? { authorization } : {} });
      if (res.statusCode !== 401) t.fail(`${op.method} ${op.path} with ${authorization ?? 'no key'}: ${res.statusCode}`);
    }
    const withKey = await app.inject({ method: op.method as 'POST', url: urlOf(op.path), payload: {}, headers: { authorization: `Bearer ${KEY}` } });
    t.not(withKey.statusCode, 401, `${op.method} ${op.path} accepts the key (${withKey.statusCode})`);
    t.notMatch(withKey.body + JSON.stringify(withKey.headers), KEY, `${op.method} ${op.path} does not echo the key`);
  }
  const refused = await app.inject({ method: 'POST', url: '/models/demo-embedder/unload' });
  t.same(refused.json(), { error: 'this endpoint needs Authorization: Bearer <API_KEY>', code: 'UNAUTHORIZED' });
  for (const read of READS) {
    const [method, path] = read.split(' ') as [string, string];
    t.not((await app.inject({ method: method as 'POST', url: urlOf(path), payload: {} })).statusCode, 401, `${read} is a read: open by default`);
  }
});

t.test('AUTH_READS: every route but the health probes needs the key', async (t) => {
  const { app } = await testApp({ LOAD_MODELS: 'none', API_KEY: KEY, AUTH_READS: 'true' });
  t.teardown(() => app.close());
  await app.ready();
  for (const op of operationsOf(app.swagger() as unknown as { paths: Record<string, Record<string, unknown>> })) {
    const res = await app.inject({ method: op.method as 'GET', url: urlOf(op.path), ...(op.method === 'GET' ? {} : { payload: {} }) });
    const expected = PUBLIC.includes(`${op.method} ${op.path}`) ? 'open' : 'closed';
    t.equal(res.statusCode === 401 ? 'closed' : 'open', expected, `${op.method} ${op.path} is ${expected}`);
  }
});

t.test('model files never leave the repository', async (t) => {
  const outside = mkdtempSync(join(tmpdir(), 'atenspace-outside-'));
  const repo = mkdtempSync(join(tmpdir(), 'atenspace-jail-'));
  t.teardown(() => {
    rmSync(outside, { recursive: true, force: true });
    rmSync(repo, { recursive: true, force: true });
  });
  const demo = join(serverFixtures(), 'models', 'demo-embedder');
  cpSync(demo, join(outside, 'elsewhere'), { recursive: true });
  cpSync(demo, join(repo, 'demo-embedder'), { recursive: true });
  symlinkSync(join(outside, 'elsewhere'), join(repo, 'linked-folder')); // a model folder that is a link out
  cpSync(demo, join(repo, 'dotdot-file'), { recursive: true });
  const manifest = JSON.parse(readFileSync(join(demo, 'atenspace.json'), 'utf8')) as { file: string };
  writeFileSync(join(repo, 'dotdot-file', 'atenspace.json'), JSON.stringify({ ...manifest, file: `../../${outside.split('/').pop()}/elsewhere/model.pt` }));
  cpSync(demo, join(repo, 'absolute-file'), { recursive: true });
  writeFileSync(join(repo, 'absolute-file', 'atenspace.json'), JSON.stringify({ ...manifest, file: join(outside, 'elsewhere', 'model.pt') }));
  cpSync(demo, join(repo, 'linked-file'), { recursive: true });
  rmSync(join(repo, 'linked-file', 'model.pt'));
  symlinkSync(join(outside, 'elsewhere', 'model.pt'), join(repo, 'linked-file', 'model.pt'));
  mkdirSync(join(repo, 'nested'));

  const { app } = await testApp({ MODEL_REPOSITORY: repo, LOAD_MODELS: 'none' });
  t.teardown(() => app.close());
  const names = (await app.inject('/models')).json().models.map((m: { name: string }) => m.name).sort();
  t.same(names, ['absolute-file', 'demo-embedder', 'dotdot-file', 'linked-file'], 'a folder linked from outside is not a model');
  for (const url of ['/models/linked-folder/load', '/models/..%2F..%2Fetc/load', '/models/%2Fetc%2Fpasswd/load', '/models/..%2Fjail/load', '/models/%2E%2E/load', '/v2/repository/models/..%2Fdemo-embedder/load']) {
    const res = await app.inject({ method: 'POST', url });
    t.equal(res.statusCode, 404, `${url}: not found`);
  }
  for (const [name, why] of [
    ['dotdot-file', /outside the model's folder/],
    ['absolute-file', /outside the model's folder/],
    ['linked-file', /a link to .*outside the model repository/],
  ] as const) {
    const res = await app.inject({ method: 'POST', url: `/models/${name}/load` });
    t.equal(res.statusCode, 503, `${name} does not load`);
    t.match(res.json().error, why, `${name}: ${res.json().error}`);
  }
  t.equal((await app.inject({ method: 'POST', url: '/models/demo-embedder/load' })).statusCode, 200, 'a model inside loads');
});

t.test('the API key and credentials never reach the logs', async (t) => {
  let logs = '';
  const stream = new Writable({ write: (chunk, _enc, done) => ((logs += chunk), done()) });
  const config = loadConfig({ MODEL_REPOSITORY: join(serverFixtures(), 'models'), LOAD_MODELS: 'demo-embedder', DEVICE: 'cpu', API_KEY: KEY, DATA_DIR: mkdtempSync(join(tmpdir(), 'atenspace-data-')) }, []);
  const { app, loadStartupModels } = await buildApp(config, { logger: { level: 'trace', stream } });
  t.teardown(() => app.close());
  await loadStartupModels();
  const headers = [{ authorization: `Bearer ${KEY}` }, { authorization: `Bearer ${KEY}-wrong` }, { 'x-api-key': KEY, cookie: `session=${KEY}` }];
  for (const h of headers) {
    await app.inject({ method: 'POST', url: '/models/demo-embedder/load', headers: h });
    await app.inject({ method: 'POST', url: '/atoms', headers: h, payload: { type: 'NoSuchType', name: 'x' } });
    await app.inject({ method: 'POST', url: '/infer', headers: h, payload: { model: 'demo-embedder', text: 'hi' } });
    await app.inject({ method: 'POST', url: '/infer', headers: h, payload: '{broken' });
  }
  t.ok(logs.length > 1000, 'logged at trace level');
  t.notMatch(logs, KEY, 'the key appears nowhere in the logs');
});

t.test('CORS: off unless CORS_ORIGINS', async (t) => {
  const off = await testApp({ LOAD_MODELS: 'none' });
  t.teardown(() => off.app.close());
  const preflight = { method: 'OPTIONS' as const, url: '/infer', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } };
  t.equal((await off.app.inject(preflight)).headers['access-control-allow-origin'], undefined, 'no preflight answer');
  t.equal((await off.app.inject({ url: '/models', headers: { origin: 'https://evil.example' } })).headers['access-control-allow-origin'], undefined);

  const on = await testApp({ LOAD_MODELS: 'none', CORS_ORIGINS: 'https://app.example' });
  t.teardown(() => on.app.close());
  const allowed = await on.app.inject({ ...preflight, headers: { ...preflight.headers, origin: 'https://app.example' } });
  t.equal(allowed.headers['access-control-allow-origin'], 'https://app.example');
  t.equal((await on.app.inject({ url: '/models', headers: { origin: 'https://app.example' } })).headers['access-control-allow-origin'], 'https://app.example');
  t.equal((await on.app.inject({ url: '/models', headers: { origin: 'https://evil.example' } })).headers['access-control-allow-origin'], undefined, 'other origins still refused');
});

t.test('the docs pages carry security headers', async (t) => {
  const { app } = await testApp({ LOAD_MODELS: 'none' });
  t.teardown(() => app.close());
  for (const url of ['/docs', '/docs/static/swagger-ui.css', '/docs/json']) {
    const res = await app.inject(url);
    t.equal(res.statusCode, 200, url);
    t.match(res.headers['content-security-policy'], /default-src 'self'/, `${url}: CSP`);
    t.notMatch(res.headers['content-security-policy'], /upgrade-insecure-requests/, `${url}: works over plain http`);
    t.equal(res.headers['x-content-type-options'], 'nosniff', `${url}: nosniff`);
    t.equal(res.headers['x-frame-options'], 'SAMEORIGIN', `${url}: frame guard`);
  }
});
