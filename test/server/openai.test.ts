// The OpenAI API with the official `openai` client: models, completions and chat (whole and
// streamed), n and seed, and errors in OpenAI's shape. Greedy answers are checked against
// transformers (the chat prompt rendered by transformers' apply_chat_template).
import t from 'tap';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';

import OpenAI from 'openai';

import { readJson } from '../helpers/python-fixtures.js';
import { serverFixtures, testApp } from '../helpers/server.js';

interface GenCase {
  prompt: string;
  max_new_tokens: number;
  token_ids: number[];
  eos_token_id: number;
}
interface ChatCase {
  messages: { role: 'system' | 'user' | 'assistant'; content: string }[];
  prompt: string;
  max_tokens: number;
  token_ids: number[];
  text: string;
  finish_reason: 'stop' | 'length';
}
const cases = readJson<{ generation: GenCase[]; chat: ChatCase }>(join(serverFixtures(), 'cases.json'));

// A repository with the fixture models and a GPT-2 whose export carries no chat template.
const repository = mkdtempSync(join(tmpdir(), 'atenspace-openai-'));
for (const name of ['demo-gpt2', 'demo-embedder']) cpSync(join(serverFixtures(), 'models', name), join(repository, name), { recursive: true });
cpSync(join(serverFixtures(), 'models', 'demo-gpt2'), join(repository, 'plain-gpt2'), { recursive: true });
const plainManifest = join(repository, 'plain-gpt2', 'atenspace.json');
const manifest = JSON.parse(readFileSync(plainManifest, 'utf8'));
delete manifest.tokenizer.chat_template;
manifest.name = 'plain-gpt2';
writeFileSync(plainManifest, JSON.stringify(manifest));

t.test('the openai client against /v1', async (t) => {
  const { app } = await testApp({ MODEL_REPOSITORY: repository, LOAD_MODELS: 'demo-gpt2' });
  t.teardown(() => app.close());
  await app.listen({ port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'not-needed', maxRetries: 0 });

  t.test('models', async (t) => {
    const ids: string[] = [];
    for await (const model of client.models.list()) ids.push(model.id);
    t.same(ids.sort(), ['demo-embedder', 'demo-gpt2', 'plain-gpt2']);
    const one = await client.models.retrieve('demo-gpt2');
    t.equal(one.id, 'demo-gpt2');
    t.equal(one.object, 'model');
    t.ok(one.created > 1_600_000_000, 'created is a timestamp');
    const missing = await client.models.retrieve('nope').catch((e: { status: number }) => e);
    t.equal((missing as { status: number }).status, 404);
  });

  t.test('completions: greedy equals transformers; the stream adds up to the same answer', async (t) => {
    for (const c of cases.generation) {
      const expected = c.token_ids.includes(c.eos_token_id) ? c.token_ids.slice(0, c.token_ids.indexOf(c.eos_token_id)) : c.token_ids;
      const whole = await client.completions.create({ model: 'demo-gpt2', prompt: c.prompt, max_tokens: c.max_new_tokens, temperature: 0 });
      t.equal(whole.object, 'text_completion');
      t.equal(whole.choices.length, 1);
      t.equal(whole.usage?.completion_tokens, expected.length, `"${c.prompt}": ${expected.length} tokens`);
      t.equal(whole.choices[0]!.finish_reason, expected.length < c.token_ids.length ? 'stop' : 'length');
      // The same request through /infer gives the token ids, checked against transformers in text.test.ts.
      const infer = (await (await fetch(`${base}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'demo-gpt2', text: c.prompt, max_new_tokens: c.max_new_tokens }) })).json()) as { text: string; token_ids: number[] };
      t.same(infer.token_ids, expected);
      t.equal(whole.choices[0]!.text, infer.text);
      let streamed = '';
      let finish: string | null = null;
      for await (const chunk of await client.completions.create({ model: 'demo-gpt2', prompt: c.prompt, max_tokens: c.max_new_tokens, temperature: 0, stream: true })) {
        t.equal(chunk.object, 'text_completion');
        streamed += chunk.choices[0]?.text ?? '';
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
      t.equal(streamed, whole.choices[0]!.text, 'streamed pieces concatenate to the answer');
      t.equal(finish, whole.choices[0]!.finish_reason);
    }
  });

  t.test('chat: rendered with the chat template, greedy equals transformers; streamed too', async (t) => {
    const c = cases.chat;
    const whole = await client.chat.completions.create({ model: 'demo-gpt2', messages: c.messages, max_tokens: c.max_tokens, temperature: 0 });
    t.equal(whole.object, 'chat.completion');
    t.equal(whole.choices[0]!.message.role, 'assistant');
    t.equal(whole.choices[0]!.message.content, c.text, 'the text transformers generated after apply_chat_template');
    t.equal(whole.usage?.completion_tokens, c.token_ids.length);
    t.equal(whole.choices[0]!.finish_reason, c.finish_reason);
    let streamed = '';
    let role: string | undefined;
    for await (const chunk of await client.chat.completions.create({ model: 'demo-gpt2', messages: c.messages, max_tokens: c.max_tokens, temperature: 0, stream: true, stream_options: { include_usage: true } })) {
      t.equal(chunk.object, 'chat.completion.chunk');
      role ??= chunk.choices[0]?.delta.role;
      streamed += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) t.equal(chunk.usage.completion_tokens, c.token_ids.length, 'include_usage sends the usage at the end');
    }
    t.equal(role, 'assistant');
    t.equal(streamed, c.text);
  });

  t.test('n choices with a seed; sampling repeats with the same seed', async (t) => {
    const req = { model: 'demo-gpt2', prompt: ['once upon a time', 'the cat'], max_tokens: 12, temperature: 1.2, n: 3, seed: 5 };
    const a = await client.completions.create(req);
    const b = await client.completions.create(req);
    t.equal(a.choices.length, 6, '2 prompts x 3');
    t.same(a.choices.map((c) => c.index), [0, 1, 2, 3, 4, 5]);
    t.same(a.choices.map((c) => c.text), b.choices.map((c) => c.text), 'the same seed, the same answers');
    t.ok(new Set(a.choices.slice(0, 3).map((c) => c.text)).size > 1, 'choices of one prompt differ (seed + i)');
  });

  t.test('embeddings from token ids, as OpenAI and LangChain send them', async (t) => {
    const sentences = readJson<{ sentences: { texts: string[]; normalized: number[][] } }>(join(serverFixtures(), 'cases.json')).sentences;
    const text = sentences.texts[0]!;
    const tokens = (await (await fetch(`${base}/tokenize`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'demo-embedder', inputs: text }) })).json()) as { id: number }[][];
    const ids = tokens[0]!.map((tok) => tok.id);
    const fromText = await client.embeddings.create({ model: 'demo-embedder', input: text });
    const fromIds = await client.embeddings.create({ model: 'demo-embedder', input: [ids] });
    const flat = await client.embeddings.create({ model: 'demo-embedder', input: ids });
    const expected = sentences.normalized[0]!;
    const diff = (a: number[]) => Math.max(...a.map((v, i) => Math.abs(v - expected[i]!)));
    t.ok(diff(fromText.data[0]!.embedding) < 1e-5, 'the text: sentence-transformers');
    t.ok(diff(fromIds.data[0]!.embedding) < 1e-5, 'its token ids (with the special tokens /tokenize shows): the same vector');
    t.ok(diff(flat.data[0]!.embedding) < 1e-5, 'one flat array of ids is one input');
    t.equal(fromIds.usage.prompt_tokens, ids.length);
    try {
      await client.embeddings.create({ model: 'demo-embedder', input: [[2, 99999, 3]] });
      t.fail('an id past the vocabulary must fail');
    } catch (error) {
      const e = error as { status: number; message: string };
      t.equal(e.status, 400);
      t.match(e.message, /token 1 is id 99999, outside the model's vocabulary of \d+ tokens/);
    }
  });

  t.test('errors in OpenAI shape', async (t) => {
    const bad = async (request: Promise<unknown>, status: number, code: RegExp, message: RegExp) => {
      try {
        await request;
        t.fail('expected an error');
      } catch (error) {
        const e = error as { status: number; code: string; message: string; type: string };
        t.equal(e.status, status, e.message);
        t.match(e.code, code);
        t.match(e.message, message);
        t.ok(e.type, 'has a type');
      }
    };
    await bad(client.completions.create({ model: 'nope', prompt: 'hi' }), 404, /MODEL_NOT_FOUND/, /model 'nope'/);
    await bad(client.completions.create({ model: 'demo-gpt2', prompt: 'hi', max_tokens: 5000 }), 400, /LIMIT_EXCEEDED/, /MAX_NEW_TOKENS/);
    await bad(client.completions.create({ model: 'demo-gpt2', prompt: 'hi', n: 9 }), 400, /BAD_REQUEST/, /n must be <= 8/);
    await bad(client.completions.create({ model: 'demo-gpt2', prompt: '' }), 400, /BAD_REQUEST/, /prompt/);
    await bad(client.completions.create({ model: 'demo-gpt2', prompt: 'cat '.repeat(300), max_tokens: 4 }), 400, /BAD_INPUT/, /256 tokens/);
    await bad(client.completions.create({ model: 'demo-embedder', prompt: 'hi' }), 400, /BAD_INPUT/, /embedding model/);
    await bad(client.chat.completions.create({ model: 'demo-gpt2', messages: [{ role: 'tool', content: 'x', tool_call_id: 'a' }] }), 400, /BAD_INPUT/, /roles must be system, user or assistant, got tool/);
    await bad(client.chat.completions.create({ model: 'demo-gpt2', messages: [{ role: 'developer', content: 'x' }] }), 400, /BAD_INPUT/, /roles must be system, user or assistant, got developer/);
    await bad(client.chat.completions.create({ model: 'plain-gpt2', messages: [{ role: 'user', content: 'x' }] }), 400, /BAD_INPUT/, /has no chat template/);
  });
});
