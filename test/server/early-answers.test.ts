// Answers sent before the body has arrived reach clients that send the whole body before they
// read (as Python's requests does): a real socket writes an 8 MiB body, with its reading paused
// until every byte is written, into a 401 (no API key), a 413 (over BODY_LIMIT; declared, and
// chunked), a 503 (load shedding) and an import stopped by a full disk. Each must read the
// status, the {error, code} body and (503) Retry-After, with no broken pipe. curl gets the same.
// Past DRAIN_LIMIT the connection is cut, as documented.
import t, { type Test } from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { testApp } from '../helpers/server.js';

const BODY = 8 * 2 ** 20;

interface RawResult {
  status: number | undefined;
  headers: Record<string, string>;
  body: string;
  /** A write that failed (EPIPE, ECONNRESET): the server cut the connection while we sent. */
  writeError?: string;
  readError?: string;
  wrote: number;
}

/**
 * POST `size` bytes of body through a plain socket, reading nothing until every byte is
 * written (then the answer). `chunked` sends it with Transfer-Encoding: chunked.
 */
function sendThenRead(port: number, path: string, options: { size?: number; chunked?: boolean } = {}): Promise<RawResult> {
  const size = options.size ?? BODY;
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.pause();
    const received: Buffer[] = [];
    let writeError: string | undefined;
    let readError: string | undefined;
    let wrote = 0;
    let writing = true;
    socket.on('data', (d: Buffer) => received.push(d));
    socket.on('error', (e: NodeJS.ErrnoException) => {
      if (writing) writeError ??= e.code;
      else readError ??= e.code;
    });
    socket.on('close', () => {
      const text = Buffer.concat(received).toString('utf8');
      const [head = '', ...rest] = text.split('\r\n\r\n');
      const [statusLine = '', ...lines] = head.split('\r\n');
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      resolve({ status: Number(statusLine.split(' ')[1]) || undefined, headers, body: rest.join('\r\n\r\n'), ...(writeError ? { writeError } : {}), ...(readError ? { readError } : {}), wrote });
    });
    socket.on('connect', async () => {
      const head = [
        `POST ${path} HTTP/1.1`,
        'Host: localhost',
        'Content-Type: application/json',
        options.chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${size}`,
        '',
        '',
      ].join('\r\n');
      socket.write(head);
      // A JSON-ish body: an opening brace, then spaces.
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      chunk[0] = 0x7b;
      while (wrote < size && !socket.destroyed) {
        const n = Math.min(chunk.length, size - wrote);
        const piece = options.chunked ? Buffer.concat([Buffer.from(`${n.toString(16)}\r\n`), chunk.subarray(0, n), Buffer.from('\r\n')]) : chunk.subarray(0, n);
        const flushed = socket.write(piece);
        wrote += n;
        if (!flushed) await new Promise((r) => (socket.once('drain', r), socket.once('close', r)));
      }
      if (options.chunked && !socket.destroyed) socket.write('0\r\n\r\n');
      writing = false;
      socket.resume(); // now read the answer
      socket.end();
    });
  });
}

async function server(t: Test, env: Record<string, string>) {
  const dataDir = mkdtempSync(join(tmpdir(), 'early-'));
  const built = await testApp({ LOAD_MODELS: 'none', DATA_DIR: dataDir, ...env });
  await built.app.listen({ port: 0, host: '127.0.0.1' });
  t.teardown(async () => {
    await built.app.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return { ...built, port: (built.app.server.address() as AddressInfo).port, dataDir };
}

function answered(t: Test, r: RawResult, status: number, code: RegExp | string, what: string): void {
  t.notOk(r.writeError, `${what}: no broken pipe while sending (${r.writeError ?? 'none'})`);
  t.equal(r.wrote, BODY, `${what}: the whole body was sent`);
  t.equal(r.status, status, `${what}: status ${status}`);
  t.equal(r.headers.connection, 'close', `${what}: Connection: close`);
  let json: { error?: string; code?: string } = {};
  try {
    json = JSON.parse(r.body);
  } catch {
    // stays empty: the checks below fail
  }
  t.match(json.code, code, `${what}: code`);
  t.type(json.error, 'string', `${what}: an error message`);
}

t.test('401 without the API key', async (t) => {
  const { port } = await server(t, { API_KEY: 'secret' });
  answered(t, await sendThenRead(port, '/atoms/batch'), 401, 'UNAUTHORIZED', '401');
});

t.test('413 past BODY_LIMIT: declared length, and chunked', async (t) => {
  const { port } = await server(t, { BODY_LIMIT: '1MiB' });
  const declared = await sendThenRead(port, '/atoms/batch');
  answered(t, declared, 413, 'LIMIT_EXCEEDED', '413 (Content-Length)');
  t.match(declared.body, /BODY_LIMIT/);
  answered(t, await sendThenRead(port, '/atoms/batch', { chunked: true }), 413, 'LIMIT_EXCEEDED', '413 (chunked)');
});

t.test('503 from load shedding carries Retry-After', async (t) => {
  const { port } = await server(t, { MAX_HEAP_USED: '1' });
  await new Promise((r) => setTimeout(r, 1200)); // under-pressure samples every 500 ms
  const r = await sendThenRead(port, '/atoms/batch');
  answered(t, r, 503, 'OVERLOADED', '503');
  t.equal(r.headers['retry-after'], '2');
});

t.test('503 from an import stopped by a full disk', async (t) => {
  const { port, context, dataDir } = await server(t, {});
  const gen = Math.max(...readdirSync(dataDir).filter((f) => f.startsWith('journal-')).map((f) => Number(/\d+/.exec(f)![0])));
  symlinkSync('/dev/full', join(dataDir, `journal-${gen + 1}.log`));
  await context.atomspace.snapshot();
  // The first line is an atom; its refused commit stops the import with most of the body unsent.
  const stopped = await sendLinesThenRead(port, JSON.stringify({ type: 'ConceptNode', name: 'a' }) + '\n');
  answered(t, stopped, 503, 'STORAGE_UNAVAILABLE', 'import 503');
  t.ok(stopped.headers['retry-after']);
});

/** An NDJSON import of BODY bytes (atom lines), sent before reading. */
function sendLinesThenRead(port: number, first: string): Promise<RawResult> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.pause();
    const received: Buffer[] = [];
    let writeError: string | undefined;
    let wrote = 0;
    socket.on('data', (d: Buffer) => received.push(d));
    socket.on('error', (e: NodeJS.ErrnoException) => (writeError ??= e.code));
    socket.on('close', () => {
      const text = Buffer.concat(received).toString('utf8');
      const [head = '', ...rest] = text.split('\r\n\r\n');
      const [statusLine = '', ...lines] = head.split('\r\n');
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      resolve({ status: Number(statusLine.split(' ')[1]) || undefined, headers, body: rest.join('\r\n\r\n'), ...(writeError ? { writeError } : {}), wrote });
    });
    socket.on('connect', async () => {
      socket.write(`POST /atoms/import?group=1 HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-ndjson\r\nContent-Length: ${BODY}\r\n\r\n`);
      const firstBytes = Buffer.from(first);
      socket.write(firstBytes);
      wrote = firstBytes.length;
      // Then more atoms, one per line (each one is read, checked and queued), to BODY bytes in all.
      let n = 0;
      while (wrote < BODY && !socket.destroyed) {
        const lines: string[] = [];
        for (let bytes = 0; bytes < 64 * 1024; ) {
          const l = JSON.stringify({ type: 'ConceptNode', name: `more${n++}` }) + '\n';
          lines.push(l);
          bytes += l.length;
        }
        const piece = Buffer.from(lines.join('')).subarray(0, BODY - wrote);
        wrote += piece.length;
        if (!socket.write(piece)) await new Promise((r) => (socket.once('drain', r), socket.once('close', r)));
      }
      socket.resume();
      socket.end();
    });
  });
}

t.test('curl gets the early answers too', async (t) => {
  t.equal(spawnSync('curl', ['--version']).status, 0, 'curl is installed');
  const { port } = await server(t, { API_KEY: 'secret', BODY_LIMIT: '1MiB' });
  const file = join(mkdtempSync(join(tmpdir(), 'early-body-')), 'body.json');
  writeFileSync(file, Buffer.alloc(BODY, 0x20));
  t.teardown(() => rmSync(file));
  // Not spawnSync: the server runs in this process.
  const curl = (headers: string[]) =>
    new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn('curl', ['-sS', '-o', '-', '-w', '\n%{http_code}', '-H', 'content-type: application/json', ...headers.flatMap((h) => ['-H', h]), '--data-binary', `@${file}`, `http://127.0.0.1:${port}/atoms/batch`]);
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d));
      child.stderr.on('data', (d: Buffer) => (stderr += d));
      child.on('close', (status) => resolve({ status, stdout, stderr }));
    });
  const unauthorized = await curl([]);
  t.equal(unauthorized.status, 0, `curl exits 0 (${unauthorized.stderr.trim()})`);
  t.match(unauthorized.stdout, /"code":"UNAUTHORIZED"[\s\S]*\n401$/);
  const tooLarge = await curl(['authorization: Bearer secret']);
  t.equal(tooLarge.status, 0, `curl exits 0 (${tooLarge.stderr.trim()})`);
  t.match(tooLarge.stdout, /"limit":"BODY_LIMIT"[\s\S]*\n413$/);
});

t.test('past DRAIN_LIMIT the connection is cut (a client that reads while it sends still gets the answer)', async (t) => {
  const { port } = await server(t, { API_KEY: 'secret', DRAIN_LIMIT: '256KiB' });
  const cut = await sendThenRead(port, '/atoms/batch');
  t.ok(cut.writeError || cut.status === undefined, `a client that sends 8 MiB before reading loses it (${cut.writeError ?? cut.status})`);
  const res = await fetch(`http://127.0.0.1:${port}/atoms/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.alloc(BODY, 0x20) }).then(
    async (r) => ({ status: r.status, body: await r.text() }),
    (error: Error) => ({ status: 0, body: String(error.cause ?? error) }),
  );
  t.equal(res.status, 401, `fetch reads the answer while sending (${res.body.slice(0, 100)})`);
});
