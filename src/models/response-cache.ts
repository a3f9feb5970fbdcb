/**
 * The per-model response cache: an LRU of finished response bodies, keyed by model and a
 * hash of the normalised request, bounded in bytes. Sampling requests never use it.
 */
import { createHash } from 'node:crypto';

export interface CacheObserver {
  hit(model: string): void;
  miss(model: string): void;
  eviction(model: string): void;
  bytes(total: number): void;
}

interface Entry {
  model: string;
  body: string;
}

export class ResponseCache {
  readonly #entries = new Map<string, Entry>();
  #bytes = 0;

  constructor(
    readonly maxBytes: number,
    private readonly observer: CacheObserver,
  ) {}

  get enabled(): boolean {
    return this.maxBytes > 0;
  }

  /** Key for a request: model, route, and the request normalised (keys sorted, defaults filled). */
  static key(model: string, route: string, request: unknown): string {
    return createHash('sha256').update(model).update('\0').update(route).update('\0').update(stableJson(request)).digest('hex');
  }

  get(model: string, key: string): string | undefined {
    if (!this.enabled) return undefined;
    const entry = this.#entries.get(key);
    if (!entry) {
      this.observer.miss(model);
      return undefined;
    }
    this.#entries.delete(key); // refresh recency
    this.#entries.set(key, entry);
    this.observer.hit(model);
    return entry.body;
  }

  set(model: string, key: string, body: string): void {
    if (!this.enabled) return;
    const size = Buffer.byteLength(body) + key.length;
    if (size > this.maxBytes) return;
    const old = this.#entries.get(key);
    if (old) {
      this.#bytes -= Buffer.byteLength(old.body) + key.length;
      this.#entries.delete(key);
    }
    while (this.#bytes + size > this.maxBytes) {
      const [oldestKey, oldest] = this.#entries.entries().next().value as [string, Entry];
      this.#entries.delete(oldestKey);
      this.#bytes -= Buffer.byteLength(oldest.body) + oldestKey.length;
      this.observer.eviction(oldest.model);
    }
    this.#entries.set(key, { model, body });
    this.#bytes += size;
    this.observer.bytes(this.#bytes);
  }

  /** Forget a model's entries (after it is unloaded or reloaded). */
  dropModel(model: string): void {
    for (const [key, entry] of this.#entries) {
      if (entry.model === model) {
        this.#entries.delete(key);
        this.#bytes -= Buffer.byteLength(entry.body) + key.length;
      }
    }
    this.observer.bytes(this.#bytes);
  }

  get size(): number {
    return this.#entries.size;
  }
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
