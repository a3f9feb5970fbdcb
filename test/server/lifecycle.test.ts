// npm start's process: settings validated at start-up; SIGTERM drains in-flight requests,
// unloads models and exits 0.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { Agent, request } from 'node:http';
import { join } from 'node:path';

import { repoRoot } from '../helpers/python-fixtures.js';
import { serverFixtures } from '../helpers/server.js';

const main = join(repoRoot, 'src', 'server', 'main.ts');
const nodeArgs = [...process.execArgv, main];

t.test('a bad setting stops start-up with a clear message', async (t) => {
  const res = spawnSync(process.execPath, [...nodeArgs, '--port', 'eighty'], { encoding: 'utf8', timeout: 60_000 });
  t.equal(res.status, 2);
  t.match(res.stderr, /--port must be an integer from 0 to 65535, got 'eighty'/);
  const env = spawnSync(process.execPath, nodeArgs, { encoding: 'utf8', timeout: 60_000, env: { ...process.env, DEVICE: 'tpu' } });
  t.equal(env.status, 2);
  t.match(env.stderr, /DEVICE must be cpu, cuda, cuda:N or auto, got 'tpu'/);
  const unknown = spawnSync(process.execPath, [...nodeArgs, '--colour', 'blue'], { encoding: 'utf8', timeout: 60_000 });
  t.equal(unknown.status, 2);
  t.match(unknown.stderr, /Unknown option '--colour'/);
});

t.test('SIGTERM: in-flight requests finish, then the process exits 0', async (t) => {
  const port = 18000 + (process.pid % 1000);
  const child = spawn(process.execPath, [...nodeArgs, '--port', String(port), '--host', '127.0.0.1'], {
    env: { ...process.env, GRPC_PORT: '0', MODEL_REPOSITORY: join(serverFixtures(), 'models'), LOAD_MODELS: 'slow', LOG_LEVEL: 'info', MAX_BATCH_SIZE: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout.on('data', (d) => (log += d));
  child.stderr.on('data', (d) => (log += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    const ready = await fetch(`${base}/health/ready`).then((r) => r.status === 200, () => false);
    if (ready) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  t.match(log, /"msg":"ready"/, 'JSON logs');
  const payload = JSON.stringify({ model: 'slow', inputs: [{ name: 'x', shape: [1, 384], datatype: 'FP32', data: new Array(384).fill(0.1) }] });
  const inFlight = Array.from({ length: 4 }, () =>
    fetch(`${base}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: payload }).then((r) => r.status),
  );
  await new Promise((r) => setTimeout(r, 50));
  child.kill('SIGTERM');
  const statuses = await Promise.all(inFlight);
  t.same(statuses, [200, 200, 200, 200], 'requests in flight at SIGTERM completed');
  t.equal(await exited, 0, 'exit code 0');
  t.match(log, /draining in-flight requests/);
  t.match(log, /"msg":"stopped"/);
  const after = await fetch(`${base}/health/live`).then(() => 'connected', () => 'refused');
  t.equal(after, 'refused', 'no longer listening');
});

t.test('SIGTERM under keep-alive load (a balancer): answers say Connection: close, no 503, a prompt exit', async (t) => {
  const port = 19000 + (process.pid % 1000);
  const child = spawn(process.execPath, [...nodeArgs, '--port', String(port), '--host', '127.0.0.1'], {
    env: { ...process.env, GRPC_PORT: '0', MODEL_REPOSITORY: join(serverFixtures(), 'models'), LOAD_MODELS: 'slow', LOG_LEVEL: 'warn', MAX_BATCH_SIZE: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    if (await fetch(`${base}/health/ready`).then((r) => r.status === 200, () => false)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  // Like a balancer: a few kept-alive connections, each sending its next request as soon as the last is answered.
  const agent = new Agent({ keepAlive: true, maxSockets: 3 });
  const payload = JSON.stringify({ model: 'slow', inputs: [{ name: 'x', shape: [1, 384], datatype: 'FP32', data: new Array(384).fill(0.1) }] });
  const outcomes: string[] = [];
  let sigtermAt = 0;
  let stop = false;
  const once = () =>
    new Promise<string>((resolve) => {
      const req = request({ host: '127.0.0.1', port, path: '/infer', method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(`${res.statusCode}${res.headers.connection === 'close' ? ' close' : ''}`));
      });
      req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      req.end(payload);
    });
  const loops = Array.from({ length: 3 }, async () => {
    while (!stop) {
      const outcome = await once();
      outcomes.push(`${sigtermAt ? 'after' : 'before'} ${outcome}`);
      if (sigtermAt && outcome.match(/^E|error/)) break; // the server has gone: a balancer would try another
    }
  });
  await new Promise((r) => setTimeout(r, 500));
  sigtermAt = Date.now();
  child.kill('SIGTERM');
  const code = await exited;
  const seconds = (Date.now() - sigtermAt) / 1000;
  stop = true;
  await Promise.all(loops);
  agent.destroy();
  t.equal(code, 0, 'exit code 0');
  t.ok(seconds < 10, `exited ${seconds.toFixed(1)} s after SIGTERM (not at the keep-alive timeout)`);
  t.notOk(outcomes.some((o) => o.includes(' 503')), `no 503 from the closing server (${[...new Set(outcomes)].join(', ')})`);
  t.ok(outcomes.some((o) => o === 'after 200 close'), 'answers after SIGTERM tell the client to close the connection');
});
