/**
 * AtomSpace.addBatch in process (no HTTP), durable, snapshots at the default SNAPSHOT_BYTES:
 * atoms/s, the slowest batch and the event loop's max delay (monitorEventLoopDelay). Run it with
 * and without `node --max-semi-space-size=64` (and --trace-gc) to see what the young
 * generation's size does to old-space collections.
 *
 * Usage: node [--max-semi-space-size=64] dist/bench/atomspace/addbatch-loop.js [N=600000] [D=384] [BATCH=1000]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';

import { AtomSpace } from '../../src/atomspace/atomspace.js';
import { clustered } from './vectors.js';

const [nArg, dArg, batchArg] = process.argv.slice(2);
const N = Number(nArg ?? 600_000);
const D = Number(dArg ?? 384);
const BATCH = Number(batchArg ?? 1000);
const dir = mkdtempSync(join(tmpdir(), 'addbatch-loop-'));
const { atomspace } = await AtomSpace.open({ dataDir: dir });
const next = clustered(D, 1);
const delay = monitorEventLoopDelay({ resolution: 1 });
delay.enable();
const t0 = performance.now();
let worst = { ms: 0, at: 0 };
for (let i = 0; i < N; i += BATCH) {
  const items = [];
  for (let j = i; j < Math.min(N, i + BATCH); j++) items.push({ node: { type: 'ConceptNode', name: `n${j}`, embeddings: [{ space: 's', model: null, vector: next(new Float32Array(D)) }] } });
  const t = performance.now();
  await atomspace.addBatch(items);
  if (performance.now() - t > worst.ms) worst = { ms: performance.now() - t, at: i };
  await new Promise((r) => setImmediate(r));
}
const seconds = (performance.now() - t0) / 1000;
while (atomspace.snapshotting) await new Promise((r) => setTimeout(r, 50));
delay.disable();
console.log(JSON.stringify({ atoms: N, d: D, batch: BATCH, per_second: Math.round(N / seconds), slowest_batch_ms: +worst.ms.toFixed(1), slowest_batch_at: worst.at, event_loop_max_delay_ms: +(delay.max / 1e6).toFixed(1), p99_ms: +(delay.percentile(99) / 1e6).toFixed(1) }));
await atomspace.close();
rmSync(dir, { recursive: true, force: true });
