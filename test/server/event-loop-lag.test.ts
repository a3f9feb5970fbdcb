// EventLoopLag: overloaded only after `sustained` lagging samples in a row, on recorded samples
// and on a real event loop.
import t from 'tap';

import { EventLoopLag } from '../../src/server/event-loop-lag.js';

t.test('the rule: lagging samples in a row, reset by a quiet one', async (t) => {
  const lag = new EventLoopLag({ limitMs: 100, sustained: 2 });
  t.equal(lag.overloaded(), undefined, 'quiet at first');
  lag.record(1500);
  t.equal(lag.overloaded(), undefined, 'one stall is not overload');
  lag.record(3);
  lag.record(250);
  t.equal(lag.overloaded(), undefined, 'a quiet sample in between starts the count again');
  lag.record(120);
  t.equal(lag.overloaded(), 120, 'two in a row: overloaded, with the latest delay');
  lag.record(400);
  t.equal(lag.overloaded(), 400);
  lag.record(100);
  t.equal(lag.overloaded(), undefined, 'at the limit is not over it');
  const single = new EventLoopLag({ limitMs: 10, sustained: 1 });
  single.record(11);
  t.equal(single.overloaded(), 11, 'sustained 1: one sample is enough');
});

t.test('on the real loop: one block passes, a loop kept busy is overloaded', async (t) => {
  const lag = new EventLoopLag({ limitMs: 100, sampleMs: 100, sustained: 2 }).start();
  t.teardown(() => lag.stop());
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  await sleep(350);
  t.equal(lag.overloaded(), undefined, 'an idle loop');
  const block = performance.now() + 600;
  while (performance.now() < block);
  await sleep(20);
  await sleep(150);
  t.equal(lag.overloaded(), undefined, 'one 600 ms block, then a free loop: not overloaded');
  let seen: number | undefined;
  const until = performance.now() + 2000;
  while (performance.now() < until && seen === undefined) {
    const busy = performance.now() + 250;
    while (performance.now() < busy);
    await sleep(1);
    seen = lag.overloaded();
  }
  t.ok(seen !== undefined && seen > 100, `busy 250 ms of every ~251 ms: overloaded (${seen?.toFixed(0)} ms)`);
  await sleep(450);
  t.equal(lag.overloaded(), undefined, 'quiet again');
});
