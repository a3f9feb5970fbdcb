// Text tasks end to end over HTTP, against transformers run in Python on the same demo
// checkpoints: sentence embeddings, greedy generation, TEI and OpenAI routes, the cache.
import t from 'tap';
import { join } from 'node:path';

import { readJson } from '../helpers/python-fixtures.js';
import { maxDiff, metricValue, serverFixtures, testApp } from '../helpers/server.js';

interface Cases {
  sentences: { texts: string[]; normalized: number[][]; raw: number[][]; dim32: number[][]; tokens: number };
  generation: { prompt: string; max_new_tokens: number; token_ids: number[]; eos_token_id: number }[];
}
const cases = readJson<Cases>(join(serverFixtures(), 'cases.json'));

const { app } = await testApp({ LOAD_MODELS: 'demo-embedder,demo-gpt2', RESPONSE_CACHE_SIZE: '1MiB' });
t.teardown(() => app.close());
const post = (url: string, payload: object) => app.inject({ method: 'POST', url, payload });

t.test('embeddings equal sentence-transformers pooling of transformers eager', async (t) => {
  const { texts, normalized, raw, dim32, tokens } = cases.sentences;
  const res = await post('/infer', { model: 'demo-embedder', text: texts });
  t.equal(res.statusCode, 200);
  const body = res.json();
  t.equal(body.embeddings.length, texts.length);
  body.embeddings.forEach((v: number[], i: number) => t.ok(maxDiff(v, normalized[i]!) <= 1e-4, `text ${i}: ${maxDiff(v, normalized[i]!).toExponential(1)}`));
  t.equal(body.usage.tokens, tokens, 'usage counts the tokens');

  const unnormalized = (await post('/infer', { model: 'demo-embedder', text: texts, normalize: false })).json();
  unnormalized.embeddings.forEach((v: number[], i: number) => t.ok(maxDiff(v, raw[i]!) <= 1e-4, `raw ${i}`));
  const short = (await post('/infer', { model: 'demo-embedder', text: texts, dimensions: 32 })).json();
  short.embeddings.forEach((v: number[], i: number) => {
    t.equal(v.length, 32);
    t.ok(maxDiff(v, dim32[i]!) <= 1e-4, `Matryoshka ${i}`);
  });
});

t.test('a batch of mixed-length texts equals each text sent alone', async (t) => {
  const { texts } = cases.sentences;
  const together = (await post('/infer', { model: 'demo-embedder', text: texts })).json().embeddings as number[][];
  const alone = await Promise.all(texts.map((text) => post('/infer', { model: 'demo-embedder', text }).then((r) => r.json().embeddings[0] as number[])));
  alone.forEach((v, i) => t.ok(maxDiff(v, together[i]!) <= 1e-5, `text ${i}`));
});

t.test('greedy generation is token-identical to transformers generate(do_sample=False)', async (t) => {
  for (const c of cases.generation) {
    const res = await post('/infer', { model: 'demo-gpt2', text: c.prompt, max_new_tokens: c.max_new_tokens });
    t.equal(res.statusCode, 200, res.body.slice(0, 200));
    const body = res.json();
    const expected = c.token_ids.includes(c.eos_token_id) ? c.token_ids.slice(0, c.token_ids.indexOf(c.eos_token_id)) : c.token_ids;
    t.same(body.token_ids, expected, `"${c.prompt}"`);
    t.equal(body.tokens, expected.length);
    t.equal(body.finish_reason, expected.length < c.token_ids.length ? 'eos' : 'length');
    t.equal(typeof body.text, 'string');
  }
});

t.test('sampling: a seed repeats, stop sequences cut, SSE streams the same text', async (t) => {
  const req = { model: 'demo-gpt2', text: 'hello world', max_new_tokens: 24, temperature: 1.5, top_k: 50, top_p: 0.95 };
  const a = (await post('/infer', { ...req, seed: 7 })).json();
  const b = (await post('/infer', { ...req, seed: 7 })).json();
  t.same(a.token_ids, b.token_ids, 'same seed, same tokens');
  const others = await Promise.all([8, 9, 10].map((seed) => post('/infer', { ...req, seed }).then((r) => r.json().token_ids.join())));
  t.ok(others.some((o) => o !== a.token_ids.join()), 'other seeds give other tokens');

  const full = (await post('/infer', { model: 'demo-gpt2', text: 'the quick brown fox', max_new_tokens: 20 })).json();
  const stop = full.text.slice(3, 5);
  t.ok(stop.length === 2, 'picked a stop sequence from the greedy text');
  const stopped = (await post('/infer', { model: 'demo-gpt2', text: 'the quick brown fox', max_new_tokens: 20, stop })).json();
  t.equal(stopped.finish_reason, 'stop');
  t.equal(stopped.text, full.text.slice(0, full.text.indexOf(stop)), 'text ends before the stop sequence');

  const sse = await post('/infer', { model: 'demo-gpt2', text: 'the quick brown fox', max_new_tokens: 20, stream: true });
  t.equal(sse.statusCode, 200);
  t.match(sse.headers['content-type'], /text\/event-stream/);
  const events = sse.body.split('\n\n').filter(Boolean).map((e) => e.replace(/^data: /, ''));
  t.equal(events[events.length - 1], '[DONE]');
  const summary = JSON.parse(events[events.length - 2]!);
  t.equal(summary.text, full.text, 'the stream ends with the same text as the plain request');
  const pieces = events.slice(0, -2).map((e) => JSON.parse(e).text).join('');
  t.equal(pieces, full.text, 'the pieces add up to the text');
});

t.test('context limit: generation stops at the context length', async (t) => {
  const long = 'hello world '.repeat(35); // about 210 tokens of this tiny tokenizer
  const res = await post('/infer', { model: 'demo-gpt2', text: long, max_new_tokens: 1024 });
  t.equal(res.statusCode, 200);
  const body = res.json();
  t.equal(body.usage.prompt_tokens + body.tokens <= 256, true, 'prompt + generated within the 256-token context');
  t.equal(body.finish_reason === 'length' || body.finish_reason === 'eos', true);
});

t.test('bad task input is a 4xx naming the problem', async (t) => {
  const expect = async (payload: object, status: number, message: RegExp, url = '/infer') => {
    const res = await post(url, payload);
    t.equal(res.statusCode, status, `${JSON.stringify(payload).slice(0, 60)} -> ${res.body.slice(0, 120)}`);
    t.match(JSON.stringify(res.json()), message);
  };
  await expect({ model: 'demo-embedder', text: '' }, 400, /text 0 is empty/);
  await expect({ model: 'demo-embedder', text: ['ok', '  '] }, 400, /text 1 is empty/);
  await expect({ model: 'demo-embedder', text: 'word '.repeat(400) }, 400, /more than the model's limit of 128 tokens.*truncate/);
  await expect({ model: 'demo-embedder', text: 'hi', dimensions: 1000 }, 400, /dimensions must be an integer from 1 to the model's 96/);
  await expect({ model: 'demo-embedder', text: 'hi', max_new_tokens: 5 }, 400, /'max_new_tokens' is a text-generation field, but model 'demo-embedder' is an embedding model/);
  await expect({ model: 'demo-embedder', image: 'aGVsbG8=' }, 400, /'image' is an image-classification field/);
  await expect({ model: 'demo-gpt2', text: 'hi', max_new_tokens: 0 }, 400, /max_new_tokens/);
  await expect({ model: 'demo-gpt2', text: 'hi', max_new_tokens: 100000 }, 400, /max_new_tokens is 100000, more than MAX_NEW_TOKENS \(1024\)/);
  await expect({ model: 'demo-gpt2', text: 'hi' }, 400, /missing field 'max_new_tokens'/);
  await expect({ model: 'demo-gpt2', text: 'hello '.repeat(300), max_new_tokens: 5 }, 400, /limit of 256 tokens/);
  await expect({ text: 'hi' }, 400, /missing field 'model'/);
  const truncated = await post('/infer', { model: 'demo-embedder', text: 'word '.repeat(400), truncate: true });
  t.equal(truncated.statusCode, 200, 'truncate: true accepts the long text');
});

t.test('a request of many texts is one model-cache hit, not one per text', async (t) => {
  const hits = async () => metricValue((await app.inject('/metrics')).body, 'atenspace_model_cache_hits_total', { model: 'demo-embedder' });
  const before = await hits();
  await post('/infer', { model: 'demo-embedder', text: ['one', 'two', 'three'] });
  t.equal((await hits()) - before, 1);
});

t.test('TEI /embed and /tokenize, OpenAI /v1/embeddings', async (t) => {
  const { texts, normalized } = cases.sentences;
  const tei = await post('/embed', { inputs: texts });
  t.equal(tei.statusCode, 200);
  (tei.json() as number[][]).forEach((v, i) => t.ok(maxDiff(v, normalized[i]!) <= 1e-4, `/embed ${i}`));
  const single = (await post('/embed', { inputs: texts[0] })).json();
  t.equal(single.length, 1);
  const tokens = (await post('/tokenize', { inputs: 'hello world' })).json();
  t.ok(tokens[0][0].special, 'starts with a special token ([CLS])');
  t.same(
    tokens[0].filter((tok: { special: boolean }) => !tok.special).map((tok: { start: number; stop: number }) => 'hello world'.slice(tok.start, tok.stop)).join(' '),
    'hello world',
    'offsets point into the text',
  );

  const openai = await post('/v1/embeddings', { model: 'demo-embedder', input: texts.slice(0, 2) });
  t.equal(openai.statusCode, 200);
  const o = openai.json();
  t.equal(o.object, 'list');
  t.equal(o.data[1].index, 1);
  t.ok(maxDiff(o.data[0].embedding, normalized[0]!) <= 1e-4);
  const b64 = (await post('/v1/embeddings', { model: 'demo-embedder', input: texts[0], encoding_format: 'base64' })).json();
  const decoded = Array.from(new Float32Array(Uint8Array.from(Buffer.from(b64.data[0].embedding, 'base64')).buffer));
  t.ok(maxDiff(decoded, normalized[0]!) <= 1e-4, 'base64 is little-endian float32');
  const missing = await post('/v1/embeddings', { model: 'nope', input: 'x' });
  t.equal(missing.statusCode, 404);
  t.equal(missing.json().error.type, 'invalid_request_error', 'OpenAI-shaped error');
  t.match(missing.json().error.message, /nope/);
});

t.test('response cache: hits return identical bodies; sampling is never cached', async (t) => {
  const req = { model: 'demo-embedder', text: ['cache me', 'and me'] };
  const first = await post('/infer', req);
  const second = await post('/infer', { text: ['cache me', 'and me'], model: 'demo-embedder' });
  t.equal(first.headers['x-cache'], 'miss');
  t.equal(second.headers['x-cache'], 'hit', 'same request with keys reordered hits');
  t.equal(second.body, first.body, 'identical body');
  const sampled = await post('/infer', { model: 'demo-gpt2', text: 'hi', max_new_tokens: 3, temperature: 1, seed: 1 });
  t.equal(sampled.headers['x-cache'], 'off');
  const metrics = (await app.inject('/metrics')).body;
  t.ok(metricValue(metrics, 'atenspace_response_cache_hits_total', { model: 'demo-embedder' }) >= 1);
  t.ok(metricValue(metrics, 'atenspace_response_cache_misses_total', { model: 'demo-embedder' }) >= 1);
  t.ok(metricValue(metrics, 'atenspace_request_duration_seconds_count', { model: 'demo-embedder', task: 'embedding', stage: 'preprocess' }) >= 1, 'preprocess stage');
  t.ok(metricValue(metrics, 'atenspace_request_duration_seconds_count', { model: 'demo-embedder', task: 'embedding', stage: 'postprocess' }) >= 1, 'postprocess stage');
  t.ok(metricValue(metrics, 'atenspace_request_tokens_count', { model: 'demo-embedder' }) >= 1, 'tokens per request');
});
