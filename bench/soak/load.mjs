// Soak load driver: sends a fixed number of mixed requests over every route family of a running
// ATenSpace Serve (all four tasks, raw tensors, the TEI/OpenAI endpoints, AtomSpace reads and
// writes, model listing, metrics, and a few deliberately bad requests), keeping `concurrency`
// requests in flight, while it samples the server process once a second: RSS (VmRSS), open file
// descriptors, threads, and the addon's live tensors / bytes / modules from /metrics.
//
// Every response status is counted per request kind. A 5xx or a connection error is a failure:
// it is printed at once and makes the exit status 1. A status a kind does not expect (other than
// 5xx) is counted as "unexpected" and printed too.
//
// Usage: node bench/soak/load.mjs --url http://127.0.0.1:PORT --server-pid PID --out DIR
//          [--requests 100000] [--concurrency 16] [--idle 30] [--seed 1] [--atom-cap 2000] [--gc-signal]
// --gc-signal: the server runs under bench/soak/server.mjs, where SIGUSR2 runs a full GC; the
// driver then collects garbage before the first sample and after the idle period, so the live
// tensor counts compared are those still referenced, not those waiting for the GC.
// Writes DIR/samples.jsonl (every sample) and DIR/driver.json (counts, mix, timings); summarize.mjs
// turns them into the CSV, summary and plot.
import http from 'node:http';
import { mkdirSync, readFileSync, readdirSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, arg, i, all) => (arg.startsWith('--') ? [...pairs, [arg.slice(2), all[i + 1]]] : pairs), []),
);
const BASE = new URL(args.url ?? 'http://127.0.0.1:8080');
const SERVER_PID = Number(args['server-pid']);
const TOTAL = Number(args.requests ?? 100000);
const CONCURRENCY = Number(args.concurrency ?? 16);
const IDLE_S = Number(args.idle ?? 30);
const OUT = args.out ?? 'bench/.work/soak';
const ATOM_CAP = Number(args['atom-cap'] ?? 2000); // keep the AtomSpace near this many atoms: writes are balanced by deletes
const GC_SIGNAL = process.argv.includes('--gc-signal');
if (!SERVER_PID) throw new Error('--server-pid is required');
mkdirSync(OUT, { recursive: true });

// ---------------------------------------------------------------- deterministic randomness
let seed = Number(args.seed ?? 1) >>> 0 || 1;
function rand() {
  // xorshift32
  seed ^= seed << 13; seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5; seed >>>= 0;
  return seed / 4294967296;
}
const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));
const pick = (list) => list[Math.floor(rand() * list.length)];

const WORDS = ('the a cat dog sat on mat small large red blue green house tree river stone light dark quick slow ' +
  'bird fish runs jumps over under near far city road car train paper book music song rain snow sun moon star ' +
  'apple bread water fire earth wind cloud hill field garden window door table chair').split(' ');
const text = (minWords, maxWords) => Array.from({ length: int(minWords, maxWords) }, () => pick(WORDS)).join(' ');
const vector = (dim) => Array.from({ length: dim }, () => Math.round((rand() * 2 - 1) * 1000) / 1000);
const SOAK_DIM = 16;

// ---------------------------------------------------------------- HTTP
const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
const sampleAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function send(method, path, body, { contentType = 'application/json', agent: via = agent, raw = false } = {}) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : raw || Buffer.isBuffer(body) ? body : JSON.stringify(body);
    const req = http.request(
      { host: BASE.hostname, port: BASE.port, method, path, agent: via, headers: payload === undefined ? {} : { 'content-type': contentType, 'content-length': Buffer.byteLength(payload) } },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.setTimeout(120_000, () => req.destroy(new Error(`no response in 120 s: ${method} ${path}`)));
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}
const json = (r) => {
  try {
    return JSON.parse(r.body);
  } catch {
    return undefined;
  }
};

// ---------------------------------------------------------------- inputs prepared up front
async function png(width, height, channels = 3) {
  const pixels = Buffer.alloc(width * height * channels);
  for (let i = 0; i < pixels.length; i++) pixels[i] = int(0, 255);
  return sharp(pixels, { raw: { width, height, channels } }).png().toBuffer();
}
const IMAGES = [];
for (const [w, h, c] of [[32, 32, 3], [48, 40, 3], [64, 64, 3], [80, 60, 3], [40, 72, 3], [96, 96, 4], [20, 30, 1]]) IMAGES.push(await png(w, h, c));
const IMAGE_B64 = IMAGES.map((b) => b.toString('base64'));

function multipart(fields, file) {
  const boundary = `soak${int(1e8, 9e8)}`;
  const parts = Object.entries(fields).map(([k, v]) => Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`));
  parts.push(Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="image"; filename="x.png"\r\ncontent-type: image/png\r\n\r\n`), file, Buffer.from(`\r\n--${boundary}--\r\n`));
  return { body: Buffer.concat(parts), contentType: `multipart/form-data; boundary=${boundary}` };
}

function tokenTensors(batch, seq, { datatype = 'INT64', vocab = 400 } = {}) {
  const ids = [], mask = [], types = [];
  for (let b = 0; b < batch; b++) {
    const real = int(1, seq);
    for (let s = 0; s < seq; s++) {
      ids.push(s < real ? int(5, vocab - 1) : 0);
      mask.push(s < real ? 1 : 0);
      types.push(0);
    }
  }
  return [
    { name: 'input_ids', shape: [batch, seq], datatype, data: ids },
    { name: 'attention_mask', shape: [batch, seq], datatype, data: mask },
    { name: 'token_type_ids', shape: [batch, seq], datatype, data: types },
  ];
}
function pixelTensor(batch, h, w) {
  return { name: 'pixel_values', shape: [batch, 3, h, w], datatype: 'FP32', data: Array.from({ length: batch * 3 * h * w }, () => Math.round((rand() * 4 - 2) * 100) / 100) };
}

// ---------------------------------------------------------------- AtomSpace state seen by the client
const pools = { vec: [], text: [], plain: [], link: [] }; // ids the client believes exist
let nameCounter = 0;
const atomCount = () => pools.vec.length + pools.text.length + pools.plain.length + pools.link.length;
const NODE_TYPES = ['ConceptNode', 'PredicateNode', 'VariableNode'];
const LINK_TYPES = ['ListLink', 'InheritanceLink', 'EvaluationLink', 'MemberLink', 'SimilarityLink'];
function takeRandom(pool) {
  if (pool.length === 0) return undefined;
  const i = Math.floor(rand() * pool.length);
  const id = pool[i];
  pool[i] = pool[pool.length - 1];
  pool.pop();
  return id;
}
function forget(ids) {
  const gone = new Set(ids);
  for (const key of Object.keys(pools)) pools[key] = pools[key].filter((id) => !gone.has(id));
}
function remember(atom) {
  if (!atom || typeof atom.id !== 'number') return;
  const pool = atom.outgoing ? pools.link : atom.embeddings?.includes('soak') ? pools.vec : atom.embeddings?.includes('demo-embedder') ? pools.text : pools.plain;
  if (!pool.includes(atom.id)) pool.push(atom.id);
}
const anyNode = () => pick([pools.vec, pools.text, pools.plain].filter((p) => p.length > 0) ?? []) ?? [];
function nodeBody() {
  const name = `soak-${nameCounter++}`;
  const kind = rand();
  if (kind < 0.45) return { type: pick(NODE_TYPES), name, embedding: vector(SOAK_DIM), space: 'soak', ...(rand() < 0.3 ? { tv: { strength: rand(), confidence: rand() } } : {}) };
  if (kind < 0.75) return { type: 'ConceptNode', name, text: text(1, 12), model: 'demo-embedder' };
  return { type: pick(NODE_TYPES), name };
}
function linkBody() {
  const nodes = [pools.vec, pools.text, pools.plain].flat();
  if (nodes.length < 2) return undefined;
  const arity = int(2, 3);
  return { type: pick(LINK_TYPES), outgoing: Array.from({ length: arity }, () => pick(nodes)) };
}

// ---------------------------------------------------------------- the mix
// Each kind: weight, and make() -> { method, path, body?, ok: statuses expected, after?(response) }.
const OK = [200];
const KINDS = {
  'infer embedding': [10, () => ({ method: 'POST', path: '/infer', body: { model: 'demo-embedder', text: Array.from({ length: int(1, 4) }, () => text(1, 20)), ...(rand() < 0.3 ? { dimensions: pick([8, 32, 64]) } : {}), ...(rand() < 0.2 ? { normalize: false } : {}) }, ok: OK })],
  'infer embedding long': [2, () => ({ method: 'POST', path: '/infer', body: { model: 'demo-embedder', text: text(40, 120), truncate: true }, ok: OK })],
  'infer text-generation': [6, () => ({ method: 'POST', path: '/infer', body: { model: 'demo-gpt2', text: text(1, 10), max_new_tokens: int(1, 8), ...(rand() < 0.3 ? { temperature: 0.8, top_k: 20, top_p: 0.9, seed: int(1, 1000) } : {}), ...(rand() < 0.1 ? { stop: ['the'] } : {}) }, ok: OK })],
  'infer text-generation stream': [1, () => ({ method: 'POST', path: '/infer', body: { model: 'demo-gpt2', text: text(1, 6), max_new_tokens: int(2, 8), stream: true }, ok: OK })],
  'infer image-classification': [6, () => ({ method: 'POST', path: '/infer', body: { model: 'demo-vit', image: pick(IMAGE_B64), top_k: int(1, 5) }, ok: OK })],
  'infer image-classification multipart': [2, () => {
    const { body, contentType } = multipart({ model: 'demo-vit', top_k: '3' }, pick(IMAGES));
    return { method: 'POST', path: '/infer', body, contentType, ok: OK };
  }],
  'infer object-detection': [6, () => ({ method: 'POST', path: '/infer', body: { model: 'demo-yolos', image: rand() < 0.5 ? pick(IMAGE_B64) : `data:image/png;base64,${pick(IMAGE_B64)}`, threshold: pick([0, 0.1, 0.5]) }, ok: OK })],
  'infer raw tensors': [6, () =>
    rand() < 0.6
      ? { method: 'POST', path: '/infer', body: { model: 'demo-embedder', inputs: tokenTensors(int(1, 3), int(2, 24)) }, ok: OK }
      : { method: 'POST', path: '/infer', body: { model: 'demo-vit', inputs: [pixelTensor(int(1, 2), 32, 32)] }, ok: OK }],
  'kserve v2 infer': [6, () => {
    const r = rand();
    if (r < 0.4) return { method: 'POST', path: '/v2/models/demo-embedder/infer', body: { id: `soak-${int(1, 1e6)}`, inputs: tokenTensors(int(1, 2), int(2, 16)) }, ok: OK };
    if (r < 0.7) return { method: 'POST', path: '/v2/models/demo-yolos/infer', body: { inputs: [pixelTensor(1, pick([32, 48, 64]), pick([32, 48, 64]))] }, ok: OK };
    return { method: 'POST', path: '/v2/models/demo-gpt2/infer', body: { inputs: tokenTensors(1, int(2, 12)).slice(0, 2) }, ok: OK };
  }],
  'embed (TEI)': [7, () => ({ method: 'POST', path: '/embed', body: { inputs: rand() < 0.5 ? text(1, 20) : Array.from({ length: int(1, 4) }, () => text(1, 15)), ...(rand() < 0.2 ? { truncate: true } : {}) }, ok: OK })],
  'v1/embeddings (OpenAI)': [5, () => ({ method: 'POST', path: '/v1/embeddings', body: { model: 'demo-embedder', input: rand() < 0.5 ? text(1, 20) : [text(1, 10), text(1, 10)], encoding_format: pick(['float', 'base64']), ...(rand() < 0.3 ? { dimensions: 32 } : {}) }, ok: OK })],
  'tokenize (TEI)': [4, () => ({ method: 'POST', path: '/tokenize', body: { inputs: rand() < 0.5 ? text(1, 20) : [text(1, 8), text(1, 8)] }, ok: OK })],
  'POST /atoms node': [7, () => ({
    method: 'POST', path: '/atoms', ok: [200, 201],
    body: rand() < 0.05 && pools.plain.length ? { type: 'ConceptNode', name: `soak-${int(0, Math.max(0, nameCounter - 1))}` } : nodeBody(),
    after: (r) => remember(json(r)),
  })],
  'POST /atoms link': [3, () => {
    const body = linkBody();
    if (!body) return { method: 'POST', path: '/atoms', body: nodeBody(), ok: [200, 201], after: (r) => remember(json(r)) };
    // A target may have been deleted by a concurrent request: 400/404 then.
    return { method: 'POST', path: '/atoms', body, ok: [200, 201, 400, 404], after: (r) => remember(json(r)) };
  }],
  'POST /atoms/batch': [3, () => ({
    method: 'POST', path: '/atoms/batch', ok: [200],
    body: { atoms: Array.from({ length: int(2, 12) }, () => nodeBody()) },
    after: (r) => { for (const x of json(r)?.atoms ?? []) remember(x.atom); },
  })],
  'GET /atoms/{id}': [7, () => {
    const pool = pick([pools.vec, pools.text, pools.plain, pools.link].filter((p) => p.length) ) ?? [];
    return { method: 'GET', path: `/atoms/${pick(pool) ?? 1}`, ok: [200, 404] };
  }],
  'GET /atoms?type': [2, () => ({ method: 'GET', path: `/atoms?type=${pick(['Node', 'ConceptNode', 'Link', 'InheritanceLink'])}&limit=${int(1, 50)}&offset=${int(0, 500)}`, ok: OK })],
  'GET /atoms/{id}/incoming': [1, () => ({ method: 'GET', path: `/atoms/${pick(anyNode()) ?? 1}/incoming`, ok: [200, 404] })],
  'PATCH /atoms/{id}': [2, () => ({ method: 'PATCH', path: `/atoms/${pick(anyNode()) ?? 1}`, body: { tv: { strength: rand(), confidence: rand() }, av: { sti: int(-10, 10) } }, ok: [200, 404] })],
  'POST /atoms/similar': [6, () => {
    const r = rand();
    // 404 only until the first atom with a vector in the space exists
    if (r < 0.4) return { method: 'POST', path: '/atoms/similar', body: { text: text(1, 8), model: 'demo-embedder', k: int(1, 10) }, ok: pools.text.length ? OK : [200, 404] };
    if (r < 0.8) return { method: 'POST', path: '/atoms/similar', body: { embedding: vector(SOAK_DIM), space: 'soak', k: int(1, 20), ...(rand() < 0.3 ? { type: 'ConceptNode' } : {}), ...(rand() < 0.2 ? { threshold: 0.1 } : {}) }, ok: pools.vec.length ? OK : [200, 404] };
    const id = pick(pools.vec.length ? pools.vec : pools.text);
    return { method: 'POST', path: '/atoms/similar', body: { atom: id ?? 1, k: 5 }, ok: [200, 400, 404] };
  }],
  'DELETE /atoms/{id}': [4, () => deleteRequest()],
  'GET /models': [1, () => ({ method: 'GET', path: pick(['/models', '/models/demo-vit', '/v2/models/demo-embedder', '/v2/models/demo-gpt2/ready', '/health/ready', '/v2']), ok: OK })],
  'GET /metrics': [1, () => ({ method: 'GET', path: '/metrics', ok: OK })],
  // about 3% of requests: each must be answered with its 4xx, never a 5xx
  bad: [3, () => pick(BAD)()],
};
function deleteRequest() {
  const pool = pick([pools.vec, pools.text, pools.plain, pools.link].filter((p) => p.length)) ?? [];
  const id = takeRandom(pool);
  if (id === undefined) return { method: 'GET', path: '/atoms?limit=5', ok: OK };
  const recursive = rand() < 0.7;
  return {
    method: 'DELETE', path: `/atoms/${id}${recursive ? '?recursive=true' : ''}`, ok: [200, 404, 409],
    after: (r) => {
      if (r.status === 200) forget(json(r)?.removed ?? []);
      else if (r.status === 409) pool.push(id); // links still contain it
    },
  };
}
const BAD = [
  () => ({ method: 'POST', path: '/infer', body: { model: 'no-such-model', text: 'x' }, ok: [404] }),
  () => ({ method: 'POST', path: '/infer', body: { model: 'demo-embedder', text: 'x', max_new_tokens: 4 }, ok: [400] }),
  () => ({ method: 'POST', path: '/infer', body: { model: 'demo-embedder', text: text(200, 260) }, ok: [400] }), // too long, no truncate
  () => ({ method: 'POST', path: '/infer', body: { model: 'demo-embedder', inputs: [{ name: 'input_ids', shape: [1, 4], datatype: 'INT64', data: [1, 2, 3] }] }, ok: [400] }),
  () => ({ method: 'POST', path: '/infer', body: { model: 'demo-embedder', inputs: tokenTensors(1, 6, { vocab: 100000 }) }, ok: [400, 422] }), // ids past the vocabulary
  () => ({ method: 'POST', path: '/infer', body: { model: 'demo-vit', image: Buffer.from('not an image at all').toString('base64') }, ok: [400] }),
  () => ({ method: 'POST', path: '/infer', body: '{"model": "demo-vit", "image": ', raw: true, ok: [400] }),
  () => ({ method: 'POST', path: '/v2/models/no-such-model/infer', body: { inputs: [] }, ok: [400, 404] }),
  () => ({ method: 'POST', path: '/v2/models/demo-vit/infer', body: { inputs: [pixelTensor(1, 16, 16)] }, ok: [400, 422] }), // wrong image size for ViT
  () => ({ method: 'POST', path: '/atoms', body: { type: 'NoSuchNode', name: 'x' }, ok: [400] }),
  () => ({ method: 'POST', path: '/atoms', body: { type: 'ConceptNode', name: 'x', text: 'y' }, ok: [400] }),
  () => ({ method: 'POST', path: '/atoms', body: { type: 'ListLink', outgoing: [999999999] }, ok: [400, 404] }),
  () => ({ method: 'POST', path: '/atoms/similar', body: { k: 3 }, ok: [400] }),
  () => ({ method: 'GET', path: '/atoms/999999999', ok: [404] }),
  () => ({ method: 'GET', path: '/no/such/route', ok: [404] }),
  () => ({ method: 'POST', path: '/embed', body: { inputs: [] }, ok: [400] }),
  () => ({ method: 'POST', path: '/v1/embeddings', body: { model: 'demo-embedder', input: 'x', encoding_format: 'hex' }, ok: [400] }),
];
const WEIGHTED = [];
for (const [name, [weight, make]] of Object.entries(KINDS)) WEIGHTED.push({ name, weight, make });
const WEIGHT_SUM = WEIGHTED.reduce((s, k) => s + k.weight, 0);
const WRITE_KINDS = new Set(['POST /atoms node', 'POST /atoms link', 'POST /atoms/batch']);
function nextRequest() {
  let r = rand() * WEIGHT_SUM;
  let kind = WEIGHTED[WEIGHTED.length - 1];
  for (const k of WEIGHTED) {
    if ((r -= k.weight) < 0) { kind = k; break; }
  }
  // Writes are balanced by deletes so the AtomSpace stays near ATOM_CAP atoms after warm-up:
  // RSS should then stay flat unless something leaks.
  if (WRITE_KINDS.has(kind.name) && atomCount() > ATOM_CAP) return { name: 'DELETE /atoms/{id}', ...deleteRequest() };
  return { name: kind.name, ...kind.make() };
}

// ---------------------------------------------------------------- sampling
const t0 = performance.now();
let done = 0;
let failures = 0;
const samples = [];
const samplesPath = join(OUT, 'samples.jsonl');
writeFileSync(samplesPath, '');

function procStatus(pid) {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? NaN);
  return { rssKiB: field('VmRSS'), anonKiB: field('RssAnon'), fileKiB: field('RssFile'), threads: field('Threads') };
}
function metricValue(metrics, name, labels = '') {
  const line = metrics.split('\n').find((l) => l.startsWith(`${name}${labels} `) || (labels === '' && l.startsWith(`${name} `)));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : NaN;
}
function metricSum(metrics, name) {
  return metrics.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `)).reduce((s, l) => s + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}
let phase = 'load';
async function sample() {
  const status = procStatus(SERVER_PID);
  const fds = readdirSync(`/proc/${SERVER_PID}/fd`).length;
  let m = '';
  try {
    m = (await send('GET', '/metrics', undefined, { agent: sampleAgent })).body;
  } catch (error) {
    console.error(`sample: /metrics failed: ${error.message}`);
  }
  const s = {
    t: Math.round(performance.now() - t0) / 1000,
    phase,
    requests: done,
    rss_mib: Math.round((status.rssKiB / 1024) * 10) / 10,
    rss_anon_mib: Math.round((status.anonKiB / 1024) * 10) / 10,
    rss_file_mib: Math.round((status.fileKiB / 1024) * 10) / 10,
    fds,
    threads: status.threads,
    live_tensors: metricValue(m, 'atenspace_native_live_tensors', '{kind="output"}'),
    live_tensor_bytes: metricValue(m, 'atenspace_native_live_tensor_bytes', '{kind="output"}'),
    live_input_tensors: metricValue(m, 'atenspace_native_live_tensors', '{kind="input"}'),
    live_input_tensor_bytes: metricValue(m, 'atenspace_native_live_tensor_bytes', '{kind="input"}'),
    live_modules: metricValue(m, 'atenspace_native_live_modules'),
    heap_used_mib: Math.round((metricValue(m, 'atenspace_nodejs_heap_size_used_bytes') / 2 ** 20) * 10) / 10,
    heap_total_mib: Math.round((metricValue(m, 'atenspace_nodejs_heap_size_total_bytes') / 2 ** 20) * 10) / 10,
    response_cache_mib: Math.round((metricValue(m, 'atenspace_response_cache_bytes') / 2 ** 20) * 100) / 100,
    journal_mib: Math.round((metricValue(m, 'atenspace_journal_bytes') / 2 ** 20) * 100) / 100,
    external_mib: Math.round((metricValue(m, 'atenspace_nodejs_external_memory_bytes') / 2 ** 20) * 10) / 10,
    atoms: metricSum(m, 'atenspace_atoms'),
    failures,
  };
  samples.push(s);
  appendFileSync(samplesPath, JSON.stringify(s) + '\n');
  return s;
}

// ---------------------------------------------------------------- run
const counts = {}; // kind -> { status -> n }
const latencyMs = {}; // kind -> [sum, n, max]
const unexpected = {};
const failureLog = [];
let issued = 0;

function count(kind, status) {
  const c = (counts[kind] ??= {});
  c[status] = (c[status] ?? 0) + 1;
}

async function worker() {
  while (issued < TOTAL) {
    issued++;
    const req = nextRequest();
    const started = performance.now();
    let status;
    try {
      const r = await send(req.method, req.path, req.body, { contentType: req.contentType, raw: req.raw });
      status = r.status;
      if (status >= 500) {
        failures++;
        const line = `FAILURE ${status} ${req.method} ${req.path} (${req.name}): ${r.body.slice(0, 300)}`;
        if (failureLog.length < 200) failureLog.push(line);
        console.error(line);
      } else if (!req.ok.includes(status)) {
        const key = `${req.name} -> ${status}`;
        unexpected[key] = (unexpected[key] ?? 0) + 1;
        if (unexpected[key] <= 3) console.error(`unexpected ${status} for ${req.method} ${req.path} (${req.name}): ${r.body.slice(0, 300)}`);
      }
      if (req.after) req.after(r);
    } catch (error) {
      status = 'connection error';
      failures++;
      const line = `FAILURE connection error ${req.method} ${req.path} (${req.name}): ${error.message}`;
      if (failureLog.length < 200) failureLog.push(line);
      console.error(line);
    }
    const ms = performance.now() - started;
    const l = (latencyMs[req.name] ??= [0, 0, 0]);
    l[0] += ms; l[1]++; l[2] = Math.max(l[2], ms);
    count(req.name, status);
    done++;
  }
}

async function collectGarbage() {
  if (!GC_SIGNAL) return;
  // Twice, with a pause: finalizers of external buffers may run after the collection that found them.
  for (let i = 0; i < 2; i++) {
    process.kill(SERVER_PID, 'SIGUSR2');
    await new Promise((r) => setTimeout(r, 500));
  }
}

phase = 'start';
await collectGarbage();
const before = await sample();
phase = 'load';
console.error(`soak: ${TOTAL} requests at concurrency ${CONCURRENCY}; server pid ${SERVER_PID}, RSS ${before.rss_mib} MiB, ${before.fds} fds`);
const timer = setInterval(() => {
  sample().then((s) => {
    if (samples.length % 15 === 0) console.error(`  ${s.t.toFixed(0)} s: ${s.requests} requests, RSS ${s.rss_mib} MiB, fds ${s.fds}, live tensors ${s.live_tensors} (${s.live_input_tensors} inputs), atoms ${s.atoms}, failures ${s.failures}`);
  }, (error) => console.error(`sample failed: ${error.message}`));
}, 1000);
const loadStart = performance.now();
await Promise.all(Array.from({ length: CONCURRENCY }, worker));
const loadSeconds = (performance.now() - loadStart) / 1000;
clearInterval(timer);
await sample();
// Idle: close the client's connections and let the server settle (GC, finalizers, idle timers).
agent.destroy();
phase = 'idle';
console.error(`soak: load done in ${loadSeconds.toFixed(1)} s (${(TOTAL / loadSeconds).toFixed(1)} req/s); idle ${IDLE_S} s`);
for (let i = 0; i < IDLE_S; i++) {
  await new Promise((r) => setTimeout(r, 1000));
  await sample();
}
phase = 'gc';
await collectGarbage();
await sample();
sampleAgent.destroy();

writeFileSync(
  join(OUT, 'driver.json'),
  JSON.stringify(
    {
      requests: TOTAL,
      concurrency: CONCURRENCY,
      load_seconds: Math.round(loadSeconds * 10) / 10,
      requests_per_second: Math.round((TOTAL / loadSeconds) * 10) / 10,
      idle_seconds: IDLE_S,
      gc_signal: GC_SIGNAL,
      atom_cap: ATOM_CAP,
      failures,
      failure_examples: failureLog.slice(0, 20),
      unexpected,
      by_kind: Object.fromEntries(
        Object.entries(counts)
          .sort((a, b) => a[0].localeCompare(b[0]))
          .map(([k, v]) => [k, { statuses: v, total: Object.values(v).reduce((s, n) => s + n, 0), mean_ms: Math.round((latencyMs[k][0] / latencyMs[k][1]) * 100) / 100, max_ms: Math.round(latencyMs[k][2]) }]),
      ),
    },
    null,
    2,
  ),
);
console.error(failures ? `soak: ${failures} FAILURES (5xx or connection errors); see ${OUT}/driver.json` : 'soak: no 5xx, no connection errors');
process.exit(failures ? 1 : 0);
