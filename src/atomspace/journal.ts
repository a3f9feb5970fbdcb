/**
 * Durability for the AtomSpace: an append-only journal of length-prefixed, CRC-checked
 * records, flushed with fdatasync in group commits (every write waiting when a flush starts
 * is acknowledged by that one fsync), plus snapshots that let old journals be deleted.
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
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeSync, ftruncateSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';

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
  const json = Buffer.from(JSON.stringify(record.json));
  const extra = record.bytes ?? new Uint8Array(0);
  const payload = Buffer.allocUnsafe(4 + json.length + extra.length);
  payload.writeUInt32LE(json.length, 0);
  json.copy(payload, 4);
  payload.set(extra, 4 + json.length);
  const header = Buffer.allocUnsafe(8);
  header.writeUInt32LE(payload.length, 0);
  header.writeUInt32LE(crc32(payload), 4);
  return Buffer.concat([header, payload]);
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
}

export class Journal {
  #handle: FileHandle | undefined;
  #generation = 0;
  #pending: Buffer[] = [];
  #waiters: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  #flushing: Promise<void> | undefined;
  #bytes = 0;
  #closed = false;
  /** While a snapshot rotates the file, flushes wait. */
  #paused = false;

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

  /** Read what is on disk (repairing torn tails), then open the journal for appending. */
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
        break;
      }
      // An incomplete snapshot (crash while writing it): the journals it would replace are still here.
    }
    const journals = files.flatMap((f) => (JOURNAL.exec(f) ? [Number(JOURNAL.exec(f)![1])] : [])).filter((g) => g > base).sort((a, b) => a - b);
    const journal: JournalRecord[] = [];
    let truncatedBytes = 0;
    for (const gen of journals) {
      const path = join(this.dir, `journal-${gen}.log`);
      const data = readFileSync(path);
      const decoded = decodeRecords(data);
      journal.push(...decoded.records);
      if (decoded.validBytes < data.length) {
        truncatedBytes += data.length - decoded.validBytes;
        const fd = openSync(path, 'r+');
        ftruncateSync(fd, decoded.validBytes);
        fsyncSync(fd);
        closeSync(fd);
      }
    }
    this.#generation = Math.max(base + 1, ...journals);
    await this.#openGeneration(this.#generation);
    return { snapshot, journal, truncatedBytes, generation: this.#generation };
  }

  async #openGeneration(gen: number): Promise<void> {
    this.#handle = await open(join(this.dir, `journal-${gen}.log`), 'a');
    this.#bytes = (await this.#handle.stat()).size;
    this.observer.bytes(this.#bytes);
    syncDir(this.dir);
  }

  /** Append records; resolves once they are on disk (fdatasync). */
  append(records: JournalRecord[]): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('the journal is closed'));
    for (const r of records) this.#pending.push(encodeRecord(r));
    const done = new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject }));
    this.#schedule();
    return done;
  }

  #schedule(): void {
    if (this.#flushing || this.#paused) return;
    this.#flushing = this.#flush().finally(() => {
      this.#flushing = undefined;
      if (this.#pending.length) this.#schedule();
    });
  }

  /** One group commit: write everything pending, one fdatasync, acknowledge all of it. */
  async #flush(): Promise<void> {
    const buffers = this.#pending;
    const waiters = this.#waiters;
    this.#pending = [];
    this.#waiters = [];
    try {
      const data = Buffer.concat(buffers);
      await this.#handle!.write(data);
      const t0 = performance.now();
      await this.#handle!.datasync();
      this.observer.fsync((performance.now() - t0) / 1000);
      this.#bytes += data.length;
      this.observer.bytes(this.#bytes);
      for (const w of waiters) w.resolve();
    } catch (error) {
      for (const w of waiters) w.reject(error);
    }
  }

  /**
   * Write a snapshot of the state as of now: `records` must describe the whole AtomSpace at
   * this instant. Later appends go to a new journal; once the snapshot is durable, the
   * journals it covers are deleted.
   */
  async snapshot(records: JournalRecord[]): Promise<void> {
    // Rotate first: appends from now on go to the next journal. Records still pending may
    // already be in `records` too; replay is idempotent, so writing them after is harmless.
    this.#paused = true;
    const gen = this.#generation;
    try {
      await this.#flushing;
      const old = this.#handle!;
      this.#generation = gen + 1;
      await this.#openGeneration(this.#generation);
      await old.close();
    } finally {
      this.#paused = false;
      if (this.#pending.length) this.#schedule();
    }
    const tmp = join(this.dir, `snapshot-${gen}.bin.tmp`);
    const fd = openSync(tmp, 'w');
    try {
      for (const r of records) writeSync(fd, encodeRecord(r));
      writeSync(fd, encodeRecord({ json: { end: true } }));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, join(this.dir, `snapshot-${gen}.bin`));
    syncDir(this.dir);
    for (const f of readdirSync(this.dir)) {
      const j = JOURNAL.exec(f);
      const s = SNAPSHOT.exec(f);
      if ((j && Number(j[1]) <= gen) || (s && Number(s[1]) < gen)) unlinkSync(join(this.dir, f));
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#flushing;
    await this.#handle?.close();
    this.#handle = undefined;
  }
}

function syncDir(dir: string): void {
  if (!existsSync(dir)) return;
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
