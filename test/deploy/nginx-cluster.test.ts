// The `cluster` profile of docker-compose.yml and deploy/nginx/nginx.conf, statically: nginx -t
// accepts the shipped file (Debian's nginx), `docker-compose --profile cluster config` accepts the
// profile, and everything they name agrees with the server and with each other (ports, settings,
// the replicas' service name, PostgreSQL's credentials, Prometheus' discovery of the replicas,
// body size and keep-alive limits). nginx-failover.test.ts runs the same nginx file for real.
import t from 'tap';
import { spawnSync } from 'node:child_process';

import { parse as parseYaml } from 'yaml';

import { describeSettings, loadConfig } from '../../src/server/config.js';
import { composeFile, dockerfileStages, readRepo, repoRoot, systemBinary } from '../helpers/deploy.js';
import { NGINX_CONF, nginxBinary, nginxConfigFor, nginxTest, shippedNginx } from '../helpers/nginx.js';
import { testApp } from '../helpers/server.js';

const SETTINGS = new Set(describeSettings().map((s) => s.env));
const nginx = nginxBinary();
const directive = (text: string, name: string) => [...text.matchAll(new RegExp(`^\\s*${name}\\s+([^;]+);`, 'gm'))].map((m) => m[1]!.trim());

t.test('nginx -t accepts the shipped config (and rejects a broken one)', { skip: nginx.skip }, async (t) => {
  const ok = nginxTest(nginx.path, nginxConfigFor(18080, ['127.0.0.1:18081', '127.0.0.1:18082']));
  t.equal(ok.status, 0, `nginx -t: ${ok.output}`);
  const broken = nginxTest(nginx.path, nginxConfigFor(18080, ['127.0.0.1:18081']).replace('proxy_next_upstream error', 'proxy_next_upstream eror'));
  t.not(broken.status, 0, `a misspelt value is refused: ${broken.output.split('\n')[0]}`);
});

t.test('nginx.conf: failover as documented, limits that fit the server', async (t) => {
  const { text, upstream } = shippedNginx();
  const next = directive(text, 'proxy_next_upstream')[0]!.split(/\s+/);
  t.ok(['error', 'timeout', 'http_502', 'http_503'].every((c) => next.includes(c)), `passed on: ${next.join(' ')}`);
  t.notOk(next.includes('non_idempotent'), 'POSTs sent to a replica that fails are not sent again (not non_idempotent)');
  t.match(upstream.params, /max_fails=\d+/, 'passive health check: max_fails');
  t.match(upstream.params, /fail_timeout=\d+s/, 'and fail_timeout');
  t.ok(directive(text, 'zone').length === 1, 'the upstream state is shared by the workers (zone)');
  t.same(directive(text, 'proxy_http_version'), ['1.1'], 'HTTP/1.1 to the replicas (keep-alive)');
  t.same(directive(text, 'proxy_set_header').filter((h) => h.startsWith('Connection')), ['Connection ""'], 'with the Connection header cleared');
  t.same(directive(text, 'proxy_buffering'), ['off'], 'streams (SSE) are not buffered');

  const { app } = await testApp({ LOAD_MODELS: 'none' });
  t.teardown(() => app.close());
  const config = loadConfig({}, []);
  const bodyLimit = /^(\d+)m$/.exec(directive(text, 'client_max_body_size')[0]!)?.[1];
  t.equal(Number(bodyLimit) * 2 ** 20, config.bodyLimit, `client_max_body_size is the server's BODY_LIMIT (${config.bodyLimit} bytes)`);
  const keepalive = Number(/^(\d+)s$/.exec(directive(text, 'keepalive_timeout')[0]!)?.[1]) * 1000;
  t.ok(keepalive < app.server.keepAliveTimeout, `nginx drops idle upstream connections (${keepalive} ms) before the server does (${app.server.keepAliveTimeout} ms)`);
  for (const body of [...text.matchAll(/return (\d{3}) '([^']+)'/g)]) {
    const json = JSON.parse(body[2]!.replace(/\\n$/, ''));
    t.ok(json.error && /^[A-Z_]+$/.test(json.code), `nginx's own ${body[1]} has the server's error shape ({error, code: ${json.code}})`);
  }
  t.ok(directive(text, 'error_page').some((e) => e.startsWith('502')), 'nginx\'s 502 is answered in that shape');
});

t.test('docker-compose.yml profile cluster: PostgreSQL, replicas and nginx agree with each other and the server', async (t) => {
  const bin = systemBinary('/usr/bin/docker-compose');
  let compose: any;
  if (bin.skip) {
    t.pass('docker-compose --profile cluster config', { skip: bin.skip });
    compose = composeFile();
  } else {
    const res = spawnSync(bin.path, ['--profile', 'cluster', '-f', 'docker-compose.yml', 'config'], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000, env: { ...process.env, DOCKER_HOST: 'unix:///nonexistent.sock' } });
    t.equal(res.status, 0, `docker-compose --profile cluster config: ${res.stderr.slice(0, 1500)}`);
    compose = parseYaml(res.stdout); // variables interpolated, merge keys applied, as Compose runs it
  }
  const services = compose.services;
  for (const name of ['postgres', 'atenspace-replica', 'nginx']) t.same(services[name]?.profiles, ['cluster'], `${name} is in the cluster profile`);

  // nginx runs the shipped file and publishes the port it listens on.
  const { listenPort, upstream } = shippedNginx();
  const lb = services.nginx;
  const mount = lb.volumes.map((v: any) => (typeof v === 'string' ? { source: v.split(':')[0], target: v.split(':')[1] } : v)).find((v: any) => v.target === '/etc/nginx/nginx.conf');
  t.ok(mount && String(mount.source).endsWith(NGINX_CONF), `nginx's /etc/nginx/nginx.conf is ${NGINX_CONF}`);
  const published = lb.ports.map((p: any) => (typeof p === 'string' ? Number(p.split(':').pop()) : p.target));
  t.same(published, [listenPort], `nginx publishes the port it listens on (${listenPort})`);
  t.equal(lb.depends_on['atenspace-replica']?.condition, 'service_healthy', 'nginx starts once the replicas are healthy (it resolves them at start-up)');

  // The upstream is the replicas' service, at the port the server listens on.
  const replica = services[upstream.host];
  t.ok(replica, `the upstream ${upstream.host} is a compose service`);
  const runtime = dockerfileStages(readRepo('Dockerfile')).stages.at(-1)!;
  const imageEnv: Record<string, string> = {};
  for (const i of runtime.instructions.filter((x) => x.getKeyword() === 'ENV')) {
    for (const p of (i as any).getProperties() as { getName(): string; getValue(): string | null }[]) if (SETTINGS.has(p.getName())) imageEnv[p.getName()] = p.getValue() ?? '';
  }
  for (const key of Object.keys(replica.environment)) t.ok(SETTINGS.has(key), `replica env ${key} is a server setting`);
  const config = loadConfig({ ...imageEnv, ...replica.environment }, []);
  t.equal(upstream.port, config.port, `nginx reaches the replicas on the server's PORT (${config.port})`);
  t.ok(replica.expose.map(String).includes(String(config.port)), 'which the replicas expose');
  t.notOk(replica.ports, 'the replicas publish no host port (nginx is the way in)');
  t.equal(replica.image, services.atenspace.image, 'the replicas run the image the atenspace service builds');
  t.ok(replica.deploy.replicas >= 2, `${replica.deploy.replicas} replicas`);

  // They share the AtomSpace in the compose PostgreSQL, with its credentials.
  t.equal(config.atomspaceStore, 'postgres', 'ATOMSPACE_STORE=postgres');
  const db = new URL(config.databaseUrl!);
  const pg = services.postgres;
  t.ok(services[db.hostname] === pg, `DATABASE_URL's host ${db.hostname} is the postgres service`);
  t.equal(Number(db.port), 5432, 'on PostgreSQL\'s port');
  t.equal(decodeURIComponent(db.username), pg.environment.POSTGRES_USER, 'as POSTGRES_USER');
  t.equal(decodeURIComponent(db.password), pg.environment.POSTGRES_PASSWORD, 'with POSTGRES_PASSWORD');
  t.equal(db.pathname.slice(1), pg.environment.POSTGRES_DB, 'on POSTGRES_DB');
  t.equal(replica.depends_on.postgres?.condition, 'service_healthy', 'replicas wait for PostgreSQL\'s health check');
  t.match(JSON.stringify(pg.healthcheck.test), /pg_isready/, 'which is pg_isready');

  // Volumes: the shared model repository, but not the single server's data volume (one journal per process).
  const targets = replica.volumes.map((v: any) => (typeof v === 'string' ? { source: v.split(':')[0], target: v.split(':')[1] } : v));
  t.ok(targets.some((v: any) => v.target === config.modelRepository && v.source === 'models'), `the models volume is their MODEL_REPOSITORY (${config.modelRepository})`);
  t.notOk(targets.some((v: any) => v.target === config.dataDir), `no shared ${config.dataDir}: each replica keeps its own (the image's VOLUME)`);

  // Prometheus finds every replica by the service name, at the server's port.
  const prom = parseYaml(readRepo('deploy/prometheus/prometheus.yml'));
  const dns = prom.scrape_configs.flatMap((j: any) => j.dns_sd_configs ?? []);
  t.same(dns.map((d: any) => [d.names, d.port]), [[[upstream.host], config.port]], 'Prometheus discovers the replicas through Docker\'s DNS');
});
