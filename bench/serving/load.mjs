/**
 * One load point: autocannon POSTs the same KServe-v2 JSON body over N keep-alive connections
 * for a fixed time after a warm-up, and prints one JSON line with requests/s and latency
 * percentiles (exact, from every response's own timing, in ms with µs resolution: autocannon's
 * summary histogram has whole-millisecond buckets). With --metrics it also diffs the server's
 * Prometheus metrics around the measured window (stage times, batch sizes). With --server-pid
 * it splits the machine's CPU time in the window into server, load generator and everything
 * else (other processes on a shared machine: the noise indicator).
 *
 * Usage: node bench/serving/load.mjs --url http://127.0.0.1:PORT/infer --body minilm|tiny
 *          [--connections 1] [--duration 8] [--warmup 2] [--metrics URL] [--server-pid PID] [--label TEXT]
 * Only 127.0.0.1 / localhost targets are accepted.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import autocannon from 'autocannon';

import { scrape, serverSide } from './prom.mjs';

const SEQ = 32;

/** The request bodies, byte for byte the same for every server. Ids match the in-process runs. */
const BODIES = {
  minilm: {
    model: 'minilm',
    inputs: [
      { name: 'input_ids', shape: [1, SEQ], datatype: 'INT64', data: Array.from({ length: SEQ }, (_, i) => 1000 + ((i * 7919) % 29000)) },
      { name: 'attention_mask', shape: [1, SEQ], datatype: 'INT64', data: new Array(SEQ).fill(1) },
    ],
    expect: { name: 'embedding', shape: [1, 384] },
  },
  tiny: {
    model: 'tiny',
    inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [0, 0, 0, 0] }],
    expect: { name: 'y', shape: [1, 4] },
  },
};

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    body: { type: 'string', default: 'minilm' },
    connections: { type: 'string', default: '1' },
    duration: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '2' },
    metrics: { type: 'string' },
    'server-pid': { type: 'string' },
    label: { type: 'string', default: '' },
  },
});
const url = new URL(args.url ?? '');
if (!['127.0.0.1', 'localhost'].includes(url.hostname)) throw new Error(`refusing to load ${url.hostname}: only 127.0.0.1`);
const { expect, ...request } = BODIES[args.body] ?? (() => { throw new Error(`--body must be ${Object.keys(BODIES).join(' or ')}`); })();
const body = JSON.stringify(request);
const connections = Number(args.connections);

/** One request first: the server must answer 200 with the expected output, or nothing is measured. */
async function probe() {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(30_000) });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`probe: HTTP ${response.status}: ${text.slice(0, 300)}`);
  const output = JSON.parse(text).outputs?.[0];
  if (output?.name !== expect.name || JSON.stringify(output.shape) !== JSON.stringify(expect.shape)) {
    throw new Error(`probe: expected output ${expect.name} ${JSON.stringify(expect.shape)}, got ${text.slice(0, 300)}`);
  }
}

/** autocannon for `seconds`; resolves with its result and each 2xx response's latency (ms). */
function run(seconds) {
  const latencies = [];
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const instance = autocannon(
      { url: url.href, method: 'POST', headers: { 'content-type': 'application/json' }, body, connections, duration: seconds, timeout: 30 },
      (error, result) => (error ? reject(error) : resolve({ result, latencies, seconds: (performance.now() - started) / 1000 })),
    );
    instance.on('response', (_client, status, _bytes, ms) => {
      if (status >= 200 && status < 300) latencies.push(ms);
    });
  });
}

/** CPU seconds so far: the whole machine's busy time, the server's, and this process's (Linux /proc). */
function cpuTimes(serverPid) {
  try {
    const ticks = 100; // USER_HZ
    const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
    const [user, nice, system, idle, iowait, irq, softirq, steal] = fields.map(Number);
    const busy = (user + nice + system + irq + softirq + steal) / ticks;
    const total = busy + (idle + iowait) / ticks;
    // Fields after the ")" of the command name: utime and stime are the 12th and 13th.
    const stat = serverPid ? readFileSync(`/proc/${serverPid}/stat`, 'utf8') : '';
    const after = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const server = serverPid ? (Number(after[11]) + Number(after[12])) / ticks : 0;
    const self = process.cpuUsage();
    return { busy, total, server, self: (self.user + self.system) / 1e6 };
  } catch {
    return undefined;
  }
}

/** Cores' worth of CPU used in the window by: the server, this load generator, everything else. */
function cpuSplit(before, after, seconds) {
  if (!before || !after) return undefined;
  const cores = (a, b) => (b - a) / seconds;
  const busy = cores(before.busy, after.busy);
  const server = cores(before.server, after.server);
  const loadgen = cores(before.self, after.self);
  return { cpus: (after.total - before.total) / seconds, busy, server, loadgen, other: Math.max(0, busy - server - loadgen) };
}

function percentile(sorted, p) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] : NaN;
}

await probe();
await run(Number(args.warmup));
const before = args.metrics ? await scrape(args.metrics) : undefined;
const cpuBefore = cpuTimes(args['server-pid']);
const { result, latencies, seconds } = await run(Number(args.duration));
const cpuAfter = cpuTimes(args['server-pid']);
const after = args.metrics ? await scrape(args.metrics) : undefined;

latencies.sort((a, b) => a - b);
const out = {
  label: args.label,
  url: url.href,
  body: args.body,
  connections,
  seconds,
  requests: latencies.length,
  requests_per_s: latencies.length / seconds,
  latency_ms: {
    p50: percentile(latencies, 50),
    p90: percentile(latencies, 90),
    p99: percentile(latencies, 99),
    mean: latencies.reduce((a, b) => a + b, 0) / latencies.length,
    max: latencies.at(-1),
  },
  non2xx: result.non2xx,
  errors: result.errors,
  timeouts: result.timeouts,
  cpu_cores: cpuSplit(cpuBefore, cpuAfter, seconds),
  ...(before && after ? { server: serverSide(before, after, request.model) } : {}),
};
console.log(JSON.stringify(out));
