/**
 * Writes one snapshot file off the main thread: the AtomSpace streams it chunks (atom records,
 * then vectors in blocks of rows), this thread frames them as journal records (CRC included),
 * writes them to `<tmp>`, then fsyncs, renames it into place, syncs the directory and deletes the
 * files the snapshot replaces. Every chunk is acknowledged once written, so the sender can keep
 * a bounded number in flight. Any failure removes the temporary file and is reported, never thrown.
 */
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

import { encodeRecord, syncDir } from './journal.js';

export interface SnapshotJob {
  tmp: string;
}

/** A chunk as sent: vectors copied out of the space into a buffer of their own. */
export type SnapshotMessageChunk = { records: unknown[] } | { space: string; model: string | null; dim: number; ids: Int32Array; vectors: Float32Array };

export type SnapshotMessage = { chunk: SnapshotMessageChunk } | { end: { dir: string; final: string; remove: string[] } };

/** An ack hands a block of vectors' buffer back, for the next block (no new memory per block). */
export type SnapshotReply = { ack: true; buffer?: ArrayBuffer } | { done: { bytes: number } } | { error: { message: string; code?: string; errno?: number } };

const job = workerData as SnapshotJob;
const port = parentPort!;
const FLUSH_BYTES = 4 * 2 ** 20;

let fd: number | undefined;
let failed = false;
let bytes = 0;
let buffered: Buffer[] = [];
let bufferedBytes = 0;

function flush(): void {
  if (!bufferedBytes) return;
  const data = buffered.length === 1 ? buffered[0]! : Buffer.concat(buffered, bufferedBytes);
  buffered = [];
  bufferedBytes = 0;
  // A full disk can take part of a write and refuse the rest on the next call.
  for (let at = 0; at < data.length; ) {
    const written = writeSync(fd!, data, at, data.length - at);
    if (written <= 0) throw Object.assign(new Error('the write made no progress'), { code: 'EIO' });
    at += written;
  }
  bytes += data.length;
}

function push(record: Buffer): void {
  buffered.push(record);
  bufferedBytes += record.length;
  if (bufferedBytes >= FLUSH_BYTES) flush();
}

function write(chunk: SnapshotMessageChunk): void {
  fd ??= openSync(job.tmp, 'w');
  if ('records' in chunk) {
    for (const json of chunk.records) push(encodeRecord({ json }));
    return;
  }
  const { space, model, dim, ids, vectors } = chunk;
  const bytesOf = new Uint8Array(vectors.buffer, vectors.byteOffset, vectors.byteLength);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (id < 0) continue; // a tombstoned row
    push(encodeRecord({ json: { op: 'embed', id, space, model, dim }, bytes: bytesOf.subarray(i * dim * 4, (i + 1) * dim * 4) }));
  }
}

function finish(end: { dir: string; final: string; remove: string[] }): void {
  fd ??= openSync(job.tmp, 'w');
  push(encodeRecord({ json: { end: true } }));
  flush();
  fsyncSync(fd);
  closeSync(fd);
  fd = undefined;
  renameSync(job.tmp, end.final);
  syncDir(end.dir);
  for (const path of end.remove) {
    try {
      unlinkSync(path);
    } catch {
      // Left for the next snapshot: recovery skips what the newest snapshot covers.
    }
  }
}

function fail(error: unknown): void {
  failed = true;
  const e = error as NodeJS.ErrnoException;
  if (fd !== undefined) {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
  }
  // Give the space back: a half-written snapshot is of no use to recovery.
  try {
    unlinkSync(job.tmp);
  } catch {
    // already gone, or the directory is read-only
  }
  port.postMessage({ error: { message: e?.message ?? String(error), ...(e?.code ? { code: e.code } : {}), ...(typeof e?.errno === 'number' ? { errno: e.errno } : {}) } } satisfies SnapshotReply);
}

port.on('message', (message: SnapshotMessage) => {
  if (failed) return;
  try {
    if ('chunk' in message) {
      write(message.chunk);
      const chunk = message.chunk;
      if ('vectors' in chunk) port.postMessage({ ack: true, buffer: chunk.vectors.buffer as ArrayBuffer } satisfies SnapshotReply, [chunk.vectors.buffer as ArrayBuffer]);
      else port.postMessage({ ack: true } satisfies SnapshotReply);
    } else {
      finish(message.end);
      port.postMessage({ done: { bytes } } satisfies SnapshotReply);
    }
  } catch (error) {
    fail(error);
  }
});
