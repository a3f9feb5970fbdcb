/**
 * Tables that stay cheap to grow at millions of entries. A JavaScript Map doubles by rehashing
 * every entry at once (about 0.2 s at half a million, on the event loop); these never do.
 *
 * - AtomTable: values by atom id in an array (ids are small dense integers): growing copies
 *   pointers, lookups do not hash, and iteration is in id order.
 * - ShardedMap: string keys spread over 64 Maps by a hash, so a rehash moves 1/64 of them.
 */
export class AtomTable<T> {
  #slots: (T | undefined)[] = [];
  #size = 0;

  get size(): number {
    return this.#size;
  }

  get(id: number): T | undefined {
    return this.#slots[id];
  }

  has(id: number): boolean {
    return this.#slots[id] !== undefined;
  }

  set(id: number, value: T): void {
    if (!Number.isSafeInteger(id) || id < 0) throw new RangeError(`atom ids are non-negative integers, got ${id}`);
    if (this.#slots[id] === undefined) this.#size++;
    // Ids are handed out in order, so this appends; a hole is left only by a removed atom.
    while (this.#slots.length < id) this.#slots.push(undefined);
    this.#slots[id] = value;
  }

  delete(id: number): boolean {
    if (this.#slots[id] === undefined) return false;
    this.#slots[id] = undefined;
    this.#size--;
    return true;
  }

  /** In id order. */
  *values(): Generator<T> {
    const slots = this.#slots;
    for (let id = 0; id < slots.length; id++) {
      const value = slots[id];
      if (value !== undefined) yield value;
    }
  }
}

const SHARDS = 64;

export class ShardedMap<V> {
  readonly #shards = Array.from({ length: SHARDS }, () => new Map<string, V>());
  #size = 0;

  get size(): number {
    return this.#size;
  }

  #shard(key: string): Map<string, V> {
    // FNV-1a over the key's UTF-16 code units.
    let h = 0x811c9dc5;
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
    return this.#shards[(h >>> 0) % SHARDS]!;
  }

  get(key: string): V | undefined {
    return this.#shard(key).get(key);
  }

  has(key: string): boolean {
    return this.#shard(key).has(key);
  }

  set(key: string, value: V): void {
    const shard = this.#shard(key);
    if (!shard.has(key)) this.#size++;
    shard.set(key, value);
  }

  delete(key: string): boolean {
    const deleted = this.#shard(key).delete(key);
    if (deleted) this.#size--;
    return deleted;
  }
}
