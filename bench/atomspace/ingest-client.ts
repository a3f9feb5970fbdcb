/**
 * The ingest benchmark's client (a separate process, as a real client is): sends N clustered
 * D-dimensional vectors to the server, as one streamed NDJSON import per stream
 * (`import`), or as POST /atoms/batch bodies of BATCH atoms with base64 vectors (`batch`) or
 * number arrays (`batch-numbers`), two requests in flight. Prints a JSON summary.
 *
 * Usage: node dist/bench/atomspace/ingest-client.js PORT N D MODE [BATCH=1000] [STREAMS=1]
 */

import { clustered, importLine } from './vectors.js';
import { poster } from './http-post.js';

const [portArg, nArg, dArg, mode = 'import', batchArg, streamsArg] = process.argv.slice(2);
const PORT = Number(portArg);
const N = Number(nArg);
const D = Number(dArg);
const BATCH = Number(batchArg ?? 1000);
const STREAMS = Number(streamsArg ?? 1);
const { post, agent } = poster(PORT, 4);

const started = performance.now();
const statuses: Record<number, number> = {};
const batchMs: number[] = [];
let failedLines = 0;

if (mode === 'import') {
  // Streams take interleaved slices of the ids, each with its own generator (same centres).
  await Promise.all(
    Array.from({ length: STREAMS }, async (_, s) => {
      const next = clustered(D, 1);
      const v = new Float32Array(D);
      async function* lines() {
        let piece = '';
        for (let i = 0; i < N; i++) {
          next(v);
          if (i % STREAMS !== s) continue;
          piece += importLine(i, v);
          if (piece.length > 1 << 20) {
            yield piece;
            piece = '';
          }
        }
        if (piece) yield piece;
      }
      const res = await post(`/atoms/import?group=${BATCH}`, 'application/x-ndjson', lines());
      statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      const report = JSON.parse(res.body) as { failed?: number; report?: { failed: number } };
      failedLines += report.failed ?? report.report?.failed ?? 0;
      if (res.status !== 200) console.error(res.body.slice(0, 500));
    }),
  );
} else {
  const next = clustered(D, 1);
  const bodies = function* () {
    for (let i = 0; i < N; i += BATCH) {
      const atoms = [];
      for (let j = i; j < Math.min(N, i + BATCH); j++) {
        const v = next(new Float32Array(D));
        atoms.push(`{"type":"ConceptNode","name":"n${j}","space":"bench","embedding":${mode === 'batch' ? `"${Buffer.from(v.buffer).toString('base64')}"` : JSON.stringify(Array.from(v))}}`);
      }
      yield `{"atoms":[${atoms.join(',')}]}`;
    }
  };
  const it = bodies();
  const worker = async () => {
    for (let r = it.next(); !r.done; r = it.next()) {
      const t = performance.now();
      const res = await post('/atoms/batch', 'application/json', r.value);
      batchMs.push(performance.now() - t);
      statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      if (res.status !== 200) console.error(res.status, res.body.slice(0, 300));
    }
  };
  await Promise.all([worker(), worker()]);
}
const seconds = (performance.now() - started) / 1000;
console.log(JSON.stringify({ mode, atoms: N, d: D, batch: BATCH, streams: STREAMS, seconds, per_second: N / seconds, statuses, failed_lines: failedLines, ...(batchMs.length ? { slowest_request_ms: Math.max(...batchMs) } : {}) }));
agent.destroy();
