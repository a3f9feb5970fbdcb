/**
 * Durability for the AtomSpace: an append-only journal of length-prefixed, CRC-checked
 * records, flushed with fdatasync in group commits (every write waiting when a flush starts
 * is acknowledged by that one fsync), plus snapshots that let old journals be deleted.
 *
 * Snapshots are encoded, written and fsynced on a worker thread (snapshot-write-worker.ts)
 * while appends go on into the next journal; the event loop only hands it chunks.
 *
 * Files in the data directory:
 *   snapshot-<gen>.bin   the whole AtomSpace as of the start of journal <gen>+1
 *   journal-<gen>.log    records written after snapshot <gen-1> (or from the start)
 * Recovery loads the newest readable snapshot, then replays every later journal in order.
 * A torn or corrupt tail (a crash mid-write) fails its length or CRC check: it is cut off
 * at the last good record, never misread.
 *
 * Record: u32 payload length | u32 crc32(payload) | payload.
 * Payload: u32 JSON length | JSON | raw bytes (float32 vectors the JSON refers to).
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, ftruncateSync, unlinkSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { crc32 } from 'node:zlib';

import type { SnapshotJob, SnapshotMessage, SnapshotReply } from './snapshot-write-worker.js';

export interface JournalRecord {
  json: unknown;
  /** Raw bytes carried after the JSON (vectors). */
  bytes?: Uint8Array;
}

export interface JournalObserver {
  fsync(seconds: number): void;
  bytes(total: number): void;
}

export function encodeRecord(record: JournalRecord): Buffer {
  const json = JSON.stringify(record.json);
  const jsonLength = Buffer.byteLength(json);
  const extra = record.bytes;
  const payloadLength = 4 + jsonLength + (extra ? extra.length : 0);
  // One allocation: header, JSON length, JSON, raw bytes.
  const out = Buffer.allocUnsafe(8 + payloadLength);
  out.writeUInt32LE(payloadLength, 0);
  out.writeUInt32LE(jsonLength, 8);
  out.write(json, 12, 'utf8');
  if (extra) out.set(extra, 12 + jsonLength);
  out.writeUInt32LE(crc32(out.subarray(8)), 4);
  return out;
}

/** Decode every whole, valid record; `validBytes` is where the good prefix ends. */
export function decodeRecords(data: Buffer): { records: JournalRecord[]; validBytes: number } {
  const records: JournalRecord[] = [];
  let at = 0;
  while (at + 8 <= data.length) {
    const length = data.readUInt32LE(at);
    const crc = data.readUInt32LE(at + 4);
    if (length < 4 || at + 8 + length > data.length) break;
    const payload = data.subarray(at + 8, at + 8 + length);
    if (crc32(payload) !== crc) break;
    const jsonLength = payload.readUInt32LE(0);
    if (4 + jsonLength > payload.length) break;
    let json: unknown;
    try {
      json = JSON.parse(payload.subarray(4, 4 + jsonLength).toString('utf8'));
    } catch {
      break;
    }
    const rest = payload.subarray(4 + jsonLength);
    records.push(rest.length ? { json, bytes: new Uint8Array(rest) } : { json });
    at += 8 + length;
  }
  return { records, validBytes: at };
}

const JOURNAL = /^journal-(\d+)\.log$/;
const SNAPSHOT = /^snapshot-(\d+)\.bin$/;

export interface Recovered {
  snapshot: JournalRecord[] | undefined;
  journal: JournalRecord[];
  /** Bytes cut from torn journal tails. */
  truncatedBytes: number;
  generation: number;
  /** Why the journal could not be opened for writing (writes fail, and retry, until it can). */
  storageError?: unknown;
}

interface Waiter {
  resolve: () => void;
  reject: (e: unknown) => void;
  /** Takes the batch's change back out of memory when it cannot be written. */
  rollback: (() => void) | undefined;
}

export class Journal {
  /** Undefined while the file may hold bytes past `#bytes` (a failed write): reopened, cut back, before the next write. */
  #handle: FileHandle | undefined;
  #generation = 0;
  #pending: Buffer[] = [];
  #waiters: Waiter[] = [];
  #flushing: Promise<void> | undefined;
  /** Acknowledged bytes in the current journal file. */
  #bytes = 0;
  #closed = false;
  /** While a snapshot rotates the file, flushes wait. */
  #paused = false;
  #snapshotBytes = 0;

  constructor(
    readonly dir: string,
    private readonly observer: JournalObserver = { fsync() {}, bytes() {} },
  ) {}

  get generation(): number {
    return this.#generation;
  }

  /** Bytes in the current journal file. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Read what is on disk (repairing torn tails), then open the journal for appending. A
   * directory that cannot be written (read-only, full) still recovers: its journal is opened
   * by the first write that finds it writable, and writes fail until then.
   */
  async recover(): Promise<Recovered> {
    mkdirSync(this.dir, { recursive: true });
    const files = readdirSync(this.dir);
    const snapshots = files.flatMap((f) => (SNAPSHOT.exec(f) ? [Number(SNAPSHOT.exec(f)![1])] : [])).sort((a, b) => b - a);
    let snapshot: JournalRecord[] | undefined;
    let base = 0;
    for (const gen of snapshots) {
      const data = readFileSync(join(this.dir, `snapshot-${gen}.bin`));
      const decoded = decodeRecords(data);
      const last = decoded.records[decoded.records.length - 1]?.json as { end?: boolean } | undefined;
      if (decoded.validBytes === data.length && last?.end) {
        snapshot = decoded.records.slice(0, -1);
        base = gen;
        this.#snapshotBytes = data.length;
        break;
      }
      // An incomplete snapshot (crash while writing it): the journals it would replace are still here.
    }
    const journals = files.flatMap((f) => (JOURNAL.exec(f) ? [Number(JOURNAL.exec(f)![1])] : [])).filter((g) => g > base).sort((a, b) => a - b);
    const journal: JournalRecord[] = [];
    let truncatedBytes = 0;
    this.#generation = Math.max(base + 1, ...journals);
    this.#bytes = 0;
    for (const gen of journals) {
      const path = this.#path(gen);
      const data = readFileSync(path);
      const decoded = decodeRecords(data);
      journal.push(...decoded.records);
      if (gen === this.#generation) this.#bytes = decoded.validBytes;
      if (decoded.validBytes < data.length) {
        truncatedBytes += data.length - decoded.validBytes;
        try {
          const fd = openSync(path, 'r+');
          try {
            ftruncateSync(fd, decoded.validBytes);
            fsyncSync(fd);
          } finally {
            closeSync(fd);
          }
        } catch {
          // Read-only: the tail stays (and is cut again by every recovery); the current
          // journal is cut back to `#bytes` before anything is appended to it.
        }
      }
    }
    let storageError: unknown;
    try {
      await this.#reopen();
    } catch (error) {
      storageError = error;
    }
    this.observer.bytes(this.#bytes);
    return { snapshot, journal, truncatedBytes, generation: this.#generation, ...(storageError ? { storageError } : {}) };
  }

  #path(gen: number): string {
    return join(this.dir, `journal-${gen}.log`);
  }

  /**
   * Open the current journal for appending, cut back to the acknowledged bytes: whatever a
   * failed write left after them (a partial record, or a whole one whose fdatasync failed)
   * was never acknowledged and must not be replayed.
   */
  async #reopen(): Promise<void> {
    const path = this.#path(this.#generation);
    const handle = await open(path, 'a');
    try {
      const { size } = await handle.stat();
      if (size < this.#bytes) throw Object.assign(new Error(`${path} is ${size} bytes, shorter than the ${this.#bytes} bytes acknowledged`), { code: 'EIO' });
      if (size > this.#bytes) await handle.truncate(this.#bytes);
      await handle.datasync();
      await syncDirAsync(this.dir);
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw error;
    }
    this.#handle = handle;
  }

  /** Close the handle after a failed write; the next write reopens the file and cuts it back. */
  async #drop(): Promise<void> {
    const handle = this.#handle;
    this.#handle = undefined;
    await handle?.close().catch(() => undefined);
  }

  /**
   * Append records; resolves once they are on disk (fdatasync). When they cannot be written,
   * `rollback` runs before the promise rejects, and so does the rollback of every batch
   * appended after this one (all of them fail too), newest first, all before any rejection is
   * seen: the caller's memory goes back to what is on disk.
   */
  append(records: JournalRecord[], rollback?: () => void): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('the journal is closed'));
    for (const r of records) this.#pending.push(encodeRecord(r));
    const done = new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject, rollback }));
    this.#schedule();
    return done;
  }

  /**
   * Resolves once everything appended so far is on disk, rejects when some of it failed. A
   * caller that changed nothing but answers from memory waits here, so it never reports a
   * change that is then rolled back.
   */
  sync(): Promise<void> {
    if (!this.#flushing && this.#waiters.length === 0) return Promise.resolve();
    return this.append([]);
  }

  #schedule(): void {
    if (this.#flushing || this.#paused) return;
    this.#flushing = this.#flush().finally(() => {
      this.#flushing = undefined;
      if (this.#waiters.length) this.#schedule();
    });
  }

  /** One group commit: write everything pending, one fdatasync, acknowledge all of it. Never rejects. */
  async #flush(): Promise<void> {
    const buffers = this.#pending;
    const waiters = this.#waiters;
    this.#pending = [];
    this.#waiters = [];
    if (buffers.length === 0) {
      // Only sync() waiters: everything appended before them was flushed (or failed) already.
      for (const w of waiters) w.resolve();
      return;
    }
    try {
      if (!this.#handle) await this.#reopen();
      const handle = this.#handle!;
      const data = Buffer.concat(buffers);
      // A full disk can take part of a write and refuse the rest on the next call.
      for (let at = 0; at < data.length; ) {
        const { bytesWritten } = await handle.write(data, at, data.length - at);
        if (bytesWritten <= 0) throw Object.assign(new Error('the write made no progress'), { code: 'EIO' });
        at += bytesWritten;
      }
      const t0 = performance.now();
      await handle.datasync();
      this.observer.fsync((performance.now() - t0) / 1000);
      this.#bytes += data.length;
      this.observer.bytes(this.#bytes);
      for (const w of waiters) w.resolve();
    } catch (error) {
      const closing = this.#drop();
      // Everything appended since the last good flush fails: this batch and all pending behind it.
      const failed = [...waiters, ...this.#waiters];
      this.#pending = [];
      this.#waiters = [];
      for (let i = failed.length - 1; i >= 0; i--) {
        try {
          failed[i]!.rollback?.();
        } catch {
          // A throwing undo step is a bug; the other batches must still be undone and answered.
        }
      }
      for (const w of failed) w.reject(error);
      await closing;
    }
  }

  /**
   * Write a snapshot of the state as of now: `source` must describe the whole AtomSpace as of
   * this call (changes still pending included); it is read later, while writes go on, so it
   * must not change with them. Later appends go to a new journal; the snapshot is written once
   * every change it holds is on disk in a journal, and once it is durable, the journals it
   * covers are deleted. Encoding, writing and fsync run on a worker thread, with at most
   * SNAPSHOT_WINDOW chunks in flight. On failure nothing is deleted and appends go on: to the
   * new journal if the rotation happened, else to the old one.
   */
  async snapshot(source: AsyncIterable<SnapshotChunk> | Iterable<SnapshotChunk>): Promise<void> {
    // Rotate first: appends from now on go to the next journal. Records still pending are in
    // `source` too and are written to the next journal; replay is idempotent.
    this.#paused = true;
    // Resolves once every change in `source` is durable; rejects if any was rolled back.
    const covered = this.sync();
    covered.catch(() => undefined);
    const gen = this.#generation;
    try {
      while (this.#flushing) await this.#flushing;
      // Rotate only from a clean file: a failed write's leftovers are cut off first.
      if (!this.#handle) await this.#reopen();
      const next = await open(this.#path(gen + 1), 'a');
      let size: number;
      try {
        size = (await next.stat()).size;
        await syncDirAsync(this.dir);
      } catch (error) {
        await next.close().catch(() => undefined);
        throw error;
      }
      const old = this.#handle!;
      this.#handle = next;
      this.#generation = gen + 1;
      this.#bytes = size;
      this.observer.bytes(this.#bytes);
      await old.close().catch(() => undefined);
    } finally {
      this.#paused = false;
      if (this.#waiters.length) this.#schedule();
    }
    await covered;
    const final = join(this.dir, `snapshot-${gen}.bin`);
    const tmp = `${final}.tmp`;
    const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
    const worker = new Worker(new URL(`./snapshot-write-worker.${ext}`, import.meta.url), { workerData: { tmp } satisfies SnapshotJob });
    let written = false;
    try {
      const replies = new SnapshotReplies(worker);
      // Blocks of vectors are copied into buffers the writer hands back: the same few buffers go
      // round, instead of a new one per block (new external memory makes V8 collect the whole heap).
      const buffers: ArrayBuffer[] = [];
      const settle = async () => {
        const reply = await replies.next();
        if ('ack' in reply && reply.buffer) buffers.push(reply.buffer);
      };
      let inFlight = 0;
      for await (const chunk of source) {
        if (inFlight >= SNAPSHOT_WINDOW) {
          await settle();
          inFlight--;
        }
        if ('records' in chunk) {
          worker.postMessage({ chunk } satisfies SnapshotMessage);
        } else {
          const rows = chunk.matrix.subarray(chunk.from * chunk.dim, chunk.to * chunk.dim);
          let buffer = buffers.pop();
          if (!buffer || buffer.byteLength < rows.byteLength) buffer = new ArrayBuffer(Math.max(rows.byteLength, SNAPSHOT_VECTOR_BYTES));
          const vectors = new Float32Array(buffer, 0, rows.length);
          vectors.set(rows);
          const message: SnapshotMessage = { chunk: { space: chunk.space, model: chunk.model, dim: chunk.dim, ids: chunk.ids, vectors } };
          worker.postMessage(message, [buffer, chunk.ids.buffer as ArrayBuffer]);
        }
        inFlight++;
      }
      for (; inFlight > 0; inFlight--) await settle();
      const remove = readdirSync(this.dir)
        .filter((f) => {
          const j = JOURNAL.exec(f);
          const s = SNAPSHOT.exec(f);
          return (j && Number(j[1]) <= gen) || (s && Number(s[1]) < gen);
        })
        .map((f) => join(this.dir, f));
      worker.postMessage({ end: { dir: this.dir, final, remove } } satisfies SnapshotMessage);
      const done = await replies.next();
      this.#snapshotBytes = 'done' in done ? done.done.bytes : this.#snapshotBytes;
      written = true;
    } finally {
      await worker.terminate();
      if (!written) {
        try {
          unlinkSync(tmp); // the writer removes it when it fails; not when it was stopped
        } catch {
          // already gone
        }
      }
    }
  }

  /** Bytes of the newest snapshot (0 when there is none). */
  get snapshotBytes(): number {
    return this.#snapshotBytes;
  }

  async close(): Promise<void> {
    this.#closed = true;
    while (this.#flushing) await this.#flushing;
    await this.#drop();
  }
}

/** Snapshot chunks sent to the writer thread before waiting for one to be written. */
const SNAPSHOT_WINDOW = 4;
/** Bytes of vectors per snapshot chunk. */
export const SNAPSHOT_VECTOR_BYTES = 4 * 2 ** 20;

/**
 * What the AtomSpace streams into a snapshot: atom records (JSON, as journal records carry
 * them), or a block of one space's rows (`ids[i]` < 0: a removed row, skipped).
 */
export type SnapshotChunk = { records: unknown[] } | { space: string; model: string | null; dim: number; ids: Int32Array; matrix: Float32Array; from: number; to: number };

/** The writer thread's replies, one at a time; an error reply or a dead thread rejects. */
class SnapshotReplies {
  readonly #queue: SnapshotReply[] = [];
  #waiting: { resolve: (r: SnapshotReply) => void; reject: (e: unknown) => void } | undefined;
  #failure: unknown;

  constructor(worker: Worker) {
    worker.on('message', (reply: SnapshotReply) => {
      if ('error' in reply) return this.#fail(Object.assign(new Error(reply.error.message), reply.error));
      if (this.#waiting) {
        this.#waiting.resolve(reply);
        this.#waiting = undefined;
      } else this.#queue.push(reply);
    });
    worker.on('error', (error) => this.#fail(error));
    worker.on('exit', (code) => this.#fail(new Error(`the snapshot writer exited (${code})`)));
  }

  #fail(error: unknown): void {
    this.#failure ??= error;
    this.#waiting?.reject(this.#failure);
    this.#waiting = undefined;
  }

  next(): Promise<SnapshotReply> {
    if (this.#queue.length) return Promise.resolve(this.#queue.shift()!);
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => (this.#waiting = { resolve, reject }));
  }
}

/** fsync a directory off the event loop (it can wait for everything else being written to the disk). */
async function syncDirAsync(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export function syncDir(dir: string): void {
  if (!existsSync(dir)) return;
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
