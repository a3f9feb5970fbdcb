// Every per-request limit is a setting: past it, a 413 (too much) or 400 (out of range) with
// code LIMIT_EXCEEDED naming the setting; at the limit, the request is served.
import { randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';

import sharp from 'sharp';
import t, { type Test } from 'tap';

import { loadConfig } from '../../src/server/config.js';
import { embedderRequest, testApp } from '../helpers/server.js';

const { app } = await testApp({
  LOAD_MODELS: 'demo-embedder,demo-gpt2,demo-vit',
  BODY_LIMIT: '64KiB',
  MAX_TENSOR_ELEMENTS: '30',
  MAX_TEXTS_PER_REQUEST: '3',
  MAX_TOKENS_PER_TEXT: '6',
  MAX_IMAGE_BYTES: '4KiB',
  MAX_IMAGE_PIXELS: '4096',
  MAX_NEW_TOKENS: '4',
  MAX_ATOMS_PER_BATCH: '2',
  MAX_K: '3',
});
t.teardown(() => app.close());

async function over(t: Test, request: { method?: string; url: string; payload?: unknown; headers?: Record<string, string> }, status: number, limit: string, message: RegExp) {
  const res = await app.inject({ method: (request.method ?? 'POST') as 'POST', url: request.url, payload: request.payload as string, ...(request.headers ? { headers: request.headers } : {}) });
  t.equal(res.statusCode, status, `${limit}: status ${status}`);
  const body = res.json();
  const code = body.code;
  t.equal(code, 'LIMIT_EXCEEDED', `${limit}: code`);
  t.equal(body.limit ?? body.error?.param, limit, `${limit}: names the setting`);
  t.match(body.error?.message ?? body.error, message, `${limit}: message`);
}

const ok = async (t: Test, request: { url: string; payload: unknown }, what: string) => {
  const res = await app.inject({ method: 'POST', url: request.url, payload: request.payload as object });
  t.ok(res.statusCode < 300, `${what}: served (${res.statusCode} ${res.body.slice(0, 120)})`);
};

const png = (w: number, h: number) => sharp({ create: { width: w, height: h, channels: 3, background: '#336699' } }).png().toBuffer();

t.test('defaults are safe and documented', async (t) => {
  const config = loadConfig({}, []);
  t.same(
    [config.bodyLimit, config.maxTensorElements, config.maxTextsPerRequest, config.maxTokensPerText, config.maxImageBytes, config.maxImagePixels, config.maxNewTokens, config.maxAtomsPerBatch, config.maxK, config.maxQueueSize],
    [16 * 2 ** 20, 16 * 2 ** 20, 256, 0, 16 * 2 ** 20, 40_000_000, 1024, 10_000, 1000, 1024],
  );
  t.throws(() => loadConfig({ MAX_K: '0' }, []), /MAX_K must be an integer from 1/);
});

t.test('body size', async (t) => {
  await over(t, { url: '/infer', payload: { model: 'demo-embedder', text: 'x'.repeat(70_000) } }, 413, 'BODY_LIMIT', /larger than BODY_LIMIT \(65536 bytes\)/);
});

t.test('tensor elements per request', async (t) => {
  await over(t, { url: '/infer', payload: embedderRequest(new Array(11).fill(5)) }, 413, 'MAX_TENSOR_ELEMENTS', /elements of the input tensors is 33, more than MAX_TENSOR_ELEMENTS \(30\)/);
  await ok(t, { url: '/infer', payload: embedderRequest(new Array(10).fill(5)) }, '30 elements');
  // A shape whose product overflows is refused before anything is allocated.
  const huge = { model: 'demo-embedder', inputs: [{ name: 'input_ids', shape: [2 ** 31, 2 ** 31, 2 ** 31], datatype: 'INT64', data: [1] }] };
  await over(t, { url: '/infer', payload: huge }, 413, 'MAX_TENSOR_ELEMENTS', /more than MAX_TENSOR_ELEMENTS/);
  await over(t, { url: '/v2/models/demo-embedder/infer', payload: { inputs: huge.inputs } }, 413, 'MAX_TENSOR_ELEMENTS', /more than MAX_TENSOR_ELEMENTS/);
});

t.test('texts per request, on every text route', async (t) => {
  const four = ['a', 'b', 'c', 'd'];
  await over(t, { url: '/infer', payload: { model: 'demo-embedder', text: four } }, 413, 'MAX_TEXTS_PER_REQUEST', /number of texts is 4, more than MAX_TEXTS_PER_REQUEST \(3\)/);
  await over(t, { url: '/embed', payload: { inputs: four } }, 413, 'MAX_TEXTS_PER_REQUEST', /more than MAX_TEXTS_PER_REQUEST/);
  await over(t, { url: '/tokenize', payload: { inputs: four } }, 413, 'MAX_TEXTS_PER_REQUEST', /more than MAX_TEXTS_PER_REQUEST/);
  await over(t, { url: '/v1/embeddings', payload: { model: 'demo-embedder', input: four } }, 413, 'MAX_TEXTS_PER_REQUEST', /more than MAX_TEXTS_PER_REQUEST/);
  await ok(t, { url: '/embed', payload: { inputs: four.slice(0, 3) } }, 'three texts');
});

t.test('tokens per text', async (t) => {
  const long = 'one two three four five six seven eight nine ten';
  await over(t, { url: '/embed', payload: { inputs: long } }, 413, 'MAX_TOKENS_PER_TEXT', /tokens long, more than MAX_TOKENS_PER_TEXT \(6\)/);
  await over(t, { url: '/infer', payload: { model: 'demo-gpt2', text: long, max_new_tokens: 2 } }, 413, 'MAX_TOKENS_PER_TEXT', /more than MAX_TOKENS_PER_TEXT/);
  // truncate cuts to the setting, as it would to the model's own limit.
  const res = await app.inject({ method: 'POST', url: '/infer', payload: { model: 'demo-embedder', text: long, truncate: true } });
  t.equal(res.statusCode, 200);
  t.equal(res.json().usage.tokens, 6, 'truncated to MAX_TOKENS_PER_TEXT');
});

t.test('image bytes and pixels, JSON and multipart', async (t) => {
  const noise = randomBytes(60 * 60 * 3); // incompressible, so the PNG is over 4 KiB
  const big = await sharp(noise, { raw: { width: 60, height: 60, channels: 3 } }).png().toBuffer();
  t.ok(big.length > 4096);
  await over(t, { url: '/infer', payload: { model: 'demo-vit', image: big.toString('base64') } }, 413, 'MAX_IMAGE_BYTES', new RegExp(`the image is ${big.length} bytes, more than MAX_IMAGE_BYTES \\(4096\\)`));
  const boundary = 'limitsboundary';
  const form = Buffer.concat([
    Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="model"\r\n\r\ndemo-vit\r\n--${boundary}\r\ncontent-disposition: form-data; name="image"; filename="x.png"\r\ncontent-type: image/png\r\n\r\n`),
    big,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  await over(t, { url: '/infer', payload: form, headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } }, 413, 'MAX_IMAGE_BYTES', /larger than MAX_IMAGE_BYTES \(4096 bytes\)/);
  await over(t, { url: '/infer', payload: { model: 'demo-vit', image: (await png(65, 64)).toString('base64') } }, 413, 'MAX_IMAGE_PIXELS', /65x64 = 4160 pixels, more than MAX_IMAGE_PIXELS \(4096\)/);
  await ok(t, { url: '/infer', payload: { model: 'demo-vit', image: (await png(64, 64)).toString('base64') } }, '64x64 = 4096 pixels');
});

t.test('max_new_tokens', async (t) => {
  await over(t, { url: '/infer', payload: { model: 'demo-gpt2', text: 'hi', max_new_tokens: 5 } }, 400, 'MAX_NEW_TOKENS', /max_new_tokens is 5, more than MAX_NEW_TOKENS \(4\)/);
  await ok(t, { url: '/infer', payload: { model: 'demo-gpt2', text: 'hi', max_new_tokens: 4 } }, 'four new tokens');
});

t.test('atoms per batch and k', async (t) => {
  const node = (name: string) => ({ type: 'ConceptNode', name, embedding: [1, name.length, 0] });
  await over(t, { url: '/atoms/batch', payload: { atoms: [node('a'), node('bb'), node('ccc')] } }, 413, 'MAX_ATOMS_PER_BATCH', /number of atoms is 3, more than MAX_ATOMS_PER_BATCH \(2\)/);
  await ok(t, { url: '/atoms/batch', payload: { atoms: [node('a'), node('bb')] } }, 'two atoms');
  await over(t, { url: '/atoms/similar', payload: { embedding: [1, 1, 0], k: 4 } }, 400, 'MAX_K', /k is 4, more than MAX_K \(3\)/);
  await ok(t, { url: '/atoms/similar', payload: { embedding: [1, 1, 0], k: 3 } }, 'k = 3');
});

t.test('headers too large: 431 {error, code} with Connection: close, and the client goes on', async (t) => {
  const { app: server } = await testApp({ LOAD_MODELS: 'none' });
  t.teardown(() => server.close());
  await server.listen({ port: 0, host: '127.0.0.1' });
  const { port } = server.server.address() as { port: number };
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const get = (path: string, headers: Record<string, string> = {}) =>
    new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path, headers, agent }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      });
      req.on('error', reject);
      req.end();
    });
  t.equal((await get('/health/live')).status, 200);
  const big = await get('/health/live', { 'x-padding': 'x'.repeat(20_000) });
  t.equal(big.status, 431);
  t.equal(big.headers.connection, 'close');
  t.same(JSON.parse(big.body), { error: 'the request line and headers are larger than the server accepts (16 KiB)', code: 'HEADERS_TOO_LARGE' });
  t.equal((await get(`/models?x=${'a'.repeat(20_000)}`)).status, 431, 'a long URL too');
  t.equal((await get('/health/live')).status, 200, 'the same keep-alive client goes on without a hang-up');
});
