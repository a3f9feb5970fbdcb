/**
 * A private PostgreSQL cluster for a test: initdb into a temporary folder, pg_ctl start on a
 * free loopback port (unix socket in the same folder), trust authentication on loopback only,
 * stopped and removed at teardown. As root, the cluster runs as the unprivileged `postgres`
 * user (PostgreSQL refuses to run as root). The binaries come from the Debian package
 * (/usr/lib/postgresql/<version>/bin, installed by scripts/install-system-deps.sh) or PG_BIN;
 * where they are missing, `postgresSkip()` says why and the test skips.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import pg from 'pg';

import { freePort, systemBinary } from './deploy.js';

/** The newest /usr/lib/postgresql/<version>/bin holding initdb, or PG_BIN. */
function binDir(): string | undefined {
  if (process.env.PG_BIN) return process.env.PG_BIN;
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], 'bin') : undefined;
}

let checked: string | false | undefined;

/** Clusters still running: stopped (immediately) and removed if the test process exits without its teardown. */
const live = new Set<PgCluster>();
process.once('exit', () => {
  for (const cluster of live) cluster.destroy();
});

/** False when initdb/pg_ctl/postgres can run here (installing the Debian package first as root), else why not. */
export function postgresSkip(): string | false {
  if (checked !== undefined) return checked;
  let bin = binDir();
  if (!bin) {
    // Installs scripts/install-system-deps.sh's packages (postgresql among them) when root with apt-get.
    const probe = systemBinary('/usr/lib/postgresql');
    bin = binDir();
    if (!bin) return (checked = `PostgreSQL server binaries not found (no /usr/lib/postgresql/<version>/bin/initdb, PG_BIN unset)${probe.skip ? `: ${probe.skip}` : ''}`);
  }
  for (const tool of ['initdb', 'pg_ctl', 'postgres']) {
    if (!existsSync(join(bin, tool))) return (checked = `${join(bin, tool)} is missing`);
  }
  if (isRoot() && spawnSync('id', ['-u', 'postgres']).status !== 0) return (checked = 'running as root but there is no `postgres` user to run the cluster as (PostgreSQL refuses root)');
  return (checked = false);
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

export interface PgCluster {
  port: number;
  dir: string;
  /** postgres://postgres@127.0.0.1:port/<database> */
  url(database?: string): string;
  /** A new, empty database; its URL. */
  createDatabase(name: string): Promise<string>;
  /** Run SQL as the superuser on a database. */
  query<T extends pg.QueryResultRow = pg.QueryResultRow>(database: string, sql: string, params?: unknown[]): Promise<pg.QueryResult<T>>;
  stop(mode?: 'fast' | 'immediate'): void;
  start(): void;
  /** Ends the cluster and removes its folder. */
  destroy(): void;
  log(): string;
}

/** Run a cluster tool, as `postgres` when we are root. */
function run(bin: string, tool: string, args: string[], timeoutMs = 60_000): { status: number | null; output: string } {
  const command = isRoot() ? 'runuser' : join(bin, tool);
  const argv = isRoot() ? ['-u', 'postgres', '--', join(bin, tool), ...args] : args;
  const res = spawnSync(command, argv, { encoding: 'utf8', timeout: timeoutMs });
  return { status: res.status, output: `${res.stdout ?? ''}${res.stderr ?? ''}${res.error ? res.error.message : ''}` };
}

/** initdb + pg_ctl start; `settings` are extra postgres -c options. */
export async function startCluster(settings: Record<string, string> = {}): Promise<PgCluster> {
  const skip = postgresSkip();
  if (skip) throw new Error(skip);
  const bin = binDir()!;
  const dir = mkdtempSync(join(tmpdir(), 'atenspace-pg-'));
  chmodSync(dir, 0o700);
  if (isRoot()) {
    const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim());
    const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
    chownSync(dir, uid, gid);
  }
  const data = join(dir, 'data');
  const logFile = join(dir, 'postgres.log');
  const init = run(bin, 'initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed (${init.status}): ${init.output.slice(-2000)}`);
  }
  const port = await freePort();
  const options = [`-p ${port}`, `-k ${dir}`, "-c listen_addresses='127.0.0.1'", ...Object.entries(settings).map(([k, v]) => `-c ${k}=${v}`)].join(' ');
  const cluster: PgCluster = {
    port,
    dir,
    url: (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`,
    async createDatabase(name) {
      await cluster.query('postgres', `CREATE DATABASE ${name}`);
      return cluster.url(name);
    },
    async query(database, sql, params) {
      const client = new pg.Client({ connectionString: cluster.url(database) });
      await client.connect();
      try {
        return await client.query(sql, params);
      } finally {
        await client.end();
      }
    },
    start() {
      const res = run(bin, 'pg_ctl', ['-D', data, '-l', logFile, '-o', options, '-w', '-t', '60', 'start']);
      if (res.status !== 0) throw new Error(`pg_ctl start failed (${res.status}): ${res.output}\n${cluster.log().slice(-2000)}`);
    },
    stop(mode = 'fast') {
      const res = run(bin, 'pg_ctl', ['-D', data, '-m', mode, '-w', '-t', '60', 'stop']);
      if (res.status !== 0) throw new Error(`pg_ctl stop failed (${res.status}): ${res.output}`);
    },
    destroy() {
      live.delete(cluster);
      if (existsSync(join(data, 'postmaster.pid'))) run(bin, 'pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      rmSync(dir, { recursive: true, force: true });
    },
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
  };
  try {
    cluster.start();
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  live.add(cluster);
  return cluster;
}
