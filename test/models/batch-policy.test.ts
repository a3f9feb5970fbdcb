// The token-budget scheduler: which waiting requests form the next batch, decided by measured cost.
import t from 'tap';

import { type Candidate, chooseBatch, holdMs } from '../../src/models/engine/batch-policy.js';
import type { CostEstimate } from '../../src/models/engine/cost-model.js';

/** t = fixed + perToken · rows · length: a forward costs `fixed` whatever its size. */
const linear = (fixed: number, perToken = 1): CostEstimate => ({
  predict: (rows, length) => fixed + perToken * rows * Math.max(1, length),
  marginal: (length) => perToken * Math.max(1, length),
});
const items = (lengths: number[], key = 'k'): Candidate[] => lengths.map((length) => ({ key, rows: 1, length, skipped: 0 }));
const limits = { maxBatchSize: 32, maxBatchTokens: Infinity, maxSkips: 2 };

t.test('no fixed cost: the least padding wins, and at equal padding the most rows', async (t) => {
  // Three texts of 10 tokens and three of 50, arrived interleaved.
  const waiting = items([10, 50, 10, 50, 10, 50]);
  t.same(chooseBatch(waiting, limits, linear(0)), [0, 2, 4], 'the three 10-token texts, not a batch padded to 50');
});

t.test('a large fixed cost makes one big padded batch worth it', async (t) => {
  const waiting = items([10, 50, 10, 50, 10, 50]);
  // 1000 ms per forward dwarfs 40 tokens of padding per row: run everything at once.
  t.same(chooseBatch(waiting, limits, linear(1000)), [0, 1, 2, 3, 4, 5]);
});

t.test('in between, the cost model decides where to cut the length-sorted queue', async (t) => {
  // Lengths 8..64 in steps of 8, shuffled. fixed = 100 token-ms: a batch of the 4 shortest
  // (padded to 32: 100 + 128) has efficiency 80/228 = 0.35; all 8 padded to 64: 288/612 = 0.47;
  // the 4 longest (40..64): 208/356 = 0.58, the best.
  const waiting = items([64, 8, 48, 24, 40, 16, 56, 32]);
  const chosen = chooseBatch(waiting, limits, linear(100));
  t.same(chosen.map((i) => waiting[i]!.length).sort((a, b) => a - b), [40, 48, 56, 64]);
});

t.test('limits: max rows and max padded tokens per batch', async (t) => {
  const waiting = items(new Array(10).fill(16));
  t.equal(chooseBatch(waiting, { ...limits, maxBatchSize: 4 }, linear(50)).length, 4, 'maxBatchSize rows');
  t.equal(chooseBatch(waiting, { ...limits, maxBatchTokens: 16 * 3 }, linear(50)).length, 3, 'maxBatchTokens padded tokens');
  const rows: Candidate[] = [
    { key: 'k', rows: 3, length: 16, skipped: 0 },
    { key: 'k', rows: 3, length: 16, skipped: 0 },
  ];
  t.same(chooseBatch(rows, { ...limits, maxBatchSize: 4 }, linear(50)), [0], 'a request of several rows counts them all');
  const huge = items([500]);
  t.same(chooseBatch(huge, { ...limits, maxBatchTokens: 100 }, linear(0)), [0], 'one request alone always runs, whatever its size');
});

t.test('requests of different shapes never share a batch', async (t) => {
  const waiting = [...items([16, 16], 'a'), ...items([16, 16, 16], 'b')];
  const chosen = chooseBatch(waiting, limits, linear(100));
  t.same(chosen, [2, 3, 4], 'the larger compatible group');
  t.ok(new Set(chosen.map((i) => waiting[i]!.key)).size === 1);
});

t.test('a request passed over maxSkips times is in the next batch', async (t) => {
  const waiting = items([10, 10, 10, 50]);
  t.notOk(chooseBatch(waiting, limits, linear(0)).includes(3), 'normally the long one waits');
  waiting[3]!.skipped = 2;
  const chosen = chooseBatch(waiting, limits, linear(0));
  t.ok(chosen.includes(3), 'after two skips it runs');
  const forcedKey = [...items([16, 16, 16], 'a'), { key: 'b', rows: 1, length: 16, skipped: 2 }];
  t.same(chooseBatch(forcedKey, limits, linear(100)), [3], 'even when another shape would make a bigger batch');
});

t.test('an empty queue chooses nothing', async (t) => {
  t.same(chooseBatch([], limits, linear(0)), []);
});

t.test('holding a batch for company: only when the expected fuller batch is worth the wait', async (t) => {
  // A forward costs 10 ms plus 1 ms per row (length 1).
  const cost = linear(10);
  const steady = { perMs: 1, coming: 4, returnMs: Infinity };
  t.equal(holdMs(4, 1, steady, 32, cost), 4, 'four more clients arriving at 1/ms: wait 4 ms for a batch of 8');
  t.equal(holdMs(4, 1, { ...steady, coming: 0 }, 32, cost), 0, 'nobody else can come: run now');
  t.equal(holdMs(4, 1, { ...steady, perMs: 0.001 }, 32, cost), 0, 'arrivals too rare to be worth a wait');
  t.equal(holdMs(32, 1, steady, 32, cost), 0, 'a full batch runs at once');
  t.equal(holdMs(1, 1, steady, 32, linear(0.2, 0.01)), 0, 'never longer than half the batch itself takes');
  // A closed loop: the 4 clients of the batch that just ended come back 3 ms after it, though the
  // mean rate alone (0.2/ms) would not be worth a wait.
  t.equal(holdMs(4, 1, { perMs: 0.2, coming: 4, returnMs: 3 }, 32, cost), 3, 'wait the round trip of the clients just answered');
  t.equal(holdMs(4, 1, { perMs: 0.2, coming: 4, returnMs: 9 }, 32, cost), 0, 'not when the round trip costs more than the fuller batch saves');
});
