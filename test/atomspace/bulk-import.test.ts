// Bulk ingest over HTTP: vectors as base64 little-endian float32 (OpenAI's encoding_format
// "base64") give the same atoms as number arrays, and the NDJSON import (a real socket, the
// body streamed in pieces) commits good lines in durable groups, reports every bad line with
// its number, and stops cleanly when the journal cannot be written: the failed group is not
// applied at all, and the space it would have created is gone too.
import t from 'tap';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readdirSync, rmSync, symlinkSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { AtomSpace } from '../../src/atomspace/atomspace.js';
import { testApp } from '../helpers/server.js';

const b64 = (v: number[]) => Buffer.from(new Float32Array(v).buffer).toString('base64');
const vec = (i: number, dim = 8) => Array.from({ length: dim }, (_, j) => Math.sin(i + j * 0.7) + (j === i % dim ? 1.5 : 0));

async function listening(env: Record<string, string> = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'bulk-'));
  const built = await testApp({ LOAD_MODELS: 'none', DATA_DIR: dataDir, ...env });
  await built.app.listen({ port: 0, host: '127.0.0.1' });
  const port = (built.app.server.address() as AddressInfo).port;
  t.teardown(async () => {
    await built.app.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return { ...built, port, dataDir };
}

/** POST a body sent in pieces (`pieces` may wait between them); resolves with status, headers and JSON. */
function post(port: number, path: string, contentType: string, pieces: AsyncIterable<string> | Iterable<string>) {
  return new Promise<{ status: number; headers: Record<string, unknown>; json: any }>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method: 'POST', headers: { 'content-type': contentType } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, json: JSON.parse(body) }));
    });
    req.on('error', reject);
    void (async () => {
      for await (const piece of pieces) if (!req.write(piece)) await new Promise((r) => req.once('drain', r));
      req.end();
    })();
  });
}

t.test('base64 float32 vectors equal number arrays: batch, single and similar', async (t) => {
  const { port, context } = await listening();
  const asJson = (body: object) => [JSON.stringify(body)];
  const numbers = await post(port, '/atoms/batch', 'application/json', asJson({ atoms: Array.from({ length: 20 }, (_, i) => ({ type: 'ConceptNode', name: `a${i}`, embedding: vec(i), space: 'nums' })) }));
  t.equal(numbers.status, 200);
  const based = await post(port, '/atoms/batch', 'application/json', asJson({ atoms: Array.from({ length: 20 }, (_, i) => ({ type: 'ConceptNode', name: `b${i}`, embedding: b64(vec(i)), space: 'b64' })) }));
  t.equal(based.status, 200);
  for (let i = 0; i < 20; i++) {
    const a = context.atomspace.embedding(numbers.json.atoms[i].atom.id, 'nums')!;
    const b = context.atomspace.embedding(based.json.atoms[i].atom.id, 'b64')!;
    t.same(Array.from(b), Array.from(a), `vector ${i} is the same`);
  }
  const one = await post(port, '/atoms', 'application/json', asJson({ type: 'ConceptNode', name: 'single', embedding: b64([3, 4]), space: 'two' }));
  t.equal(one.status, 201);
  t.same(Array.from(context.atomspace.embedding(one.json.id, 'two')!), [0.6000000238418579, 0.800000011920929]);
  for (const q of [3, 11]) {
    // The same float32 values as numbers (float64 values would be normalised before rounding).
    const byNumbers = await post(port, '/atoms/similar', 'application/json', asJson({ embedding: Array.from(new Float32Array(vec(q))), space: 'b64', k: 5, mode: 'exact' }));
    const byBase64 = await post(port, '/atoms/similar', 'application/json', asJson({ embedding: b64(vec(q)), space: 'b64', k: 5, mode: 'exact' }));
    t.equal(byBase64.status, 200);
    t.same(byBase64.json, byNumbers.json, `query ${q}: the same neighbours`);
    t.equal(byBase64.json.results[0].atom.name, `b${q}`);
  }
  for (const [embedding, message] of [
    ['AAAA', /decodes to 3 bytes/],
    ['not base64!', /neither an array of numbers nor base64/],
    [b64([1, Number.NaN]), /embedding value 1 is not a finite number/],
  ] as const) {
    const res = await post(port, '/atoms', 'application/json', asJson({ type: 'ConceptNode', name: 'bad', embedding }));
    t.equal(res.status, 400, `${embedding}: 400`);
    t.match(res.json.error, message);
    t.ok(res.json.code);
  }
  const wrongDim = await post(port, '/atoms/similar', 'application/json', asJson({ embedding: b64([1, 2, 3]), space: 'b64' }));
  t.equal(wrongDim.status, 400);
  t.match(wrongDim.json.error, /holds 8-dimensional vectors, got 3/);
});

t.test('NDJSON import: durable groups, a report of every bad line, ids', async (t) => {
  const { port, context, dataDir } = await listening();
  const lines: string[] = [];
  const bad = new Map<number, RegExp>();
  for (let i = 1; i <= 2500; i++) {
    if (i === 7) lines.push('{"type": "ConceptNode", "name": ');
    else if (i === 8) lines.push('');
    else if (i === 1234) lines.push(JSON.stringify({ type: 'NopeNode', name: 'x' }));
    else if (i === 1500) lines.push(JSON.stringify({ type: 'ConceptNode', name: 'short', embedding: b64([1, 2]), space: 'imp' }));
    else if (i === 2001) lines.push(JSON.stringify({ type: 'ConceptNode', name: 'odd', embedding: 'AAAAAAA=', space: 'imp' }));
    else if (i === 2002) lines.push(JSON.stringify({ type: 'ConceptNode', name: 'extra', extra: 1 }));
    else if (i === 2003) lines.push(JSON.stringify({ type: 'ListLink', outgoing: [99_999_999] }));
    else if (i === 2004) lines.push(JSON.stringify({ type: 'ConceptNode', name: 'z', embedding: b64([0, 0, 0, 0, 0, 0, 0, 0]), space: 'imp' }));
    else if (i % 500 === 0) lines.push(JSON.stringify({ type: 'ConceptNode', name: `n${i}`, embedding: vec(i), space: 'imp' })); // numbers are fine too
    else lines.push(JSON.stringify({ type: 'ConceptNode', name: `n${i}`, embedding: b64(vec(i)), space: 'imp' }));
  }
  bad.set(7, /not JSON/).set(1234, /unknown atom type 'NopeNode'/).set(1500, /holds 8-dimensional vectors, got 2/).set(2001, /decodes to 5 bytes, not a whole number of float32/);
  bad.set(2002, /not an atom/).set(2003, /outgoing atom 99999999 does not exist/).set(2004, /zero norm/);
  // Pieces that cut lines (and base64) anywhere; \r\n line ends on some.
  const text = lines.map((l, i) => (i % 3 === 0 ? `${l}\r\n` : `${l}\n`)).join('');
  const pieces = function* () {
    for (let at = 0; at < text.length; at += 7919) yield text.slice(at, at + 7919);
  };
  const res = await post(port, '/atoms/import?group=400&ids=true', 'application/x-ndjson', pieces());
  t.equal(res.status, 200, JSON.stringify(res.json).slice(0, 500));
  const report = res.json;
  t.equal(report.lines, 2500);
  t.equal(report.failed, bad.size);
  t.equal(report.created, 2500 - 1 - bad.size, 'every good line created an atom');
  t.equal(report.existing, 0);
  t.equal(report.groups, Math.ceil(report.created / 400));
  t.same(report.errors.map((e: { line: number }) => e.line), [...bad.keys()], 'each bad line, by number, in order');
  for (const e of report.errors) t.match(e.error, bad.get(e.line)!, `line ${e.line}: ${e.error}`);
  t.equal(report.ids.length, 2500);
  t.equal(report.ids[7], null, 'a blank line has no atom');
  t.equal(report.ids[6], null, 'nor has a bad one');
  const as = context.atomspace;
  t.equal(as.space('imp')!.size, report.created);
  for (const i of [1, 500, 1499, 2500]) {
    const atom = as.get(report.ids[i - 1]);
    t.equal(atom?.name, `n${i}`, `line ${i} is atom ${report.ids[i - 1]}`);
    const stored = as.embedding(atom!.id, 'imp')!;
    const raw = vec(i);
    const norm = Math.hypot(...raw);
    t.ok(stored.every((v, j) => Math.abs(v - raw[j]! / norm) < 1e-6), `line ${i}: its vector`);
  }
  t.equal(as.find({ name: 'short' }).total + as.find({ name: 'odd' }).total + as.find({ name: 'extra' }).total + as.find({ name: 'z' }).total, 0, 'no bad line was applied');
  // Importing the same lines again finds them all.
  const again = await post(port, '/atoms/import', 'application/x-ndjson', [lines.slice(0, 100).join('\n')]);
  t.equal(again.json.existing, 98);
  t.equal(again.json.created, 0);
  // Durable: a fresh open of the data directory has every imported atom.
  const { atomspace: reopened } = await AtomSpace.open({ dataDir });
  t.teardown(() => reopened.close());
  t.equal(reopened.space('imp')!.size, report.created);
});

t.test('NDJSON import: bad requests are 4xx naming the problem', async (t) => {
  const { port } = await listening({ MAX_ATOMS_PER_BATCH: '50', BODY_LIMIT: '1KiB' });
  const json = await post(port, '/atoms/import', 'application/json', ['{"type": "ConceptNode", "name": "a"}']);
  t.equal(json.status, 415);
  t.equal(json.json.code, 'UNSUPPORTED_MEDIA_TYPE');
  t.match(json.json.error, /application\/x-ndjson/);
  const group = await post(port, '/atoms/import?group=51', 'application/x-ndjson', ['{"type": "ConceptNode", "name": "a"}\n']);
  t.equal(group.status, 400);
  t.equal(group.json.limit, 'MAX_ATOMS_PER_BATCH');
  // A line over BODY_LIMIT is reported, the import itself is not limited by it.
  const long = JSON.stringify({ type: 'ConceptNode', name: 'x'.repeat(2000) });
  const many = Array.from({ length: 200 }, (_, i) => JSON.stringify({ type: 'ConceptNode', name: `many${i}` }));
  const res = await post(port, '/atoms/import', 'application/x-ndjson', [many.slice(0, 100).join('\n') + '\n', long + '\n', many.slice(100).join('\n')]);
  t.equal(res.status, 200);
  t.equal(res.json.created, 200);
  t.same(res.json.errors.map((e: { line: number; code: string }) => [e.line, e.code]), [[101, 'LIMIT_EXCEEDED']]);
  t.match(res.json.errors[0].error, /BODY_LIMIT/);
});

t.test('NDJSON import when the journal fails: committed groups stay, the failed group is not applied, 503 says where it stopped', async (t) => {
  const { port, context, dataDir } = await listening();
  const as = context.atomspace;
  const line = (i: number, space: string) => JSON.stringify({ type: 'ConceptNode', name: `m${i}`, embedding: b64(vec(i, 4)), space }) + '\n';
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const pieces = async function* () {
    yield line(1, 'first') + line(2, 'first') + 'nonsense\n';
    await gate; // the first group is committed, then the journal breaks
    for (let i = 4; i <= 9; i++) yield line(i, 'second');
  };
  const reply = post(port, '/atoms/import?group=2', 'application/x-ndjson', pieces());
  for (let waited = 0; as.size < 2 && waited < 10_000; waited += 10) await new Promise((r) => setTimeout(r, 10));
  t.equal(as.size, 2, 'the first group is in');
  const gen = Math.max(...readdirSync(dataDir).filter((f) => f.startsWith('journal-')).map((f) => Number(/\d+/.exec(f)![0])));
  const full = join(dataDir, `journal-${gen + 1}.log`);
  symlinkSync('/dev/full', full); // every write after the rotation fails with ENOSPC
  await as.snapshot();
  release();
  const res = await reply;
  t.equal(res.status, 503);
  t.equal(res.json.code, 'STORAGE_UNAVAILABLE');
  t.ok(res.headers['retry-after']);
  t.equal(res.json.report.stopped.line, 4, 'stopped at the first line of the failed group');
  t.equal(res.json.report.created, 2);
  t.same(res.json.report.errors.map((e: { line: number }) => e.line), [3]);
  t.equal(as.size, 2, 'nothing of the failed group is applied');
  t.equal(as.space('second'), undefined, 'nor the space it created');
  unlinkSync(full);
  const later = await post(port, '/atoms/import', 'application/x-ndjson', [line(4, 'second')]);
  t.equal(later.status, 200, 'imports work again once the journal can be written');
  t.equal(as.space('second')!.size, 1);
});
