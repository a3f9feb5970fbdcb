/**
 * deploy/nginx/nginx.conf as the tests run it: the shipped file with only its listen address and
 * its upstream server rewritten (one `server` line per local replica, with the shipped line's
 * parameters), started with Debian's nginx under a temporary prefix.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { type Proc, GiveUp, readRepo, startProcess, systemBinary, waitFor } from './deploy.js';

export const NGINX_CONF = 'deploy/nginx/nginx.conf';
export const nginxBinary = () => systemBinary('/usr/sbin/nginx');

/** The shipped file's `listen PORT;` and `server HOST:PORT params;` of the upstream block. */
export function shippedNginx(): { text: string; listenPort: number; upstream: { name: string; host: string; port: number; params: string } } {
  const text = readRepo(NGINX_CONF);
  const listens = [...text.matchAll(/^\s*listen\s+(\d+)\s*;/gm)];
  if (listens.length !== 1) throw new Error(`${NGINX_CONF}: expected one 'listen PORT;', found ${listens.length}`);
  const upstreamBlock = /upstream\s+(\S+)\s*\{([^}]*)\}/.exec(text);
  if (!upstreamBlock) throw new Error(`${NGINX_CONF}: no upstream block`);
  const servers = [...upstreamBlock[2]!.matchAll(/^\s*server\s+([\w.-]+):(\d+)([^;]*);/gm)];
  if (servers.length !== 1) throw new Error(`${NGINX_CONF}: expected one upstream server line, found ${servers.length}`);
  const [, host, port, params] = servers[0]!;
  return { text, listenPort: Number(listens[0]![1]), upstream: { name: upstreamBlock[1]!, host: host!, port: Number(port), params: params!.trim() } };
}

/** The shipped config listening on 127.0.0.1:listenPort in front of the given replica addresses. */
export function nginxConfigFor(listenPort: number, replicas: string[]): string {
  const { text, upstream } = shippedNginx();
  const serverLine = new RegExp(`^(\\s*)server\\s+${upstream.host.replace(/[.-]/g, '\\$&')}:${upstream.port}([^;]*);`, 'm');
  return text
    .replace(/^(\s*)listen\s+\d+\s*;/m, `$1listen 127.0.0.1:${listenPort};`)
    .replace(serverLine, (_m, indent: string, params: string) => replicas.map((r) => `${indent}server ${r}${params};`).join('\n'));
}

export interface Nginx {
  proc: Proc;
  prefix: string;
  /** Every access log line so far (the shipped config logs to stdout, a file here). */
  accessLog(): string[];
  stop(): Promise<void>;
}

/** `nginx -t` on a config text under a fresh prefix: status and output. */
export function nginxTest(bin: string, conf: string): { status: number | null; output: string } {
  const prefix = mkdtempSync(join(tmpdir(), 'atenspace-nginx-t-'));
  try {
    writeFileSync(join(prefix, 'nginx.conf'), conf);
    // stdout to a file: the config's access_log /dev/stdout cannot be opened on a pipe (a socket)
    const stdout = openSync(join(prefix, 'stdout'), 'w');
    try {
      const res = spawnSync(bin, ['-t', '-p', `${prefix}/`, '-c', join(prefix, 'nginx.conf'), '-e', join(prefix, 'error.log')], { encoding: 'utf8', timeout: 30_000, stdio: ['ignore', stdout, 'pipe'] });
      return { status: res.status, output: res.stderr };
    } finally {
      closeSync(stdout);
    }
  } finally {
    rmSync(prefix, { recursive: true, force: true });
  }
}

/** Start nginx in the foreground with `conf` under a temporary prefix; resolves once it accepts. */
export async function startNginx(bin: string, conf: string, listenPort: number): Promise<Nginx> {
  const prefix = mkdtempSync(join(tmpdir(), 'atenspace-nginx-'));
  writeFileSync(join(prefix, 'nginx.conf'), conf);
  // The access log goes to /dev/stdout: a file here (nginx cannot open /dev/stdout on the socket
  // that a piped stdout is); `exec` keeps the shell's pid, so stopping the process stops nginx.
  const accessLog = join(prefix, 'access.log');
  const proc = startProcess('nginx', 'sh', ['-c', 'exec "$0" "$@" >"$ACCESS_LOG"', bin, '-p', `${prefix}/`, '-c', join(prefix, 'nginx.conf'), '-e', join(prefix, 'error.log'), '-g', 'daemon off;'], {
    env: { ...process.env, ACCESS_LOG: accessLog },
  });
  const log = () => (existsSync(accessLog) ? readFileSync(accessLog, 'utf8') : '');
  const stop = async () => {
    await proc.stop(5000);
    rmSync(prefix, { recursive: true, force: true });
  };
  try {
    await waitFor(`nginx on 127.0.0.1:${listenPort}`, 15_000, async () => {
      if (proc.child.exitCode !== null) throw new GiveUp(`nginx exited with ${proc.child.exitCode}: ${proc.output().slice(-2000)}`);
      await fetch(`http://127.0.0.1:${listenPort}/health/live`, { signal: AbortSignal.timeout(2000) });
      return true;
    });
  } catch (error) {
    await stop();
    throw error;
  }
  return { proc, prefix, accessLog: () => log().split('\n').filter(Boolean), stop };
}

export interface AccessLine {
  request: string;
  status: number;
  upstreams: string[];
  upstreamStatuses: string[];
}

/** One line of the shipped `upstream` log_format. */
export function parseAccessLine(line: string): AccessLine | undefined {
  const m = /"([^"]*)" (\d{3}) \d+ rt=\S+ upstream=(.*) ustatus=(.*) urt=/.exec(line);
  if (!m) return undefined;
  // nginx separates the servers tried with ", " and internal redirects with " : "
  const split = (s: string) => s.split(/\s*,\s*|\s+:\s+/).map((x) => x.trim()).filter((x) => x && x !== '-');
  return { request: m[1]!, status: Number(m[2]), upstreams: split(m[3]!), upstreamStatuses: split(m[4]!) };
}
