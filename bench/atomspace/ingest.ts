/**
 * Bulk ingest over HTTP with snapshots on: the server runs in this process (so that its event
 * loop can be watched with monitorEventLoopDelay, 1 ms resolution), the client in another
 * (ingest-client.ts). Reports atoms/s, the event loop's max delay overall and per second, and
 * the snapshots written meanwhile. SNAPSHOT_BYTES is the server's default unless set.
 *
 * Usage: node dist/bench/atomspace/ingest.js [N=1000000] [D=384] [MODE=import] [BATCH=1000] [STREAMS=1]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import { buildApp } from '../../src/server/app.js';
import { loadConfig } from '../../src/server/config.js';

const [nArg, dArg, mode = 'import', batchArg = '1000', streamsArg = '1'] = process.argv.slice(2);
const N = Number(nArg ?? 1_000_000);
const D = Number(dArg ?? 384);
const dataDir = mkdtempSync(join(process.env.BENCH_DATA ?? tmpdir(), 'ingest-bench-'));
const config = loadConfig({ ...process.env, MODEL_REPOSITORY: '/nonexistent', LOAD_MODELS: 'none', LOG_LEVEL: 'warn', DATA_DIR: dataDir, HOST: '127.0.0.1' }, []);
const { app, context } = await buildApp(config, { logger: false });
await app.listen({ port: 0, host: '127.0.0.1' });
const port = (app.server.address() as AddressInfo).port;

const overall = monitorEventLoopDelay({ resolution: 1 });
const perSecond = monitorEventLoopDelay({ resolution: 1 });
overall.enable();
perSecond.enable();
const timeline: { t: number; atoms: number; max_delay_ms: number; snapshotting: boolean }[] = [];
const started = performance.now();
let snapshotsStarted = 0;
let wasSnapshotting = false;
const sampler = setInterval(() => {
  timeline.push({ t: Math.round((performance.now() - started) / 1000), atoms: context.atomspace.size, max_delay_ms: +(perSecond.max / 1e6).toFixed(1), snapshotting: context.atomspace.snapshotting });
  perSecond.reset();
}, 1000);
const watcher = setInterval(() => {
  const now = context.atomspace.snapshotting;
  if (now && !wasSnapshotting) snapshotsStarted++;
  wasSnapshotting = now;
}, 20);

const client = spawn(process.execPath, [join(fileURLToPath(import.meta.url), '..', 'ingest-client.js'), String(port), String(N), String(D), mode, batchArg, streamsArg], { stdio: ['ignore', 'pipe', 'inherit'] });
let out = '';
client.stdout.on('data', (d: Buffer) => (out += d));
await new Promise((resolve) => client.on('close', resolve));
const clientSummary = JSON.parse(out.trim().split('\n').at(-1)!) as Record<string, unknown>;
// Wait for a snapshot still being written, with the loop still watched.
while (context.atomspace.snapshotting) await new Promise((r) => setTimeout(r, 50));
clearInterval(sampler);
clearInterval(watcher);
overall.disable();
const files = readdirSync(dataDir).map((f) => ({ file: f, mib: +(statSync(join(dataDir, f)).size / 2 ** 20).toFixed(1) }));
const summary = {
  client: clientSummary,
  atoms_in_space: context.atomspace.size,
  event_loop_delay_ms: { max: +(overall.max / 1e6).toFixed(1), p99: +(overall.percentile(99) / 1e6).toFixed(1), mean: +(overall.mean / 1e6).toFixed(2) },
  worst_seconds: [...timeline].sort((a, b) => b.max_delay_ms - a.max_delay_ms).slice(0, 5),
  snapshots_started: snapshotsStarted,
  snapshot_bytes_setting: config.snapshotBytes,
  files_after: files,
  rss_mib: +(process.memoryUsage().rss / 2 ** 20).toFixed(0),
};
console.log(JSON.stringify(summary, null, 1));
await app.close();
rmSync(dataDir, { recursive: true, force: true });
