/**
 * In-process figures through the Node binding (`TorchScriptModule.forward`, awaited one call at
 * a time), the yardsticks for the HTTP service:
 *   - tiny: p50 of one forward of `x + 1` on float32 [1, 4], the same call POST /infer makes,
 *     back to back, and again with 100 µs of JS work between calls (as a server does: the
 *     worker and the JS thread then have to be woken up, which a tight loop never pays);
 *   - minilm: sequences/s at batch 1, 2, 4, 8, 16, 32 (sequence 32), as python_inprocess.py.
 * Each figure is the best 1-second window during which other processes left the CPUs alone.
 *
 * Usage: node dist/bench/serving/node-inprocess.js MODELS_DIR THREADS SECONDS_PER_BATCH
 * Prints one JSON line; with each figure, how many cores other processes used meanwhile.
 */
import { readFileSync } from 'node:fs';

import { TorchScriptModule, configureRuntime, tensor } from '../../src/runtime/index.js';

const BATCHES = [1, 2, 4, 8, 16, 32];
const SEQ = 32;

/** The same ids as python_inprocess.py and the HTTP request bodies. */
const tokenIds = (batch: number) => tensor('int64', [batch, SEQ], Array.from({ length: batch * SEQ }, (_, i) => 1000 + ((i * 7919) % 29000)));

function median(samples: number[]): number {
  const s = [...samples].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** CPU seconds all processes have used since boot (Linux /proc/stat, USER_HZ ticks). */
function machineBusySeconds(): number {
  try {
    const [user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    return (user! + nice! + system! + irq! + softirq! + steal!) / 100;
  } catch {
    return NaN;
  }
}

const ownSeconds = () => {
  const u = process.cpuUsage(); // the whole process: the addon's threads included
  return (u.user + u.system) / 1e6;
};

/** Busy-wait on the JS thread, standing in for a server's per-request work. */
function spin(micros: number): void {
  const until = performance.now() + micros / 1000;
  while (performance.now() < until);
}

const QUIET_CORES = 0.15;

interface Window {
  calls: number;
  seconds: number;
  calls_per_s: number;
  median_ms: number;
  other_cores: number;
}

/** Call `fn` one at a time for `seconds` (at least `minCalls` times), `gapMicros` of JS work between calls. */
async function window(fn: () => Promise<unknown>, seconds: number, minCalls: number, gapMicros = 0): Promise<Window> {
  const samples: number[] = [];
  const busy0 = machineBusySeconds();
  const own0 = ownSeconds();
  const start = performance.now();
  while (samples.length < minCalls || performance.now() - start < seconds * 1000) {
    if (gapMicros) spin(gapMicros);
    const t0 = performance.now();
    await fn();
    samples.push(performance.now() - t0);
  }
  const elapsed = (performance.now() - start) / 1000;
  const other = (machineBusySeconds() - busy0 - (ownSeconds() - own0)) / elapsed;
  return { calls: samples.length, seconds: elapsed, calls_per_s: samples.length / elapsed, median_ms: median(samples), other_cores: Math.max(0, other) };
}

/**
 * 1-second windows for `seconds`, continued (up to 4x as long) until one window had the CPUs to
 * itself (other processes < QUIET_CORES); the best quiet window, or the best window if none was.
 * `better` says which of two windows is the better one.
 */
async function measure(fn: () => Promise<unknown>, seconds: number, better: (a: Window, b: Window) => boolean, gapMicros = 0) {
  const windows: Window[] = [];
  const start = performance.now();
  let quiet: Window[] = [];
  for (;;) {
    windows.push(await window(fn, 1, 3, gapMicros));
    const spent = (performance.now() - start) / 1000;
    quiet = windows.filter((w) => w.other_cores < QUIET_CORES);
    if ((spent >= seconds && quiet.length) || spent >= 4 * seconds) break;
  }
  const best = (quiet.length ? quiet : windows).reduce((a, b) => (better(b, a) ? b : a));
  return { ...best, windows: windows.length, quiet_windows: quiet.length };
}

const faster = (a: Window, b: Window) => a.calls_per_s > b.calls_per_s;
const lowerP50 = (a: Window, b: Window) => a.median_ms < b.median_ms;

const [models, threadsArg, secondsArg] = process.argv.slice(2);
const seconds = Number(secondsArg ?? 3);
const info = configureRuntime({ workers: 1, intraOpThreads: Number(threadsArg ?? 2) });
const results: Record<string, unknown> = { runtime: 'node', libtorch: info.libtorch, threads: info.intraOpThreads, seq: SEQ };

const tiny = await TorchScriptModule.load(`${models}/tiny/model.pt`);
const x = tensor('float32', [1, 4], [0, 0, 0, 0]);
for (let i = 0; i < 2000; i++) await tiny.forward([x]);
const tinyRun = await measure(() => tiny.forward([x]), 2, lowerP50);
results.tiny = { ...tinyRun, p50_us: tinyRun.median_ms * 1000 };
const gapRun = await measure(() => tiny.forward([x]), 2, lowerP50, 100);
results.tiny_gap100 = { ...gapRun, p50_us: gapRun.median_ms * 1000 };
console.error(`node tiny forward p50: ${(tinyRun.median_ms * 1000).toFixed(1)} us back to back, ${(gapRun.median_ms * 1000).toFixed(1)} us with 100 us of JS work between calls`);

const minilm = await TorchScriptModule.load(`${models}/minilm/model.pt`);
const batches: Record<string, unknown> = {};
for (const batch of BATCHES) {
  const inputs = [tokenIds(batch), tensor('int64', [batch, SEQ], new Array(batch * SEQ).fill(1))];
  const call = () => minilm.forward(inputs);
  await window(call, 0.5, 3); // the profiling executor specialises on the first calls
  const m = await measure(call, seconds, faster);
  batches[batch] = { ...m, sequences_per_s: batch * m.calls_per_s };
  console.error(`node batch ${batch}: ${(batch * m.calls_per_s).toFixed(1)} seq/s (${m.quiet_windows}/${m.windows} quiet windows)`);
}
results.batches = batches;
console.log(JSON.stringify(results));
