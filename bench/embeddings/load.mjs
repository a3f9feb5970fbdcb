// autocannon against a POST /embed endpoint: one text per request, cycling through the
// benchmark's mixed-length texts, at a given concurrency. Prints JSON.
// Usage: node bench/embeddings/load.mjs URL TEXTS_JSON CONNECTIONS SECONDS
import { readFileSync } from 'node:fs';

import autocannon from 'autocannon';

const [url, textsPath, connections, seconds] = process.argv.slice(2);
const { texts } = JSON.parse(readFileSync(textsPath, 'utf8'));
const requests = texts.map((t) => ({ method: 'POST', path: '/embed', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: t }) }));
const run = (duration) =>
  autocannon({ url, connections: Number(connections), duration, requests, pipelining: 1 });
await run(2); // warm-up
const r = await run(Number(seconds));
console.log(JSON.stringify({ url, connections: Number(connections), requests_per_s: r.requests.average, embeddings_per_s: r.requests.average, p50_ms: r.latency.p50, p99_ms: r.latency.p99, errors: r.errors, non2xx: r.non2xx }));
