/**
 * Helpers for the deployment proofs (test/deploy/): the built server (dist/), child processes
 * bound to loopback and killed in teardown, free ports, polling, system binaries
 * (installed by scripts/install-system-deps.sh when missing and possible), and the
 * Dockerfile / compose / dashboard files of the repository.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { DockerfileParser, type Instruction } from 'dockerfile-ast';
import { parse as parseYaml } from 'yaml';

import { repoRoot } from './python-fixtures.js';

export { repoRoot };

export const MAIN_JS = join(repoRoot, 'dist', 'src', 'server', 'main.js');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(join(repoRoot, dir), { recursive: true, encoding: 'utf8' })) {
    if (!entry.endsWith('.ts')) continue;
    newest = Math.max(newest, statSync(join(repoRoot, dir, entry)).mtimeMs);
  }
  return newest;
}

/**
 * `npm run build:ts` (tsc -p tsconfig.build.json) when dist/src/server/main.js is missing or
 * older than a file of src/. Returns tsc's complaint when it exited non-zero but emitted
 * (type errors elsewhere, e.g. in bench/ being edited); throws when nothing was emitted.
 */
export function ensureBuilt(): string | undefined {
  if (existsSync(MAIN_JS) && statSync(MAIN_JS).mtimeMs >= newestMtime('src')) return undefined;
  const res = spawnSync('npm', ['run', '--silent', 'build:ts'], { cwd: repoRoot, encoding: 'utf8', timeout: 180_000 });
  if (!existsSync(MAIN_JS)) throw new Error(`npm run build:ts did not produce ${MAIN_JS}:\n${res.stdout}${res.stderr}`);
  return res.status === 0 ? undefined : `npm run build:ts exited ${res.status}: ${(res.stdout + res.stderr).slice(0, 2000)}`;
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Thrown by a waitFor probe to stop waiting at once (e.g. the process died). */
export class GiveUp extends Error {}

/** Poll `probe` until it returns a value other than undefined/false, or fail after `timeoutMs`. */
export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined | false>, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      if (error instanceof GiveUp) throw error;
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${(lastError as Error).message})` : ''}`);
    }
    await sleep(everyMs);
  }
}

export interface Proc {
  child: ChildProcess;
  name: string;
  /** stdout and stderr so far (the last 64 KiB). */
  output(): string;
  exited: Promise<number | null>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code (null if killed). */
  stop(graceMs?: number): Promise<number | null>;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** Start a child process; it is killed when the test process exits, whatever happens. */
export function startProcess(name: string, command: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Proc {
  const child = spawn(command, args, { cwd: options.cwd ?? repoRoot, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let log = '';
  const append = (chunk: Buffer) => {
    log += chunk.toString();
    if (log.length > 65536) log = log.slice(-65536);
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  const exited = new Promise<number | null>((resolve) => {
    child.once('error', (error) => {
      log += `\n[${name}: ${error.message}]`;
      live.delete(child);
      resolve(null);
    });
    child.once('exit', (code) => {
      live.delete(child);
      resolve(code);
    });
  });
  return {
    child,
    name,
    output: () => log,
    exited,
    async stop(graceMs = 10_000) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        const code = await exited;
        clearTimeout(timer);
        return code;
      }
      return exited;
    },
  };
}

const tempDirs: string[] = [];
process.once('exit', () => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/**
 * Settings for a test server on loopback; DATA_DIR (the AtomSpace journal) is a fresh temporary
 * folder, removed when the test process exits, unless `env` names one.
 */
export function serverEnv(port: number, env: Record<string, string>): NodeJS.ProcessEnv {
  const dataDir = mkdtempSync(join(tmpdir(), 'atenspace-data-'));
  tempDirs.push(dataDir);
  return {
    ...process.env,
    DATA_DIR: dataDir,
    HOST: '127.0.0.1',
    PORT: String(port),
    DEVICE: 'cpu',
    LOG_LEVEL: 'warn',
    WORKER_THREADS: '2',
    INTRA_OP_THREADS: '1',
    // No gRPC unless a test asks: servers started side by side would all want the default 8081.
    GRPC_PORT: '0',
    ...env,
  };
}

/** `node dist/src/server/main.js` on 127.0.0.1:port, resolved once /health/ready answers 200. */
export async function startServer(port: number, env: Record<string, string>, readyTimeoutMs = 90_000): Promise<Proc> {
  const proc = startProcess('server', process.execPath, [MAIN_JS], { env: serverEnv(port, env) });
  await waitReady(proc, port, readyTimeoutMs);
  return proc;
}

export async function waitReady(proc: Proc, port: number, timeoutMs: number): Promise<void> {
  try {
    await waitFor(`${proc.name} on 127.0.0.1:${port}/health/ready`, timeoutMs, async () => {
      if (proc.child.exitCode !== null) throw new GiveUp(`${proc.name} exited with ${proc.child.exitCode}`);
      const res = await fetch(`http://127.0.0.1:${port}/health/ready`, { signal: AbortSignal.timeout(2000) });
      return res.status === 200;
    });
  } catch (error) {
    await proc.stop(2000);
    throw new Error(`${(error as Error).message}\n--- ${proc.name} output ---\n${proc.output().slice(-4000)}`);
  }
}

export async function postJson(base: string, path: string, body: unknown): Promise<{ status: number; json: any; text: string }> {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(60_000),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text };
}

/**
 * A system binary at an absolute path, installing the Debian packages of
 * scripts/install-system-deps.sh first when it is missing and we are root with apt-get.
 * `skip` is false when it is there, else the reason it is missing and could not be installed.
 */
export function systemBinary(path: string): { path: string; skip: string | false } {
  if (existsSync(path)) return { path, skip: false };
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  const apt = spawnSync('sh', ['-c', 'command -v apt-get'], { encoding: 'utf8' }).status === 0;
  if (!root || !apt) {
    return { path, skip: `${path} is missing and cannot be installed here (${!apt ? 'no apt-get' : 'not root'}): run scripts/install-system-deps.sh as root` };
  }
  const res = spawnSync('bash', [join(repoRoot, 'scripts', 'install-system-deps.sh')], { encoding: 'utf8', timeout: 280_000 });
  if (existsSync(path)) return { path, skip: false };
  return { path, skip: `${path} is missing and scripts/install-system-deps.sh could not install it (exit ${res.status}): ${(res.stderr || res.stdout).slice(-500)}` };
}

// --- the repository's deployment files -------------------------------------------------------

export const readRepo = (path: string) => readFileSync(join(repoRoot, path), 'utf8');

/** docker-compose.yml as a plain object, YAML merge keys (<<) applied as Compose applies them. */
export function composeFile(): any {
  return parseYaml(readRepo('docker-compose.yml'), { merge: true });
}

/** The services that run this repository's image (built from the context `.`). */
export function appServices(compose: any): [string, any][] {
  return Object.entries<any>(compose.services).filter(([, s]) => s.build !== undefined && (typeof s.build === 'string' ? s.build : s.build.context) === '.');
}

export function dashboardFile(): any {
  return JSON.parse(readRepo('deploy/grafana/dashboards/atenspace.json'));
}

export interface DashboardQuery {
  panel: string;
  refId: string;
  expr: string;
}

/** Every PromQL expression of the dashboard's panels (rows' nested panels included). */
export function dashboardQueries(dashboard: any): DashboardQuery[] {
  const out: DashboardQuery[] = [];
  const visit = (panels: any[]) => {
    for (const panel of panels ?? []) {
      for (const target of panel.targets ?? []) {
        if (typeof target.expr === 'string' && target.expr.trim()) out.push({ panel: panel.title, refId: target.refId, expr: target.expr });
      }
      visit(panel.panels);
    }
  };
  visit(dashboard.panels);
  return out;
}

/** Grafana's `label_values(metric{selector}, label)` variable queries, parsed. */
export function dashboardVariables(dashboard: any): { name: string; match: string; label: string }[] {
  return (dashboard.templating?.list ?? [])
    .filter((v: any) => v.type === 'query')
    .map((v: any) => {
      const query = typeof v.query === 'string' ? v.query : v.query?.query;
      const m = /^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$/.exec(query ?? '');
      if (!m) throw new Error(`variable ${v.name}: not a label_values(metric, label) query: ${query}`);
      return { name: v.name, match: m[1]!.trim(), label: m[2]! };
    });
}

/**
 * Replace Grafana's variables the way Grafana would with every variable on "All"
 * (allValue `.*`) and $__rate_interval at `rateInterval`.
 */
export function grafanaInterpolate(expr: string, dashboard: any, rateInterval: string): string {
  let out = expr.replace(/\$__rate_interval\b|\$\{__rate_interval\}/g, rateInterval).replace(/\$__interval\b|\$\{__interval\}/g, rateInterval);
  for (const v of dashboard.templating?.list ?? []) {
    const all = v.allValue ?? '.*';
    out = out.replace(new RegExp(`\\$\\{${v.name}(?::[a-z]+)?\\}|\\$${v.name}\\b`, 'g'), all);
  }
  return out;
}

// --- Dockerfile ----------------------------------------------------------------------------

export interface Stage {
  name: string | null;
  base: string;
  instructions: Instruction[];
}

/** The Dockerfile's global ARG defaults and its stages, in order. */
export function dockerfileStages(content: string): { globalArgs: Map<string, string>; stages: Stage[] } {
  const df = DockerfileParser.parse(content);
  const globalArgs = new Map<string, string>();
  for (const arg of df.getInitialARGs()) {
    const p = arg.getProperty();
    if (p) globalArgs.set(p.getName(), p.getValue() ?? '');
  }
  const stages: Stage[] = [];
  for (const instruction of df.getInstructions()) {
    if (instruction.getKeyword() === 'FROM') {
      const args = instruction.getArguments().map((a) => a.getValue());
      const asIndex = args.findIndex((a) => a.toLowerCase() === 'as');
      stages.push({ name: asIndex >= 0 ? args[asIndex + 1]! : null, base: args[0]!, instructions: [] });
    } else if (stages.length) {
      stages[stages.length - 1]!.instructions.push(instruction);
    }
  }
  return { globalArgs, stages };
}

/** The exec-form (JSON array) part of an instruction such as HEALTHCHECK ... CMD [..] or ENTRYPOINT [..]. */
export function execForm(instruction: Instruction): string[] {
  const content = instruction.getArgumentsContent() ?? '';
  const start = content.indexOf('[');
  if (start < 0) throw new Error(`${instruction.getKeyword()} is not in exec form: ${content}`);
  return JSON.parse(content.slice(start)) as string[];
}
