// text-generation-inference's and text-embeddings-inference's own routes (POST /, /generate,
// /generate_stream, /info) with Hugging Face's own clients: @huggingface/inference (the current
// release for featureExtraction, which posts TEI's body to the endpoint URL; 4.13.16, the last
// release whose textGeneration speaks TGI's protocol, for generation) and huggingface_hub's
// InferenceClient(base_url=...). Oracles: /v1/completions and /infer (greedy answers checked
// against transformers in their own tests, and here against the fixture's transformers tokens),
// /embed and transformers' embeddings, and log-probabilities recomputed from the full model's
// logits through raw-tensor /infer.
import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { AddressInfo } from 'node:net';

import { InferenceClient } from '@huggingface/inference';
import { InferenceClient as TgiClient } from 'hf-inference-tgi';

import { readJson, repoRoot } from '../helpers/python-fixtures.js';
import { maxDiff, serverFixtures, testApp } from '../helpers/server.js';

interface GenCase {
  prompt: string;
  max_new_tokens: number;
  token_ids: number[];
  eos_token_id: number;
}
const cases = readJson<{ generation: GenCase[]; sentences: { texts: string[]; normalized: number[][] } }>(join(serverFixtures(), 'cases.json'));
const manifestOf = (name: string) => readJson<{ dtype: string; generation?: { context_length: number }; embedding?: { pooling: string } }>(join(serverFixtures(), 'models', name, 'atenspace.json'));

function repositoryOf(models: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'atenspace-tgi-'));
  for (const name of models) cpSync(join(serverFixtures(), 'models', name), join(dir, name), { recursive: true });
  return dir;
}

async function serve(t: Test, models: string[]) {
  const { app } = await testApp({ MODEL_REPOSITORY: repositoryOf(models), LOAD_MODELS: 'all' });
  t.teardown(() => app.close());
  await app.listen({ port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
  };
  const json = async <T = any>(path: string, body: unknown): Promise<T> => {
    const res = await post(path, body);
    if (res.status !== 200) throw new Error(`${path}: ${res.status} ${res.text}`);
    return JSON.parse(res.text) as T;
  };
  return { base, post, json };
}

/** The data of each SSE event of a body. */
const events = (body: string) =>
  body
    .split('\n\n')
    .filter((e) => e.startsWith('data:'))
    .map((e) => JSON.parse(e.slice(5)));

/** What generate() yields without EOS: the fixture's transformers tokens up to the EOS. */
const untilEos = (c: GenCase) => (c.token_ids.includes(c.eos_token_id) ? c.token_ids.slice(0, c.token_ids.indexOf(c.eos_token_id)) : c.token_ids);

t.test('TGI and TEI routes with a text-generation and an embedding model', async (t) => {
  const { base, post, json } = await serve(t, ['demo-gpt2', 'demo-embedder']);
  const tgi = new TgiClient(undefined, { endpointUrl: base, retry_on_error: false });
  const hf = new InferenceClient(undefined, { endpointUrl: base, retry_on_error: false });

  t.test('textGeneration (POST /, TGI body) equals /v1/completions and transformers, greedy', async (t) => {
    for (const c of cases.generation) {
      const out = await tgi.textGeneration({ inputs: c.prompt, parameters: { max_new_tokens: c.max_new_tokens, details: true } });
      const completion = await json('/v1/completions', { model: 'demo-gpt2', prompt: c.prompt, max_tokens: c.max_new_tokens, temperature: 0 });
      t.equal(out.generated_text, completion.choices[0].text, `"${c.prompt}": the same text as /v1/completions`);
      const details = (out as { details?: any }).details;
      t.ok(details, 'details were asked for');
      const expected = untilEos(c);
      t.equal(details.generated_tokens, expected.length + (expected.length < c.token_ids.length ? 1 : 0), 'generated_tokens counts the EOS as TGI does');
      t.equal(completion.usage.completion_tokens, expected.length);
      t.same(
        details.tokens.filter((x: any) => !x.special).map((x: any) => x.id),
        expected,
        'the token ids transformers generated',
      );
      t.equal(details.finish_reason, expected.length < c.token_ids.length ? 'eos_token' : 'length');
      t.equal(details.seed, null, 'greedy: no seed');
      t.same(details.prefill, []);
      t.equal(details.tokens.map((x: any) => x.text).join(''), out.generated_text, 'token texts concatenate to the text');
    }
  });

  t.test('POST / with a TGI body answers an array, /generate an object', async (t) => {
    const c = cases.generation[0]!;
    const body = { inputs: c.prompt, parameters: { max_new_tokens: c.max_new_tokens } };
    const root = await json('/', body);
    t.ok(Array.isArray(root) && root.length === 1, 'an array of one, as TGI');
    t.same(Object.keys(root[0]), ['generated_text'], 'no details unless asked');
    const generate = await json('/generate', body);
    t.same(generate, root[0]);
  });

  t.test('log-probabilities equal log softmax of the full model’s logits (raw-tensor /infer)', async (t) => {
    const c = cases.generation[1]!;
    const out = await json('/generate', { inputs: c.prompt, parameters: { max_new_tokens: 6, details: true } });
    const tokens = await json<{ id: number }[][]>('/tokenize', { model: 'demo-gpt2', inputs: c.prompt });
    const ids = tokens[0]!.map((x) => x.id);
    for (const [i, token] of (out.details.tokens as { id: number; logprob: number }[]).entries()) {
      const n = ids.length;
      const raw = await json('/infer', {
        model: 'demo-gpt2',
        inputs: [
          { name: 'input_ids', shape: [1, n], datatype: 'INT64', data: ids },
          { name: 'attention_mask', shape: [1, n], datatype: 'INT64', data: new Array(n).fill(1) },
        ],
      });
      const logits = raw.outputs.find((o: { name: string }) => o.name === 'logits');
      const vocab = logits.shape[2] as number;
      const row = (logits.data as number[]).slice((n - 1) * vocab, n * vocab);
      const max = Math.max(...row);
      const expected = row[token.id]! - max - Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0));
      t.ok(Math.abs(token.logprob - expected) < 1e-4, `token ${i}: logprob ${token.logprob} vs ${expected}`);
      ids.push(token.id);
    }
  });

  t.test('textGenerationStream: one event per token, adding up to the whole answer', async (t) => {
    for (const c of cases.generation) {
      const parameters = { max_new_tokens: c.max_new_tokens, details: true };
      const whole = await json('/generate', { inputs: c.prompt, parameters });
      const seen: any[] = [];
      for await (const event of tgi.textGenerationStream({ inputs: c.prompt, parameters })) seen.push(event);
      t.equal(seen.length, whole.details.generated_tokens, `"${c.prompt}": one event per token`);
      t.same(
        seen.map((e) => e.index),
        seen.map((_, i) => i + 1),
        'indexes from 1',
      );
      t.same(seen.map((e) => e.token), whole.details.tokens, 'the same tokens, texts and log-probabilities');
      t.ok(seen.slice(0, -1).every((e) => e.generated_text === null && e.details === null), 'only the last event has the text and details');
      const last = seen[seen.length - 1];
      t.equal(last.generated_text, whole.generated_text);
      t.same(last.details, { finish_reason: whole.details.finish_reason, generated_tokens: whole.details.generated_tokens, seed: null, input_length: (await json('/tokenize', { model: 'demo-gpt2', inputs: c.prompt }))[0].length });
      t.equal(seen.filter((e) => !e.token.special).map((e) => e.token.text).join(''), whole.generated_text, 'the pieces concatenate to generated_text');
    }
    const raw = await post('/generate_stream', { inputs: 'hello world', parameters: { max_new_tokens: 3 } });
    t.match(raw.type, /^text\/event-stream/);
    t.notMatch(raw.text, /\[DONE\]/, 'no [DONE], as TGI');
    t.equal(events(raw.text).at(-1).details, null, 'no details unless asked');
    const viaRoot = await post('/', { inputs: 'hello world', parameters: { max_new_tokens: 3 }, stream: true });
    t.same(events(viaRoot.text), events(raw.text), 'POST / with stream: true streams the same events');
  });

  t.test('sampling: the seed repeats the run and equals /infer’s with the same seed; an EOS ends it as eos_token', async (t) => {
    let eosSeen = false;
    for (let seed = 1; seed <= 40 && !eosSeen; seed++) {
      const parameters = { do_sample: true, temperature: 1.7, top_k: 200, seed, max_new_tokens: 40, details: true };
      const a = await json('/generate', { inputs: 'the cat', parameters });
      const infer = await json('/infer', { model: 'demo-gpt2', text: 'the cat', max_new_tokens: 40, temperature: 1.7, top_k: 200, seed });
      const ids = a.details.tokens.filter((x: any) => !x.special).map((x: any) => x.id);
      t.same(ids, infer.token_ids, `seed ${seed}: the tokens /infer samples`);
      t.equal(a.details.seed, seed);
      if (infer.finish_reason === 'eos') {
        eosSeen = true;
        const last = a.details.tokens.at(-1);
        t.equal(a.details.finish_reason, 'eos_token');
        t.equal(last.special, true, 'the EOS is a special token');
        t.equal(last.id, cases.generation[0]!.eos_token_id);
        t.equal(a.details.generated_tokens, infer.tokens + 1);
        t.equal(a.generated_text, infer.text, 'the EOS is not in the text');
        const b = await json('/generate', { inputs: 'the cat', parameters });
        t.same(b, a, 'the same seed, the same answer');
      }
    }
    t.ok(eosSeen, 'some seed ended with EOS');
    const unseeded = await json('/generate', { inputs: 'the cat', parameters: { do_sample: true, max_new_tokens: 3, details: true } });
    t.ok(Number.isInteger(unseeded.details.seed), 'a sampled run without a seed reports the one it used');
  });

  t.test('stop sequences are kept, as TGI keeps them; return_full_text; truncate keeps the last tokens', async (t) => {
    const c = cases.generation[1]!;
    const plain = await json('/generate', { inputs: c.prompt, parameters: { max_new_tokens: c.max_new_tokens } });
    const stop = plain.generated_text.slice(3, 6);
    const cut = await json('/v1/completions', { model: 'demo-gpt2', prompt: c.prompt, max_tokens: c.max_new_tokens, temperature: 0, stop: [stop] });
    const stopped = await json('/generate', { inputs: c.prompt, parameters: { max_new_tokens: c.max_new_tokens, stop: [stop], details: true } });
    t.equal(stopped.details.finish_reason, 'stop_sequence');
    t.ok(stopped.generated_text.startsWith(cut.choices[0].text + stop), `"${stopped.generated_text}" keeps the stop sequence that /v1/completions cuts ("${cut.choices[0].text}")`);
    t.ok(plain.generated_text.startsWith(stopped.generated_text), 'and stops there');

    const full = await json('/generate', { inputs: c.prompt, parameters: { max_new_tokens: c.max_new_tokens, return_full_text: true } });
    t.equal(full.generated_text, c.prompt + plain.generated_text);

    const tokens = (await json('/tokenize', { model: 'demo-gpt2', inputs: c.prompt }))[0] as { start: number }[];
    const tail = c.prompt.slice(tokens[tokens.length - 2]!.start);
    const truncated = await json('/generate', { inputs: c.prompt, parameters: { max_new_tokens: 8, truncate: 2, details: true } });
    const ofTail = await json('/generate', { inputs: tail, parameters: { max_new_tokens: 8, details: true } });
    t.same(truncated, ofTail, `truncate: 2 generates as the prompt's last two tokens ("${tail}") do`);
  });

  t.test('featureExtraction (POST /, TEI body) equals /embed and transformers', async (t) => {
    const texts = cases.sentences.texts;
    const vectors = (await hf.featureExtraction({ inputs: texts })) as number[][];
    const embed = await json<number[][]>('/embed', { inputs: texts });
    t.equal(vectors.length, texts.length);
    vectors.forEach((v, i) => {
      t.same(v, embed[i], `text ${i}: /embed's vector`);
      t.ok(maxDiff(v, cases.sentences.normalized[i]!) < 1e-4, `text ${i}: transformers' embedding`);
    });
    const raw = (await hf.featureExtraction({ inputs: texts[0]!, normalize: false })) as number[][];
    t.same(raw, await json('/embed', { inputs: texts[0], normalize: false }), 'normalize: false is honoured');
    t.ok(maxDiff(raw[0]!, vectors[0]!) > 1e-3, 'and differs from the normalised vector');
    t.same(await json('/', { inputs: texts[0], parameters: { normalize: false } }), raw, 'also under parameters, as huggingface_hub sends it');
    t.same(await json('/', { inputs: texts[0], dimensions: 8, truncate: true, truncation_direction: 'Right' }), await json('/embed', { inputs: texts[0], dimensions: 8, truncate: true }));
  });

  t.test('GET /info: TEI’s for the embedding default, TGI’s for a text-generation model', async (t) => {
    const tei = (await (await fetch(`${base}/info`)).json()) as Record<string, any>;
    t.match(tei, { model_id: 'demo-embedder', model_dtype: manifestOf('demo-embedder').dtype, model_type: { embedding: { pooling: manifestOf('demo-embedder').embedding!.pooling } }, auto_truncate: false, sha: null });
    for (const key of ['max_concurrent_requests', 'max_input_length', 'max_batch_tokens', 'max_client_batch_size', 'tokenization_workers']) t.ok(Number.isInteger(tei[key]), `TEI's ${key}`);
    t.equal(tei.max_client_batch_size, 256, 'MAX_TEXTS_PER_REQUEST');
    const info = (await (await fetch(`${base}/info?model=demo-gpt2`)).json()) as Record<string, any>;
    const context = manifestOf('demo-gpt2').generation!.context_length;
    t.match(info, { model_id: 'demo-gpt2', model_pipeline_tag: 'text-generation', model_dtype: 'float32', model_device_type: 'cpu', max_total_tokens: context, max_input_tokens: context - 1, max_best_of: 1, router: 'atenspace-serve' });
    t.ok(Number.isInteger(info.max_concurrent_requests) && Number.isInteger(info.max_batch_total_tokens));
    const missing = await fetch(`${base}/info?model=nope`);
    t.equal(missing.status, 404);
  });

  t.test('bad requests: a 400 naming the problem, which the clients throw', async (t) => {
    const refused: [Record<string, unknown>, RegExp][] = [
      [{ best_of: 2 }, /best_of.*only 1/],
      [{ decoder_input_details: true }, /decoder_input_details/],
      [{ repetition_penalty: 1.2 }, /repetition_penalty/],
      [{ frequency_penalty: 0.5 }, /frequency_penalty/],
      [{ typical_p: 0.9 }, /typical_p/],
      [{ top_n_tokens: 3 }, /top_n_tokens/],
      [{ watermark: true }, /watermark/],
      [{ grammar: { type: 'json', value: {} } }, /grammar/],
      [{ adapter_id: 'lora' }, /adapter_id/],
      [{ temperature: 0 }, /temperature/],
      [{ max_new_tokens: 5000 }, /MAX_NEW_TOKENS/],
      [{ no_such_parameter: 1 }, /unknown field 'no_such_parameter' in body\.parameters/],
    ];
    for (const [parameters, message] of refused) {
      const res = await post('/generate', { inputs: 'hello', parameters });
      t.equal(res.status, 400, JSON.stringify(parameters));
      const body = JSON.parse(res.text);
      t.match(body, { error: message, error_type: 'validation' });
      t.ok(typeof body.code === 'string', 'and our code');
      const stream = await post('/generate_stream', { inputs: 'hello', parameters });
      t.equal(stream.status, 400, 'refused before the stream opens');
      const thrown = await tgi.textGeneration({ inputs: 'hello', parameters: parameters as never }).catch((e: Error) => e);
      t.ok(thrown instanceof Error && message.test(thrown.message), `the client throws our message: ${(thrown as Error).message}`);
    }
    const noOps = { best_of: 1, decoder_input_details: false, repetition_penalty: 1, frequency_penalty: 0, typical_p: 1, top_n_tokens: 0, watermark: false, grammar: null, adapter_id: null, max_new_tokens: 3 };
    t.equal((await post('/generate', { inputs: 'hello', parameters: noOps })).status, 200, 'their no-op values are accepted');

    const mixed = await post('/', { inputs: ['a', 'b'], parameters: { max_new_tokens: 3 } });
    t.equal(mixed.status, 400);
    t.match(JSON.parse(mixed.text).error, /TGI generate request.*inputs/);
    const wrongModel = await post('/', { inputs: ['a', 'b'], model: 'demo-gpt2' });
    t.match(JSON.parse(wrongModel.text), { error: /demo-gpt2' is a text-generation model/, error_type: 'validation' });
    const left = await hf.featureExtraction({ inputs: 'a', truncation_direction: 'left' } as never).catch((e: Error) => e);
    t.ok(left instanceof Error && /truncation_direction: only right/.test(left.message), `featureExtraction throws our message: ${(left as Error).message}`);
    const prompt = await post('/', { inputs: 'a', prompt_name: 'query' });
    t.match(JSON.parse(prompt.text), { error: /prompt_name/ });
    const vit = await post('/generate', { inputs: 'a', model: 'demo-embedder' });
    t.equal(vit.status, 400);
    t.match(JSON.parse(vit.text).error, /embedding model/);
  });

  t.test('huggingface_hub InferenceClient(base_url=...): feature_extraction and text_generation', async (t) => {
    let out: any;
    try {
      // Asynchronously: the server answering the script runs in this process.
      const { stdout } = await promisify(execFile)('python3', [join(repoRoot, 'test', 'server', 'tgi_hub_client.py'), base], { encoding: 'utf8', timeout: 120_000 });
      out = JSON.parse(stdout);
    } catch (error) {
      t.fail(`the script failed: ${(error as Error).message}`);
      return;
    }
    if (out.skip) {
      t.skip(out.skip);
      return;
    }
    const embed = await json<number[][]>('/embed', { inputs: ['hello world', 'a second text'] });
    t.ok(maxDiff(out.embeddings[0], embed[0]!) < 1e-6 && maxDiff(out.embeddings[1], embed[1]!) < 1e-6, 'feature_extraction: /embed’s vectors');
    t.ok(maxDiff(out.embedding_raw[0], (await json<number[][]>('/embed', { inputs: 'hello world', normalize: false }))[0]!) < 1e-6, 'normalize=False is honoured (one text: one row)');
    const completion = await json('/v1/completions', { model: 'demo-gpt2', prompt: 'hello world', max_tokens: 12, temperature: 0 });
    t.equal(out.text, completion.choices[0].text, 'text_generation: /v1/completions’ greedy text');
    t.equal(out.details.generated_text, out.text);
    t.equal(out.details.generated_tokens, completion.usage.completion_tokens);
    t.same(out.details.token_ids, untilEos(cases.generation[0]!), 'transformers’ tokens');
    t.ok(out.details.logprobs.every((x: number) => x <= 0), 'log-probabilities');
    t.equal(out.stream.join(''), out.text, 'the stream’s pieces add up to the text');
    t.same(out.stream_last, { generated_text: out.text, finish_reason: 'length', generated_tokens: 12 });
    t.equal(out.error?.type, 'ValidationError', 'TGI’s error_type becomes the client’s ValidationError');
    t.match(out.error?.message, /best_of/);
  });
});

t.test('with only a text-generation model, a bare POST / generates and /info is TGI’s', async (t) => {
  const { base, json } = await serve(t, ['demo-gpt2']);
  const c = cases.generation[0]!;
  const root = await json('/', { inputs: c.prompt });
  const completion = await json('/v1/completions', { model: 'demo-gpt2', prompt: c.prompt, max_tokens: 100, temperature: 0 });
  t.equal(root[0].generated_text, completion.choices[0].text, 'default max_new_tokens 100, as TGI');
  const info = (await (await fetch(`${base}/info`)).json()) as Record<string, any>;
  t.equal(info.model_id, 'demo-gpt2');
  t.equal(info.model_pipeline_tag, 'text-generation');
  const tgi = new TgiClient(undefined, { endpointUrl: base, retry_on_error: false });
  const out = await tgi.textGeneration({ inputs: c.prompt });
  t.equal(out.generated_text, completion.choices[0].text, 'textGeneration without parameters');
});
