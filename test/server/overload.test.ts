// Overload: a full model queue answers 429 with Retry-After while the requests it admitted
// finish in bounded time; process-wide pressure (event-loop delay, heap) answers 503 with
// Retry-After; health probes and /metrics answer quickly throughout.
import t from 'tap';

import { testApp } from '../helpers/server.js';

const slowRequest = { model: 'slow', inputs: [{ name: 'x', shape: [1, 384], datatype: 'FP32', data: new Array(384).fill(0.1) }] };

t.test('a full queue: 429 + Retry-After, admitted requests bounded, /health/live responsive', async (t) => {
  const queueSize = 4;
  const { app } = await testApp({ LOAD_MODELS: 'slow', MAX_QUEUE_SIZE: String(queueSize), MAX_BATCH_SIZE: '1' });
  t.teardown(() => app.close());
  const post = () => {
    const started = performance.now();
    return app.inject({ method: 'POST', url: '/infer', payload: slowRequest }).then((res) => ({ res, ms: performance.now() - started }));
  };
  await post(); // warm
  const single = (await post()).ms;

  // Probe liveness every 10 ms while 40 requests flood a queue of 4.
  const probes: number[] = [];
  let flooding = true;
  const probing = (async () => {
    while (flooding) {
      const started = performance.now();
      const live = await app.inject('/health/live');
      if (live.statusCode !== 200) probes.push(Infinity);
      else probes.push(performance.now() - started);
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  const results = await Promise.all(Array.from({ length: 40 }, post));
  flooding = false;
  await probing;

  const rejected = results.filter((r) => r.res.statusCode === 429);
  const admitted = results.filter((r) => r.res.statusCode === 200);
  t.equal(rejected.length + admitted.length, 40, 'every request is admitted or refused, nothing else');
  t.ok(rejected.length >= 30, `${rejected.length} refused`);
  t.ok(admitted.length >= queueSize, `${admitted.length} admitted`);
  for (const r of rejected.slice(0, 3)) {
    t.equal(r.res.json().code, 'QUEUE_FULL');
    t.equal(r.res.json().limit, 'MAX_QUEUE_SIZE', 'names the setting');
    t.match(r.res.json().error, /queue is full: 4 requests waiting \(MAX_QUEUE_SIZE/);
    t.match(r.res.headers['retry-after'], /^\d+$/, 'Retry-After says when');
  }
  // An admitted request waits for at most the queue ahead of it: (queue + running) forwards.
  const bound = (queueSize + 2) * single * 3 + 250; // x3: slack for a noisy 2-core machine
  const slowest = Math.max(...admitted.map((r) => r.ms));
  t.ok(slowest < bound, `slowest admitted request ${slowest.toFixed(0)} ms < ${bound.toFixed(0)} ms (one forward: ${single.toFixed(0)} ms)`);
  t.ok(probes.length >= 3, `${probes.length} liveness probes during the flood`);
  const worst = Math.max(...probes);
  t.ok(worst < 250, `/health/live answered within ${worst.toFixed(1)} ms throughout (forwards run off the event loop)`);
});

t.test('process-wide pressure: 503 + Retry-After, health and metrics still served', async (t) => {
  const { app } = await testApp({ LOAD_MODELS: 'none', MAX_HEAP_USED: '1' }); // always over: any heap is more than 1 byte
  t.teardown(() => app.close());
  await new Promise((r) => setTimeout(r, 700)); // one sample
  const shed = await app.inject({ method: 'POST', url: '/embed', payload: { inputs: 'hello' } });
  t.equal(shed.statusCode, 503);
  t.equal(shed.json().code, 'OVERLOADED');
  t.match(shed.json().error, /heapUsedBytes is \d+ bytes, more than MAX_HEAP_USED \(1 bytes\)/);
  t.equal(shed.headers['retry-after'], '2');
  t.equal((await app.inject('/health/live')).statusCode, 200);
  t.equal((await app.inject('/health/ready')).statusCode, 200);
  t.equal((await app.inject('/v2/health/live')).statusCode, 200);
  t.equal((await app.inject('/metrics')).statusCode, 200);
});

t.test('a blocked event loop sheds load, then recovers', async (t) => {
  const { app } = await testApp({ LOAD_MODELS: 'demo-embedder', MAX_EVENT_LOOP_DELAY_MS: '30' });
  t.teardown(() => app.close());
  const embed = () => app.inject({ method: 'POST', url: '/embed', payload: { inputs: 'hello' } });
  t.equal((await embed()).statusCode, 200, 'served before');
  // Sustained pressure: the loop is busy 90 ms of every ~100 ms for 2.5 s (shedding starts after two lagging 500 ms samples).
  const statuses: number[] = [];
  const until = performance.now() + 2500;
  while (performance.now() < until) {
    const busy = performance.now() + 90;
    while (performance.now() < busy);
    const res = await embed();
    statuses.push(res.statusCode);
    if (res.statusCode === 503) t.equal(res.json().code, 'OVERLOADED');
    await new Promise((r) => setTimeout(r, 5));
  }
  t.ok(statuses.includes(503), `shed while the loop lagged (${statuses.filter((s) => s === 503).length} of ${statuses.length} refused)`);
  t.ok(statuses.every((s) => s === 200 || s === 503), 'only 200 or 503');
  await new Promise((r) => setTimeout(r, 1200)); // the next samples see a quiet loop
  t.equal((await embed()).statusCode, 200, 'served again once the loop is quiet');
});

t.test('one long stall is not overload: the requests after it are served', async (t) => {
  // A single-sample rule (what @fastify/under-pressure does) answered these 503: a server that
  // started slowly on a busy machine refused its first requests though its loop was free again.
  const { app } = await testApp({ LOAD_MODELS: 'demo-embedder', MAX_EVENT_LOOP_DELAY_MS: '30' });
  t.teardown(() => app.close());
  const embed = () => app.inject({ method: 'POST', url: '/embed', payload: { inputs: 'hello' } });
  t.equal((await embed()).statusCode, 200, 'served before');
  for (let round = 0; round < 2; round++) {
    await new Promise((r) => setTimeout(r, 1100)); // quiet samples
    // One synchronous job of 3 s: the 500 ms sample that holds it has at most ~50 quiet 10 ms
    // readings beside it, so its mean is over 30 ms wherever the job starts.
    const busy = performance.now() + 3000;
    while (performance.now() < busy);
    const statuses: number[] = [];
    const until = performance.now() + 800; // past the next sample, which reads the stall
    while (performance.now() < until) {
      statuses.push((await embed()).statusCode);
      await new Promise((r) => setTimeout(r, 40));
    }
    t.ok(statuses.every((s) => s === 200), `stall ${round + 1}: the ${statuses.length} requests after it are served (${statuses.join(' ')})`);
  }
});
