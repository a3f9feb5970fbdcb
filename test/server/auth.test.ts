// API_KEY: writes need the bearer key; reads and inference stay open unless AUTH_READS.
import t from 'tap';

import { embedderRequest, testApp } from '../helpers/server.js';

t.test('writes need the key, reads and inference do not', async (t) => {
  const { app } = await testApp({ LOAD_MODELS: 'none', API_KEY: 's3cret' });
  t.teardown(() => app.close());
  const noKey = await app.inject({ method: 'POST', url: '/models/demo-vit/load' });
  t.equal(noKey.statusCode, 401);
  t.equal(noKey.json().code, 'UNAUTHORIZED');
  const wrongKey = await app.inject({ method: 'POST', url: '/models/demo-vit/load', headers: { authorization: 'Bearer nope' } });
  t.equal(wrongKey.statusCode, 401);
  const v2 = await app.inject({ method: 'POST', url: '/v2/repository/models/demo-vit/unload' });
  t.equal(v2.statusCode, 401, 'KServe repository writes too');
  const withKey = await app.inject({ method: 'POST', url: '/models/demo-vit/load', headers: { authorization: 'Bearer s3cret' } });
  t.equal(withKey.statusCode, 200);
  t.equal((await app.inject('/models')).statusCode, 200, 'reads are open');
  t.equal((await app.inject({ method: 'POST', url: '/infer', payload: embedderRequest([5, 6]) })).statusCode, 200, 'inference is open');
});

t.test('AUTH_READS closes reads too, never health', async (t) => {
  const { app } = await testApp({ LOAD_MODELS: 'none', API_KEY: 's3cret', AUTH_READS: 'true' });
  t.teardown(() => app.close());
  t.equal((await app.inject('/models')).statusCode, 401);
  t.equal((await app.inject({ method: 'POST', url: '/infer', payload: embedderRequest([5, 6]) })).statusCode, 401);
  t.equal((await app.inject({ url: '/models', headers: { authorization: 'Bearer s3cret' } })).statusCode, 200);
  t.equal((await app.inject('/health/live')).statusCode, 200);
  t.equal((await app.inject('/health/ready')).statusCode, 200);
  t.equal((await app.inject('/v2/health/ready')).statusCode, 200);
});
