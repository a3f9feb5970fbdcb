// Queue limits: 429 with Retry-After when full, 504 past a deadline, and a client that
// disconnects has its queued request cancelled (never run).
import t from 'tap';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';

import type { App } from '../../src/server/app.js';
import { metricValue, testApp } from '../helpers/server.js';

const slowRequest = (rows = 1) => ({
  model: 'slow',
  inputs: [{ name: 'x', shape: [rows, 384], datatype: 'FP32', data: new Array(rows * 384).fill(0.01) }],
});

// inject() sends lazily; a real promise makes the request go now, in this order.
const post = (app: App['app'], payload: object) => app.inject({ method: 'POST', url: '/infer', payload }).then((r) => r);

t.test('a full queue answers 429 with Retry-After; the rest succeed', async (t) => {
  const { app } = await testApp({ LOAD_MODELS: 'slow', MAX_QUEUE_SIZE: '3', MAX_BATCH_SIZE: '1' });
  t.teardown(() => app.close());
  const responses = await Promise.all(Array.from({ length: 12 }, () => post(app, slowRequest())));
  const rejected = responses.filter((r) => r.statusCode === 429);
  const ok = responses.filter((r) => r.statusCode === 200);
  t.ok(rejected.length > 0, `${rejected.length} of 12 rejected`);
  t.equal(rejected.length + ok.length, 12, 'all others succeeded');
  t.equal(rejected[0]!.headers['retry-after'], '1');
  t.equal(rejected[0]!.json().code, 'QUEUE_FULL');
  const metrics = (await app.inject('/metrics')).body;
  t.equal(metricValue(metrics, 'atenspace_requests_total', { model: 'slow', outcome: 'rejected' }), rejected.length);
  t.equal(metricValue(metrics, 'atenspace_requests_total', { model: 'slow', outcome: 'success' }), ok.length);
});

t.test('a request past its deadline is dropped with 504', async (t) => {
  const { app, context } = await testApp({ LOAD_MODELS: 'slow', MAX_BATCH_SIZE: '1' });
  t.teardown(() => app.close());
  // Keep the single instance busy, then queue one that may wait only 1 ms.
  const busy = Array.from({ length: 4 }, () => post(app, slowRequest()));
  const late = await app.inject({ method: 'POST', url: '/infer', payload: { ...slowRequest(), parameters: { timeout: 1000 } } });
  t.equal(late.statusCode, 504);
  t.equal(late.json().code, 'DEADLINE_EXCEEDED');
  await Promise.all(busy);
  t.equal(context.registry.get('slow')!.stats.inferences, 4, 'the expired request never ran');
  const metrics = (await app.inject('/metrics')).body;
  t.equal(metricValue(metrics, 'atenspace_requests_total', { model: 'slow', outcome: 'timeout' }), 1);
  const generous = await app.inject({ method: 'POST', url: '/infer', payload: { ...slowRequest(), parameters: { timeout: 60_000_000 } } });
  t.equal(generous.statusCode, 200, 'a generous deadline is met');
});

t.test('a client that disconnects has its queued request cancelled', async (t) => {
  const { app, context } = await testApp({ LOAD_MODELS: 'slow', MAX_BATCH_SIZE: '1' });
  t.teardown(() => app.close());
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  const busy = Array.from({ length: 5 }, () => post(app, slowRequest()));
  await new Promise<void>((resolve) => {
    const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/infer', headers: { 'content-type': 'application/json' } });
    req.on('error', () => resolve());
    req.end(JSON.stringify(slowRequest()));
    // Hang up once our request is queued behind busy ones.
    const started = Date.now();
    const poll = setInterval(() => {
      if (context.registry.get('slow')!.stats.requests >= 6 || Date.now() - started > 10_000) {
        clearInterval(poll);
        req.destroy();
        resolve();
      }
    }, 1);
  });
  await Promise.all(busy);
  await new Promise((r) => setTimeout(r, 200));
  t.equal(context.registry.get('slow')!.stats.inferences, 5, 'the abandoned request never ran');
  const metrics = (await app.inject('/metrics')).body;
  t.equal(metricValue(metrics, 'atenspace_requests_total', { model: 'slow', outcome: 'cancelled' }), 1);
});

t.test('over a real socket, a client that waits is never taken for one that left', async (t) => {
  // The request's own 'close' fires once its body is read; only the response's may cancel.
  const { app } = await testApp({ LOAD_MODELS: 'demo-embedder' });
  t.teardown(() => app.close());
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  const bodies: [string, object][] = [
    ['/v1/embeddings', { model: 'demo-embedder', input: ['hello world', 'a second sentence'] }],
    ['/embed', { inputs: ['hello world', 'a second sentence'] }],
    ['/infer', { model: 'demo-embedder', text: 'hello world' }],
    ['/infer', { model: 'demo-embedder', inputs: [{ name: 'input_ids', shape: [1, 3], datatype: 'INT64', data: [5, 6, 7] }, { name: 'attention_mask', shape: [1, 3], datatype: 'INT64', data: [1, 1, 1] }, { name: 'token_type_ids', shape: [1, 3], datatype: 'INT64', data: [0, 0, 0] }] }],
    ['/atoms/similar', { text: 'hello', model: 'demo-embedder', k: 1 }],
  ];
  for (let round = 0; round < 5; round++) {
    for (const [url, body] of bodies) {
      const res = await fetch(`http://127.0.0.1:${port}${url}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      // /atoms/similar may find no space yet (404); never 499 or 5xx.
      const fine = url === '/atoms/similar' ? res.status < 499 : res.status === 200;
      if (!fine) t.fail(`${url}: ${res.status} ${await res.text()}`);
      else await res.arrayBuffer();
    }
  }
  t.pass('every request answered');
});
