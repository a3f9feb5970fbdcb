// Closed-loop generation load: CLIENTS clients, each sending its next request when the last one
// ends, for SECONDS, prompts cycling through prompts.json. Ours: POST /v1/completions streamed
// (time to first token measured at the client, tokens from the usage chunk). The peer:
// POST /generate answering {tokens}. Prints JSON.
// Usage: node bench/generation/load.mjs URL MODEL PROMPTS_JSON CLIENTS SECONDS MAX_TOKENS [ours|peer]
import { readFileSync } from 'node:fs';

const [url, model, promptsPath, clientsArg, secondsArg, maxTokensArg, kind = 'ours'] = process.argv.slice(2);
const { prompts } = JSON.parse(readFileSync(promptsPath, 'utf8'));
const clients = Number(clientsArg);
const maxTokens = Number(maxTokensArg);
const percentile = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : null;
};

async function ours(prompt) {
  const started = performance.now();
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, prompt, max_tokens: maxTokens, temperature: 0, stream: true, stream_options: { include_usage: true } }),
  });
  if (!res.ok) throw new Error(`${res.status} ${await res.text()}`);
  let ttft;
  let tokens = 0;
  let buffer = '';
  const decoder = new TextDecoder();
  for await (const bytes of res.body) {
    buffer += decoder.decode(bytes, { stream: true });
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (!event.startsWith('data: ') || event === 'data: [DONE]') continue;
      const chunk = JSON.parse(event.slice(6));
      if (ttft === undefined && chunk.choices?.[0]?.text) ttft = performance.now() - started;
      if (chunk.usage) tokens = chunk.usage.completion_tokens;
    }
  }
  return { ms: performance.now() - started, ttft, tokens };
}

async function peer(prompt) {
  const started = performance.now();
  const res = await fetch(`${url}/generate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt, max_new_tokens: maxTokens }) });
  if (!res.ok) throw new Error(`${res.status} ${await res.text()}`);
  const body = await res.json();
  return { ms: performance.now() - started, ttft: undefined, tokens: body.tokens };
}

const run = kind === 'peer' ? peer : ours;
const results = [];
let errors = 0;
const deadline = performance.now() + Number(secondsArg) * 1000;
let next = 0;
const t0 = performance.now();
await Promise.all(
  Array.from({ length: clients }, async () => {
    while (performance.now() < deadline) {
      const prompt = prompts[next++ % prompts.length];
      try {
        results.push(await run(prompt));
      } catch (error) {
        errors++;
        console.error(String(error).slice(0, 200));
      }
    }
  }),
);
const wall = (performance.now() - t0) / 1000;
const tokens = results.reduce((n, r) => n + r.tokens, 0);
const ttfts = results.map((r) => r.ttft).filter((x) => x !== undefined);
console.log(
  JSON.stringify({
    kind,
    model,
    clients,
    requests: results.length,
    errors,
    tokens,
    seconds: Math.round(wall * 100) / 100,
    tokens_per_s: Math.round((tokens / wall) * 10) / 10,
    mean_tokens: Math.round((tokens / Math.max(1, results.length)) * 10) / 10,
    ttft_p50_ms: ttfts.length ? Math.round(percentile(ttfts, 50)) : null,
    ttft_p99_ms: ttfts.length ? Math.round(percentile(ttfts, 99)) : null,
    latency_p50_ms: Math.round(percentile(results.map((r) => r.ms), 50)),
    latency_p99_ms: Math.round(percentile(results.map((r) => r.ms), 99)),
  }),
);
