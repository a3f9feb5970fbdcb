// Concurrent requests are batched (fewer executions than requests), every response is its
// own, and the metrics count exactly what was done.
import t from 'tap';

import { embedderCases, embedderRequest, maxDiff, metricValue, testApp } from '../helpers/server.js';

t.test('64 concurrent mixed-length requests: batched, each gets its own answer', async (t) => {
  const { app, context } = await testApp();
  t.teardown(() => app.close());
  const cases = embedderCases();
  const before = { ...context.registry.get('demo-embedder')!.stats };
  const responses = await Promise.all(
    Array.from({ length: 64 }, (_, i) => {
      const c = cases[i % cases.length]!;
      return app.inject({ method: 'POST', url: '/infer', payload: embedderRequest(c.input_ids) }).then((res) => ({ res, c }));
    }),
  );
  const wrong = responses.filter(({ res, c }) => res.statusCode !== 200 || maxDiff(res.json().outputs[0].data, c.expected) > 1e-4);
  t.equal(wrong.length, 0, 'every response equals transformers eager for its own input');
  const stats = context.registry.get('demo-embedder')!.stats;
  const executions = stats.executions - before.executions;
  const inferences = stats.inferences - before.inferences;
  t.equal(inferences, 64, '64 rows inferred');
  t.ok(executions < 64, `${executions} executions for 64 requests`);

  const metrics = (await app.inject('/metrics')).body;
  t.equal(metricValue(metrics, 'atenspace_requests_total', { model: 'demo-embedder', outcome: 'success' }), 64);
  t.equal(metricValue(metrics, 'atenspace_inference_count_total', { model: 'demo-embedder' }), stats.inferences);
  t.equal(metricValue(metrics, 'atenspace_execution_count_total', { model: 'demo-embedder' }), stats.executions);
  t.equal(metricValue(metrics, 'atenspace_batch_size_count', { model: 'demo-embedder' }), stats.executions);
  t.equal(metricValue(metrics, 'atenspace_request_duration_seconds_count', { model: 'demo-embedder', stage: 'total' }), 64);
  t.equal(metricValue(metrics, 'atenspace_request_duration_seconds_count', { model: 'demo-embedder', stage: 'queue' }), stats.inferences);
  t.ok(metricValue(metrics, 'atenspace_request_duration_seconds_count', { model: 'demo-embedder', stage: 'compute' }) === stats.executions);
  t.equal(metricValue(metrics, 'atenspace_models_loaded', {}), 1);
  t.match(metrics, /atenspace_process_cpu_seconds_total/, 'default process metrics');
  const failed = await app.inject({ method: 'POST', url: '/infer', payload: { ...embedderRequest([1]), model: 'demo-embedder', inputs: [] } });
  t.equal(failed.statusCode, 400);
});
