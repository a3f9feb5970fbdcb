// atenspace_inflight_requests{model}: the per-model gauge that the Kubernetes autoscalers scale on
// (deploy/kubernetes/). It counts a request from its arrival to its answer, a streamed one until
// its last event, and comes back to 0 whatever the outcome (success, client error, cancellation).
import t from 'tap';
import type { AddressInfo } from 'node:net';

import { embedderRequest, metricValue, testApp } from '../helpers/server.js';

t.test('atenspace_inflight_requests moves with the requests of each model', async (t) => {
  const { app } = await testApp({ LOAD_MODELS: 'demo-embedder,demo-gpt2', MAX_QUEUE_DELAY_MS: '1500' });
  t.teardown(() => app.close());
  await app.listen({ port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const inflight = async (model: string) => metricValue(await (await fetch(`${base}/metrics`)).text(), 'atenspace_inflight_requests', { model });

  const exposition = await (await fetch(`${base}/metrics`)).text();
  t.match(exposition, /^# TYPE atenspace_inflight_requests gauge$/m, 'exported as a gauge');

  // MAX_QUEUE_DELAY_MS holds a lone batch 1.5 s for company: three requests are in flight meanwhile.
  const held = Array.from({ length: 3 }, (_, i) => fetch(`${base}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(embedderRequest([2, 15 + i, 27, 3])) }));
  let during = 0;
  for (let i = 0; i < 20 && during < 3; i++) {
    during = await inflight('demo-embedder');
    if (during < 3) await new Promise((r) => setTimeout(r, 50));
  }
  t.equal(during, 3, 'three demo-embedder requests in flight while they wait to be batched');
  t.equal(await inflight('demo-gpt2'), 0, 'none of demo-gpt2');
  t.same((await Promise.all(held)).map((a) => a.status), [200, 200, 200]);
  t.equal(await inflight('demo-embedder'), 0, 'demo-embedder back to 0 once answered');

  // A client error is counted and released too.
  const bad = await fetch(`${base}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'demo-embedder', text: 'x', max_new_tokens: 3 }) });
  t.equal(bad.status, 400);
  t.equal(await inflight('demo-embedder'), 0, 'a 400 does not stay in flight');

  // A streamed generation is in flight until its last event; a client that goes away releases it.
  const controller = new AbortController();
  const res = await fetch(`${base}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'demo-gpt2', prompt: 'Once upon a time', max_tokens: 500, temperature: 0, stream: true }),
    signal: controller.signal,
  });
  t.equal(res.status, 200, 'the stream started');
  const reader = res.body!.getReader();
  await reader.read(); // the first event: the request is being served
  t.equal(await inflight('demo-gpt2'), 1, 'one demo-gpt2 request in flight while its stream is open');
  controller.abort();
  await reader.cancel().catch(() => undefined);
  let after = await inflight('demo-gpt2');
  for (let i = 0; i < 50 && after !== 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
    after = await inflight('demo-gpt2');
  }
  t.equal(after, 0, 'the stream is no longer in flight once its client went away');
});
