// docker/entrypoint.sh and the Dockerfile's HEALTHCHECK, run for real outside a container:
//  - a repository with models: served as is (no export), the HEALTHCHECK command (taken from
//    the Dockerfile) exits 0 once ready, SIGTERM reaches the server (exec) which drains and
//    exits 0, and the HEALTHCHECK then exits 1;
//  - an empty repository (given as --model-repository): the demo models are exported into it
//    with python3 -m exporter demo, then served.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { type Proc, dockerfileStages, ensureBuilt, execForm, freePort, readRepo, repoRoot, serverEnv, startProcess, waitReady } from '../helpers/deploy.js';
import { serverFixtures } from '../helpers/server.js';

const ENTRYPOINT = join(repoRoot, 'docker', 'entrypoint.sh');

/** The HEALTHCHECK command of the Dockerfile's runtime stage, run as Docker would (exec form). */
function healthcheck(port: number): number | null {
  const { stages } = dockerfileStages(readRepo('Dockerfile'));
  const health = stages[stages.length - 1]!.instructions.find((i) => i.getKeyword() === 'HEALTHCHECK')!;
  const [cmd, ...args] = execForm(health);
  const res = spawnSync(cmd!, args, { env: { ...process.env, PORT: String(port) }, timeout: 10_000 });
  return res.status;
}

t.test('entrypoint: a repository with models is served as is; HEALTHCHECK and SIGTERM work', { timeout: 90_000 }, async (t) => {
  const complaint = ensureBuilt();
  if (complaint) t.comment(complaint);
  const port = await freePort();
  t.equal(healthcheck(port), 1, 'HEALTHCHECK fails while nothing listens');
  const proc = startProcess('entrypoint', ENTRYPOINT, [], {
    env: serverEnv(port, { MODEL_REPOSITORY: join(serverFixtures(), 'models'), LOAD_MODELS: 'demo-embedder', LOG_LEVEL: 'info' }),
  });
  t.teardown(() => proc.stop(5000));
  await waitReady(proc, port, 60_000);
  t.match(proc.output(), /entrypoint: serving the models in /, 'no export');
  t.notMatch(proc.output(), /exporting the demo models/);
  t.equal(healthcheck(port), 0, 'HEALTHCHECK passes once /health/ready is 200');
  const code = await proc.stop(15_000);
  t.equal(code, 0, 'SIGTERM to the entrypoint\'s process reaches the server (exec), which drains and exits 0');
  t.match(proc.output(), /"msg":"stopped"/);
  t.equal(healthcheck(port), 1, 'HEALTHCHECK fails after it stopped');
});

t.test('entrypoint: an empty repository gets the demo models, then they are served', { timeout: 120_000 }, async (t) => {
  ensureBuilt();
  const dir = mkdtempSync(join(tmpdir(), 'atenspace-models-'));
  const port = await freePort();
  let proc: Proc | undefined;
  t.teardown(async () => {
    await proc?.stop(5000);
    rmSync(dir, { recursive: true, force: true });
  });
  // the flag wins over MODEL_REPOSITORY, for the entrypoint as for the server
  const env = serverEnv(port, { LOAD_MODELS: 'none', MODEL_REPOSITORY: join(dir, 'not-this-one') });
  proc = startProcess('entrypoint', ENTRYPOINT, ['--model-repository', dir], { env });
  await waitReady(proc, port, 100_000);
  t.match(proc.output(), /holds no model: exporting the demo models/, 'exported');
  const folders = readdirSync(dir).filter((f) => !f.startsWith('.')).sort();
  t.same(folders, ['demo-embedder', 'demo-gpt2', 'demo-vit', 'demo-yolos'], 'into the given repository');
  const models = (await (await fetch(`http://127.0.0.1:${port}/models`)).json()) as { models?: { name: string }[] } | { name: string }[];
  const names = (Array.isArray(models) ? models : models.models ?? []).map((m) => m.name).sort();
  t.same(names, folders, 'the server lists them');
  const res = await fetch(`http://127.0.0.1:${port}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'demo-embedder', text: 'hello' }) });
  t.equal(res.status, 200, 'and serves them (lazy load)');
  t.equal(await proc.stop(15_000), 0);
  t.notOk(readdirSync(dir).includes('.export.lock'), 'no lock file left behind');
});
