// The monitoring stack, for real: the built server (node dist/src/server/main.js) over the test
// model repository, the real Prometheus server (Debian's /usr/bin/prometheus) running the
// repository's deploy/prometheus/prometheus.yml with only its target addresses rewritten (and a
// 1 s scrape interval), traffic to several models; then Prometheus' HTTP API must hold the
// per-model series, and EVERY PromQL expression of the Grafana dashboard (and its variables'
// label_values queries) must return data. All processes listen on 127.0.0.1 only and are killed
// in teardown. The AtomSpace panels are asserted when the server exposes their metrics.
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import sharp from 'sharp';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';

import {
  type Proc,
  GiveUp,
  appServices,
  composeFile,
  dashboardFile,
  dashboardQueries,
  dashboardVariables,
  ensureBuilt,
  freePort,
  grafanaInterpolate,
  postJson,
  readRepo,
  sleep,
  startProcess,
  startServer,
  systemBinary,
  waitFor,
} from '../helpers/deploy.js';
import { embedderRequest, serverFixtures } from '../helpers/server.js';

const prometheusBin = systemBinary('/usr/bin/prometheus');
const SCRAPE_S = 1;
const RATE_INTERVAL = '1m';
const ATOM_METRICS = /atenspace_atoms\b|atenspace_similarity_duration_seconds/;

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

t.test('Prometheus scrapes the server with the repository\'s config; every dashboard query returns data', { skip: prometheusBin.skip, timeout: 150_000 }, async (t) => {
  const complaint = ensureBuilt();
  if (complaint) t.comment(complaint);
  const dir = mkdtempSync(join(tmpdir(), 'atenspace-prom-'));
  const procs: Proc[] = [];
  t.teardown(async () => {
    for (const p of procs.reverse()) await p.stop(5000);
    rmSync(dir, { recursive: true, force: true });
  });

  // 1. The server: embedder loaded at start-up, the others loaded lazily (model cache misses).
  const port = await freePort();
  const server = await startServer(port, {
    MODEL_REPOSITORY: join(serverFixtures(), 'models'),
    LOAD_MODELS: 'demo-embedder',
    RESPONSE_CACHE_SIZE: '16MiB',
  });
  procs.push(server);
  const base = `http://127.0.0.1:${port}`;

  // 2. Prometheus with deploy/prometheus/prometheus.yml, targets rewritten: the CPU service to
  //    the test server, other app services (the gpu profile, not running) to a closed port.
  const apps = appServices(composeFile());
  const closedPort = await freePort();
  const rewrite = new Map(apps.map(([name, s]) => [`${name}:${String(s.ports[0]).split(':').pop()}`, name === 'atenspace' ? `127.0.0.1:${port}` : `127.0.0.1:${closedPort}`]));
  const original = parseYaml(readRepo('deploy/prometheus/prometheus.yml'));
  const config = structuredClone(original);
  config.global = { ...config.global, scrape_interval: `${SCRAPE_S}s`, evaluation_interval: `${SCRAPE_S}s` };
  for (const job of config.scrape_configs) {
    for (const sc of job.static_configs ?? []) {
      sc.targets = sc.targets.map((target: string) => {
        const to = rewrite.get(target);
        if (!to) throw new Error(`prometheus.yml target ${target} is not an app service of docker-compose.yml`);
        return to;
      });
    }
  }
  const configPath = join(dir, 'prometheus.yml');
  writeFileSync(configPath, stringifyYaml(config));
  const promPort = await freePort();
  const prometheus = startProcess('prometheus', prometheusBin.path, [
    `--config.file=${configPath}`,
    `--storage.tsdb.path=${join(dir, 'tsdb')}`,
    `--web.listen-address=127.0.0.1:${promPort}`,
    '--log.level=warn',
  ]);
  procs.push(prometheus);
  const prom = `http://127.0.0.1:${promPort}`;
  await waitFor('Prometheus /-/ready', 30_000, async () => {
    if (prometheus.child.exitCode !== null) throw new GiveUp(`prometheus exited: ${prometheus.output().slice(-2000)}`);
    return (await fetch(`${prom}/-/ready`, { signal: AbortSignal.timeout(2000) })).status === 200;
  });

  const query = async (expr: string): Promise<Sample[]> => {
    const res = await fetch(`${prom}/api/v1/query?${new URLSearchParams({ query: expr })}`, { signal: AbortSignal.timeout(10_000) });
    const body = (await res.json()) as { status: string; error?: string; data?: { resultType: string; result: Sample[] } };
    if (body.status !== 'success') throw new Error(`PromQL error for ${expr}: ${body.error}`);
    return body.data!.result;
  };

  const up = await waitFor('the atenspace target to be up', 20_000, async () => {
    const r = await query(`up{job="atenspace", instance="127.0.0.1:${port}"} == 1`);
    return r.length ? r : undefined;
  });
  t.equal(up[0]!.metric.variant, 'cpu', 'the target keeps its labels from prometheus.yml');

  // 3. Traffic, twice (scrapes in between), so that every rate() has an increase to see.
  const png = await sharp({ create: { width: 32, height: 32, channels: 3, background: { r: 200, g: 60, b: 30 } } }).png().toBuffer();
  const pngOther = await sharp({ create: { width: 40, height: 24, channels: 3, background: { r: 20, g: 160, b: 90 } } }).png().toBuffer();
  const metricsText = async () => (await fetch(`${base}/metrics`)).text();
  const atomsRoute = (await postJson(base, '/atoms/similar', {})).json?.code !== 'NOT_FOUND';
  t.comment(atomsRoute ? 'the server has the /atoms endpoints: sending atoms traffic' : 'the server has no /atoms endpoints yet: AtomSpace panels are checked only if their metrics appear');
  let atomCount = 0;
  const traffic = async (round: number) => {
    const statuses: Record<string, number> = {};
    const send = async (label: string, path: string, body: unknown) => {
      const res = await postJson(base, path, body);
      statuses[label] = res.status;
      return res;
    };
    // embedding by task: the same text twice (response cache miss, then hit), and a burst that batches
    await send('embed-1', '/infer', { model: 'demo-embedder', text: 'hello world' });
    const second = await send('embed-2', '/infer', { model: 'demo-embedder', text: 'hello world' });
    t.ok(second.json?.embeddings, `round ${round}: embeddings`);
    await Promise.all(Array.from({ length: 8 }, (_, i) => send(`burst-${i}`, '/infer', { model: 'demo-embedder', text: `text number ${i} of round ${round}` })));
    await send('raw', '/infer', embedderRequest([2, 15, 27, 3]));
    await send('gpt2', '/infer', { model: 'demo-gpt2', text: 'Once upon a time', max_new_tokens: 4 });
    await send('gpt2-again', '/infer', { model: 'demo-gpt2', text: 'Once upon a time', max_new_tokens: 4 });
    await send('vit', '/infer', { model: 'demo-vit', image: (round === 1 ? png : pngOther).toString('base64'), top_k: 2 });
    const bad = await postJson(base, '/infer', { model: 'demo-embedder', text: 'x', max_new_tokens: 3 });
    t.equal(bad.status, 400, `round ${round}: a client error`);
    if (atomsRoute) {
      for (const name of ['cat', 'dog', 'teapot']) {
        const res = await send(`atom-${name}`, '/atoms', { type: 'ConceptNode', name: `${name}-${round}-${atomCount++}`, text: `a ${name}`, model: 'demo-embedder' });
        t.ok(res.status < 300, `POST /atoms: ${res.status} ${res.text.slice(0, 300)}`);
      }
      const similar = await send('similar', '/atoms/similar', { text: 'a kitten', model: 'demo-embedder', k: 2 });
      t.ok(similar.status < 300, `POST /atoms/similar: ${similar.status} ${similar.text.slice(0, 300)}`);
    }
    const failed = Object.entries(statuses).filter(([, s]) => s !== 200 && s !== 201);
    t.same(failed, [], `round ${round}: every request succeeded`);
  };
  const scrapes = async (n: number) => sleep(n * SCRAPE_S * 1000 + 300);
  await traffic(1);
  await scrapes(2);
  await traffic(2);
  await scrapes(2);

  // 4. Per-model series arrived.
  const exposed = await metricsText();
  const requests = await waitFor('per-model request series', 15_000, async () => {
    const r = await query('sum by (model, outcome) (atenspace_requests_total{job="atenspace"})');
    const models = new Set(r.map((s) => s.metric.model));
    return ['demo-embedder', 'demo-gpt2', 'demo-vit'].every((m) => models.has(m)) ? r : undefined;
  });
  const count = (model: string, outcome: string) => Number(requests.find((s) => s.metric.model === model && s.metric.outcome === outcome)?.value[1] ?? 0);
  t.equal(count('demo-embedder', 'success'), 22, `demo-embedder successes (${count('demo-embedder', 'success')})`);
  t.equal(count('demo-gpt2', 'success'), 4, 'demo-gpt2 successes');
  t.equal(count('demo-vit', 'success'), 2, 'demo-vit successes');
  t.equal(count('demo-embedder', 'client_error'), 2, 'demo-embedder client errors');
  const stages = await query('count by (model, stage) (atenspace_request_duration_seconds_count{job="atenspace"})');
  for (const model of ['demo-embedder', 'demo-gpt2', 'demo-vit']) {
    const seen = stages.filter((s) => s.metric.model === model).map((s) => s.metric.stage).sort();
    t.ok(['preprocess', 'compute', 'total'].every((stage) => seen.includes(stage)), `${model}: latency by stage (${seen.join(', ')})`);
  }
  const batches = await query('sum by (model) (atenspace_batch_size_count{job="atenspace"})');
  t.same(batches.map((s) => s.metric.model).filter((m) => m !== 'demo-gpt2').sort(), ['demo-embedder', 'demo-vit'], 'batch sizes per model (batched tasks)');
  const loaded = await query('atenspace_models_loaded{job="atenspace"}');
  t.equal(Number(loaded[0]?.value[1]), 3, 'three models loaded (one at start-up, two lazily)');
  const misses = await query('sum by (model) (atenspace_model_cache_misses_total)');
  t.same(misses.map((s) => s.metric.model).sort(), ['demo-gpt2', 'demo-vit'], 'lazy loads are model cache misses');
  const rcHits = await query('sum by (model) (atenspace_response_cache_hits_total)');
  t.ok(Number(rcHits.find((s) => s.metric.model === 'demo-embedder')?.value[1]) >= 2, 'response cache hits for the repeated text');

  // 5. Every PromQL expression of the dashboard, as Grafana sends it with "All" selected.
  const dashboard = dashboardFile();
  const queries = dashboardQueries(dashboard);
  for (const q of queries) {
    const expr = grafanaInterpolate(q.expr, dashboard, RATE_INTERVAL);
    t.notMatch(expr, /\$/, `${q.panel} ${q.refId}: every variable interpolated`);
    const atoms = ATOM_METRICS.test(expr);
    const metric = /atenspace_atoms\b|atenspace_similarity_duration_seconds/.exec(expr)?.[0];
    if (atoms && !new RegExp(`^# TYPE ${metric} `, 'm').test(exposed)) {
      t.pass(`${q.panel} ${q.refId}`, { skip: `the server does not expose ${metric} yet (AtomSpace feature)` });
      continue;
    }
    let result: Sample[] = [];
    try {
      result = await waitFor(`data for ${q.panel} ${q.refId}`, 10_000, async () => {
        const r = await query(expr);
        return r.some((s) => Number.isFinite(Number(s.value[1]))) ? r : undefined;
      });
    } catch (error) {
      t.fail(`${q.panel} ${q.refId}: ${(error as Error).message}\n${expr}\nlast result: ${JSON.stringify(await query(expr).catch((e) => String(e)))}`);
      continue;
    }
    const values = result.map((s) => `${Object.values(s.metric).join(',') || '{}'}=${Number(s.value[1]).toPrecision(3)}`);
    t.pass(`${q.panel} ${q.refId}: ${result.length} series, e.g. ${values.slice(0, 3).join(' ')}`);
  }

  // 6. The variables' label_values(metric{selector}, label) queries, through the series API.
  for (const v of dashboardVariables(dashboard)) {
    const match = grafanaInterpolate(v.match, dashboard, RATE_INTERVAL);
    const res = await fetch(`${prom}/api/v1/series?${new URLSearchParams({ 'match[]': match })}`);
    const body = (await res.json()) as { status: string; data: Record<string, string>[] };
    const values = [...new Set(body.data.map((s) => s[v.label]).filter(Boolean))].sort();
    t.ok(values.length > 0, `variable ${v.name}: label_values(${match}, ${v.label}) = ${values.join(', ')}`);
    if (v.name === 'model') t.same(values, ['demo-embedder', 'demo-gpt2', 'demo-vit']);
    if (v.name === 'instance') t.same(values, [`127.0.0.1:${port}`]);
  }
});
