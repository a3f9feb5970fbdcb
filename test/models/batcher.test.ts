// The generic batching queue, with no model behind it: batch formation, limits, deadlines,
// cancellation, drain, and the policy hook.
import t from 'tap';

import { Batcher, type Waiting } from '../../src/batching/batcher.js';

interface Item {
  id: number;
  key?: string;
  rows?: number;
}

/** A batcher whose runs wait until released; records each batch's item ids. */
function harness(options: { maxBatchSize?: number; instances?: number; maxQueueSize?: number; select?: (w: readonly Waiting<Item>[]) => number[] } = {}) {
  const batches: number[][] = [];
  const gates: (() => void)[] = [];
  const batcher = new Batcher<Item, number>(
    { maxBatchSize: options.maxBatchSize ?? 4, maxQueueDelayMs: 0, instances: options.instances ?? 1, maxQueueSize: options.maxQueueSize ?? 100 },
    { key: (i) => i.key ?? 'k', rows: (i) => i.rows ?? 1, ...(options.select ? { select: options.select } : {}) },
    async (items) => {
      batches.push(items.map((i) => i.id));
      await new Promise<void>((resolve) => gates.push(resolve));
      return items.map((i) => i.id * 10);
    },
  );
  const release = async () => {
    await new Promise((r) => setImmediate(r));
    gates.shift()?.();
    await new Promise((r) => setImmediate(r));
  };
  return { batcher, batches, release };
}

t.test('a free instance takes the oldest at once; the rest batch by key, in order, up to maxBatchSize', async (t) => {
  const { batcher, batches, release } = harness({ maxBatchSize: 3 });
  const results = [1, 2, 3, 4, 5, 6].map((id) => batcher.submit({ id, key: id === 3 ? 'other' : 'k' }));
  for (let i = 0; i < 4; i++) await release();
  t.same(await Promise.all(results), [10, 20, 30, 40, 50, 60]);
  t.same(batches, [[1], [2, 4, 5], [3], [6]]);
});

t.test('rows count towards maxBatchSize', async (t) => {
  const { batcher, batches, release } = harness({ maxBatchSize: 4 });
  const all = [batcher.submit({ id: 0 }), batcher.submit({ id: 1, rows: 3 }), batcher.submit({ id: 2, rows: 2 }), batcher.submit({ id: 3, rows: 1 })];
  for (let i = 0; i < 3; i++) await release();
  await Promise.all(all);
  t.same(batches, [[0], [1, 3], [2]]);
});

t.test('the policy hook chooses the batch; left-behind items count skips', async (t) => {
  const seen: number[][] = [];
  const { batcher, batches, release } = harness({
    select: (waiting) => {
      seen.push(waiting.map((w) => w.skipped));
      return waiting.length > 1 ? [waiting.length - 1] : [0]; // newest first
    },
  });
  const all = [0, 1, 2, 3].map((id) => batcher.submit({ id }));
  for (let i = 0; i < 4; i++) await release();
  await Promise.all(all);
  t.same(batches, [[0], [3], [2], [1]]);
  t.same(seen, [[0], [0, 0, 0], [1, 1], [2]], 'each batch that passed an item over counted a skip');
});

t.test('an invalid choice from the policy runs the oldest', async (t) => {
  const { batcher, batches, release } = harness({ select: () => [99, -1] });
  const all = [0, 1].map((id) => batcher.submit({ id }));
  for (let i = 0; i < 2; i++) await release();
  await Promise.all(all);
  t.same(batches, [[0], [1]]);
});

t.test('full queue, deadline, cancellation, closed queue', async (t) => {
  const { batcher, release } = harness({ maxBatchSize: 1, maxQueueSize: 2 });
  const running = batcher.submit({ id: 0 });
  const late = batcher.submit({ id: 1 }, { timeoutMs: 20 });
  const controller = new AbortController();
  const cancelled = batcher.submit({ id: 2 }, { signal: controller.signal });
  await t.rejects(batcher.submit({ id: 3 }), { code: 'QUEUE_FULL' }, 'a third waiting item is refused');
  controller.abort();
  await t.rejects(cancelled, { code: 'CANCELLED' });
  await t.rejects(late, { code: 'DEADLINE_EXCEEDED' });
  const drained = batcher.drain();
  await t.rejects(batcher.submit({ id: 4 }), { code: 'MODEL_NOT_READY' }, 'no new work once draining');
  await release();
  t.equal(await running, 0, 'the running batch finishes');
  await drained;
  t.ok(batcher.idle);
});

t.test('a failing run fails its batch only', async (t) => {
  let calls = 0;
  const batcher = new Batcher<number, number>(
    { maxBatchSize: 1, maxQueueDelayMs: 0, instances: 1, maxQueueSize: 10 },
    { key: () => 'k', rows: () => 1 },
    async ([x]) => {
      calls++;
      if (x === 1) throw new Error('boom');
      return [x! * 2];
    },
  );
  const results = await Promise.allSettled([batcher.submit(0), batcher.submit(1), batcher.submit(2)]);
  t.same(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
  t.equal(calls, 3);
});
