// Soak summary: reads the driver's samples.jsonl and driver.json, judges the run against the
// soak goals, and writes
//   RESULTS/soak.csv       the samples (downsampled to at most 400 rows)
//   RESULTS/summary.json   figures, the request mix with status counts, pass/fail per goal
//   RESULTS/soak.png       RSS, V8 heap, fds/threads and live native tensors vs requests (SVG drawn
//                          here, rasterised by sharp)
// Goals: RSS after warm-up (the first sample at WARMUP_FRACTION of the requests) grows < 5% by the
// end of the load; open fds end where they started once the client's connections are closed, and
// stay flat during the load; no native tensor is left alive after the idle period (inputs: none;
// outputs: back to the count before the load), and no 5xx or connection error.
//
// Usage: node bench/soak/summarize.mjs WORK_DIR RESULTS_DIR [--warmup-fraction 0.1] [--setting "text"]
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';

const [work, results] = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const WARMUP_FRACTION = Number(opt('warmup-fraction', 0.1));
const setting = opt('setting', '');
mkdirSync(results, { recursive: true });

const samples = readFileSync(join(work, 'samples.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const driver = JSON.parse(readFileSync(join(work, 'driver.json'), 'utf8'));
const TOTAL = driver.requests;
// phases: 'start' (one sample before the load, after a GC when the driver could trigger one),
// 'load', 'idle' (client connections closed), 'gc' (after the idle period and a GC).
const load = samples.filter((s) => s.phase === 'load');
const idle = samples.filter((s) => s.phase === 'idle' || s.phase === 'gc');
const start = samples.find((s) => s.phase === 'start') ?? load[0];
const warm = load.find((s) => s.requests >= WARMUP_FRACTION * TOTAL) ?? load[load.length - 1];
const end = load[load.length - 1];
const afterIdle = idle[idle.length - 1] ?? end;
const gcNote = driver.gc_signal ? ' (after a full GC)' : ' (no GC forced: garbage may still hold tensors)';
const afterWarm = load.filter((s) => s.requests >= warm.requests);
const max = (list, key) => Math.max(...list.map((s) => s[key]).filter(Number.isFinite));
const round = (x, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

// Least-squares slope of RSS over requests after warm-up, in MiB per 10,000 requests.
function slope(list, key) {
  const n = list.length;
  if (n < 3) return NaN;
  const mx = list.reduce((s, p) => s + p.requests, 0) / n;
  const my = list.reduce((s, p) => s + p[key], 0) / n;
  let num = 0, den = 0;
  for (const p of list) {
    num += (p.requests - mx) * (p[key] - my);
    den += (p.requests - mx) ** 2;
  }
  return den ? (num / den) * 10000 : NaN;
}

const rssGrowth = (end.rss_mib - warm.rss_mib) / warm.rss_mib;
const fdsDuringMax = max(afterWarm, 'fds');
const goals = {
  rss_growth_under_5_percent: rssGrowth < 0.05,
  fds_flat: afterIdle.fds <= start.fds + 2 && fdsDuringMax <= warm.fds + 8,
  no_native_tensor_leak: afterIdle.live_input_tensors === 0 && afterIdle.live_tensors <= start.live_tensors && afterIdle.live_modules === start.live_modules,
  no_5xx_or_connection_errors: driver.failures === 0,
};
const statuses = {};
for (const k of Object.values(driver.by_kind)) for (const [status, n] of Object.entries(k.statuses)) statuses[status] = (statuses[status] ?? 0) + n;
const pick = (s) => ({ requests: s.requests, t: s.t, rss_mib: s.rss_mib, rss_anon_mib: s.rss_anon_mib, heap_used_mib: s.heap_used_mib, heap_total_mib: s.heap_total_mib, response_cache_mib: s.response_cache_mib, fds: s.fds, threads: s.threads, live_tensors: s.live_tensors, live_tensor_bytes: s.live_tensor_bytes, live_input_tensors: s.live_input_tensors, live_modules: s.live_modules, atoms: s.atoms });
const summary = {
  setting,
  requests: TOTAL,
  concurrency: driver.concurrency,
  load_seconds: driver.load_seconds,
  requests_per_second: driver.requests_per_second,
  samples: samples.length,
  warmup_fraction: WARMUP_FRACTION,
  at_start: pick(start),
  after_warmup: pick(warm),
  at_end_of_load: pick(end),
  at_start_note: `before the load${driver.gc_signal ? ', after a full GC' : ''}`,
  after_idle: { ...pick(afterIdle), idle_seconds: driver.idle_seconds, after_gc: Boolean(driver.gc_signal) },
  rss_growth_percent: round(rssGrowth * 100, 2),
  rss_max_after_warmup_mib: max(afterWarm, 'rss_mib'),
  rss_slope_mib_per_10k_requests: round(slope(afterWarm, 'rss_mib'), 3),
  rss_slope_second_half_mib_per_10k_requests: round(slope(load.filter((s) => s.requests >= TOTAL / 2), 'rss_mib'), 3),
  rss_anon_slope_mib_per_10k_requests: round(slope(afterWarm, 'rss_anon_mib'), 3),
  heap_total_slope_mib_per_10k_requests: round(slope(afterWarm, 'heap_total_mib'), 3),
  heap_used_slope_mib_per_10k_requests: round(slope(afterWarm, 'heap_used_mib'), 3),
  fds_max_during_load: max(load, 'fds'),
  threads_max: max(samples, 'threads'),
  live_tensors_max_during_load: max(load, 'live_tensors'),
  live_input_tensors_max_during_load: max(load, 'live_input_tensors'),
  goals,
  pass: Object.values(goals).every(Boolean),
  statuses,
  failures: driver.failures,
  failure_examples: driver.failure_examples,
  unexpected_statuses: Object.values(driver.unexpected).reduce((a, b) => a + b, 0),
  unexpected: driver.unexpected,
  by_kind: driver.by_kind,
};
writeFileSync(join(results, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');

// CSV, downsampled to at most 400 rows (the first and last samples and every idle sample kept).
const columns = ['t', 'phase', 'requests', 'rss_mib', 'rss_anon_mib', 'rss_file_mib', 'heap_used_mib', 'heap_total_mib', 'external_mib', 'response_cache_mib', 'journal_mib', 'fds', 'threads', 'live_tensors', 'live_tensor_bytes', 'live_input_tensors', 'live_input_tensor_bytes', 'live_modules', 'atoms', 'failures'];
const step = Math.max(1, Math.ceil(load.length / (400 - idle.length)));
const rows = samples.filter((s, i) => s.phase === 'idle' || i % step === 0 || s === end);
writeFileSync(join(results, 'soak.csv'), [columns.join(','), ...rows.map((s) => columns.map((c) => s[c]).join(','))].join('\n') + '\n');

// ---------------------------------------------------------------- the plot
const W = 960, PANEL_H = 150, LEFT = 70, RIGHT = 20, TOP = 78, GAP = 40;
const panels = [
  { title: 'server RSS (MiB)', series: [{ key: 'rss_mib', color: '#1f5fbf', label: 'RSS' }], band: true },
  { title: 'V8 heap and external memory, response cache (MiB)', series: [{ key: 'heap_total_mib', color: '#9ccf9c', label: 'heap total' }, { key: 'heap_used_mib', color: '#2a9d3a', label: 'heap used' }, { key: 'external_mib', color: '#b36b00', label: 'external' }, { key: 'response_cache_mib', color: '#6b6bd6', label: 'response cache' }] },
  { title: 'open file descriptors and threads', series: [{ key: 'fds', color: '#7b3fb5', label: 'fds' }, { key: 'threads', color: '#888888', label: 'threads' }] },
  { title: 'live native tensors (addon counters; outputs are freed when the GC collects their buffers)', series: [{ key: 'live_tensors', color: '#c0392b', label: 'outputs held by JS' }, { key: 'live_input_tensors', color: '#1f9bb3', label: 'inputs alive' }] },
  { title: 'atoms in the AtomSpace (the driver deletes to stay near its cap)', series: [{ key: 'atoms', color: '#555555', label: 'atoms' }] },
];
const H = TOP + panels.length * (PANEL_H + GAP) + 4;
// x: requests during the load; the idle samples get a strip of 6% of the width after it.
const plotW = W - LEFT - RIGHT;
const idleW = idle.length ? plotW * 0.06 : 0;
const lastIdleT = idle.length ? idle[idle.length - 1].t : 0;
const firstIdleT = idle.length ? end.t : 0;
const xOf = (s) => (s.phase === 'idle' || s.phase === 'gc' ? LEFT + plotW - idleW + (idleW * (s.t - firstIdleT)) / Math.max(1, lastIdleT - firstIdleT) : LEFT + ((plotW - idleW) * s.requests) / TOTAL);
const esc = (t) => String(t).replace(/&/g, '&amp;').replace(/</g, '&lt;');
const fmt = (v) => String(Math.round(v * 100) / 100);
function niceRange(lo, hi) {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [0, 1];
  if (hi - lo < 1e-9) { lo -= 1; hi += 1; }
  const pad = (hi - lo) * 0.08;
  lo = Math.max(lo >= 0 ? 0 : -Infinity, lo - pad);
  hi += pad;
  const raw = (hi - lo) / 4;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const tick = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((t) => t >= raw);
  return [Math.floor(lo / tick) * tick, Math.ceil(hi / tick) * tick, tick];
}
let svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="DejaVu Sans, Liberation Sans, Arial, sans-serif" font-size="12">`;
svg += `<rect width="100%" height="100%" fill="white"/>`;
svg += `<text x="${LEFT}" y="22" font-size="15" font-weight="bold">${esc(`Soak: ${TOTAL.toLocaleString('en-US')} mixed requests at concurrency ${driver.concurrency}, ${driver.requests_per_second} req/s`)}</text>`;
svg += `<text x="${LEFT}" y="42" fill="#444">${esc(`RSS ${warm.rss_mib} MiB after warm-up (${Math.round(WARMUP_FRACTION * 100)}%) -> ${end.rss_mib} MiB at the end (${summary.rss_growth_percent >= 0 ? '+' : ''}${summary.rss_growth_percent}%); fds ${start.fds} -> max ${summary.fds_max_during_load} -> ${afterIdle.fds} idle; live tensors ${start.live_tensors} -> ${afterIdle.live_tensors} idle; 5xx: ${driver.failures}`)}</text>`;
panels.forEach((panel, index) => {
  const y0 = TOP + index * (PANEL_H + GAP);
  const values = samples.flatMap((s) => panel.series.map((se) => s[se.key])).filter(Number.isFinite);
  let lo = Math.min(...values), hi = Math.max(...values);
  if (panel.band) { lo = Math.min(lo, warm.rss_mib); hi = Math.max(hi, warm.rss_mib * 1.05); }
  const [ylo, yhi, tick] = niceRange(lo, hi);
  const yOf = (v) => y0 + PANEL_H - ((v - ylo) / (yhi - ylo)) * PANEL_H;
  svg += `<text x="${LEFT}" y="${y0 - 8}" font-weight="bold">${esc(panel.title)}</text>`;
  svg += `<rect x="${LEFT}" y="${y0}" width="${plotW}" height="${PANEL_H}" fill="none" stroke="#999"/>`;
  for (let v = ylo; v <= yhi + tick / 2; v += tick) {
    svg += `<line x1="${LEFT}" x2="${LEFT + plotW}" y1="${yOf(v)}" y2="${yOf(v)}" stroke="#eee"/>`;
    svg += `<text x="${LEFT - 6}" y="${yOf(v) + 4}" text-anchor="end" fill="#555">${fmt(v)}</text>`;
  }
  if (idleW) {
    svg += `<rect x="${LEFT + plotW - idleW}" y="${y0}" width="${idleW}" height="${PANEL_H}" fill="#f4f4f4"/>`;
    if (index === 0) svg += `<text x="${LEFT + plotW - idleW / 2}" y="${y0 + 14}" text-anchor="middle" fill="#777" font-size="10">idle</text>`;
  }
  const xw = xOf(warm);
  svg += `<line x1="${xw}" x2="${xw}" y1="${y0}" y2="${y0 + PANEL_H}" stroke="#bbb" stroke-dasharray="4 3"/>`;
  if (panel.band) {
    svg += `<line x1="${xw}" x2="${LEFT + plotW}" y1="${yOf(warm.rss_mib * 1.05)}" y2="${yOf(warm.rss_mib * 1.05)}" stroke="#d33" stroke-dasharray="6 4"/>`;
    svg += `<text x="${xw + 4}" y="${yOf(warm.rss_mib * 1.05) - 4}" fill="#d33" font-size="11">+5% over the warm-up RSS</text>`;
    svg += `<text x="${xw + 4}" y="${y0 + PANEL_H - 6}" fill="#777" font-size="11">warm-up</text>`;
  }
  panel.series.forEach((se, k) => {
    const pts = samples.filter((s) => Number.isFinite(s[se.key])).map((s) => `${xOf(s).toFixed(1)},${yOf(s[se.key]).toFixed(1)}`);
    svg += `<polyline fill="none" stroke="${se.color}" stroke-width="1.6" points="${pts.join(' ')}"/>`;
    const lx = LEFT + 10 + k * 170;
    svg += `<line x1="${lx}" x2="${lx + 18}" y1="${y0 + 16}" y2="${y0 + 16}" stroke="${se.color}" stroke-width="3"/>`;
    svg += `<text x="${lx + 22}" y="${y0 + 20}">${esc(se.label)}</text>`;
  });
  // x ticks
  for (let i = 0; i <= 10; i++) {
    const x = LEFT + ((plotW - idleW) * i) / 10;
    svg += `<line x1="${x}" x2="${x}" y1="${y0 + PANEL_H}" y2="${y0 + PANEL_H + 4}" stroke="#999"/>`;
    if (index === panels.length - 1 || i % 2 === 0) svg += `<text x="${x}" y="${y0 + PANEL_H + 16}" text-anchor="middle" fill="#555" font-size="10">${fmt((TOTAL * i) / 10 / 1000)}k</text>`;
  }
});
svg += `<text x="${LEFT + plotW / 2}" y="${H - 6}" text-anchor="middle" fill="#333">requests completed (then ${driver.idle_seconds} s idle)</text>`;
svg += '</svg>';
writeFileSync(join(work, 'soak.svg'), svg);
await sharp(Buffer.from(svg)).png({ palette: true, colours: 64, compressionLevel: 9 }).toFile(join(results, 'soak.png'));

const verdict = (ok) => (ok ? 'pass' : 'FAIL');
console.log(`requests ${TOTAL} at concurrency ${driver.concurrency}: ${driver.load_seconds} s, ${driver.requests_per_second} req/s; statuses ${JSON.stringify(statuses)}`);
console.log(`RSS: start ${start.rss_mib} MiB, after warm-up ${warm.rss_mib} MiB, end ${end.rss_mib} MiB, after idle ${afterIdle.rss_mib} MiB; growth ${summary.rss_growth_percent}% (slope ${summary.rss_slope_mib_per_10k_requests} MiB / 10k requests after warm-up, ${summary.rss_slope_second_half_mib_per_10k_requests} over the second half): ${verdict(goals.rss_growth_under_5_percent)}`);
console.log(`fds: start ${start.fds}, after warm-up ${warm.fds}, max ${summary.fds_max_during_load}, end ${end.fds}, after idle ${afterIdle.fds}: ${verdict(goals.fds_flat)}`);
console.log(`live tensors${gcNote} (outputs / inputs / modules): start ${start.live_tensors} / ${start.live_input_tensors} / ${start.live_modules}, max during load ${summary.live_tensors_max_during_load} / ${summary.live_input_tensors_max_during_load}, after idle ${afterIdle.live_tensors} / ${afterIdle.live_input_tensors} / ${afterIdle.live_modules}: ${verdict(goals.no_native_tensor_leak)}`);
console.log(`5xx or connection errors: ${driver.failures}: ${verdict(goals.no_5xx_or_connection_errors)}`);
if (summary.unexpected_statuses) console.log(`unexpected statuses (not 5xx, not goals, but worth a look): ${JSON.stringify(driver.unexpected)}`);
console.log(`overall: ${summary.pass ? 'PASS' : 'FAIL'} (${results}/summary.json, soak.csv, soak.png)`);
process.exitCode = summary.pass ? 0 : 1;
