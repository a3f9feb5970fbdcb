// ThreadChoice: one thread for the batches it measured faster on one thread, from the smallest
// up to the first shape where it was not; the engine asks it with the all-threads prediction.
import t from 'tap';
import { join } from 'node:path';

import { ThreadChoice } from '../../src/models/engine/thread-choice.js';
import { readManifest } from '../../src/models/manifest.js';
import type { Tensor } from '../../src/runtime/index.js';
import { serverFixtures } from '../helpers/server.js';

t.test('fromTimings: the prefix of shapes one thread wins, by a margin', async (t) => {
  const choice = ThreadChoice.fromTimings([
    { ms: 8, allMs: 9, singleMs: 3 }, // wins again past a loss: not counted, the prefix ended
    { ms: 0.5, allMs: 0.6, singleMs: 0.3 },
    { ms: 4, allMs: 4.4, singleMs: 4.5 },
    { ms: 1, allMs: 1.3, singleMs: 0.6 },
  ]);
  t.equal(choice.singleThreadUpToMs, 1);
  t.equal(choice.threadsFor(0.2), 1);
  t.equal(choice.threadsFor(1), 1);
  t.equal(choice.threadsFor(1.01), undefined, 'bigger batches: all threads');
  t.equal(ThreadChoice.fromTimings([{ ms: 1, allMs: 1, singleMs: 0.97 }]).singleThreadUpToMs, 0, 'within 5 %: no choice made on noise');
  t.equal(ThreadChoice.fromTimings([]).threadsFor(0), undefined, 'nothing measured: all threads');
  t.equal(new ThreadChoice().threadsFor(0.001), undefined);
});

t.test('calibrate: times the shapes on one thread, smallest first, and stops at the first loss', async (t) => {
  const manifest = await readManifest(join(serverFixtures(), 'models', 'demo-embedder'));
  const calls: { rows: number; threads: number | undefined }[] = [];
  // A module whose forward takes rows² ms on one thread and 2.5 × rows ms on all (busy), so
  // rows 1 and 2 win on one thread and 4 loses.
  const module = {
    async forward(inputs: Tensor[], options?: { threads?: number }) {
      const rows = inputs[0]!.shape[0]!;
      calls.push({ rows, threads: options?.threads });
      const until = performance.now() + (options?.threads === 1 ? rows * rows : rows * 2.5);
      while (performance.now() < until);
      return [];
    },
  };
  const samples = [16, 1, 4, 2].map((rows) => ({ rows, length: 8, ms: rows * 2 })); // the cost model's scale
  const choice = await ThreadChoice.calibrate(module, manifest, samples, 1);
  t.equal(choice.singleThreadUpToMs, 4, "up to the 2-row shape, in the cost model's scale (4 ms)");
  t.same([...new Set(calls.map((c) => c.rows))], [1, 2, 4], 'smallest first, stopping after the 4-row loss: 16 rows never timed');
  t.equal(calls.filter((c) => c.threads === 1).length, calls.length / 2, 'half the forwards on one thread, half on all');
});

t.test('BATCH_THREADS: auto (the default) or all', async (t) => {
  const { loadConfig } = await import('../../src/server/config.js');
  t.equal(loadConfig({}, []).batchThreads, 'auto');
  t.equal(loadConfig({ BATCH_THREADS: 'all' }, []).batchThreads, 'all');
  t.throws(() => loadConfig({ BATCH_THREADS: 'one' }, []), { message: /BATCH_THREADS must be auto or all, got 'one'/ });
});
