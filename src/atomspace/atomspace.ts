/**
 * The AtomSpace: a typed hypergraph. Nodes are unique by (type, name), links by (type,
 * outgoing) — order-insensitive for unordered types such as SimilarityLink — and adding an
 * existing atom returns it. Atoms carry a truth value, attention values and, per embedding
 * space, one vector. Every change is applied in memory and acknowledged only once its journal
 * record is on disk. Knows nothing of HTTP.
 */
import { EmbeddingSpace, type SpaceView } from './embedding-space.js';
import { Journal, type JournalObserver, type JournalRecord } from './journal.js';
import { TypeHierarchy, type TypeDefinition } from './types.js';

export interface TruthValue {
  strength: number;
  confidence: number;
}

export interface AttentionValue {
  /** Short-term importance. */
  sti: number;
  /** Long-term importance. */
  lti: number;
}

export interface Atom {
  id: number;
  type: string;
  name?: string;
  outgoing?: number[];
  tv: TruthValue;
  av: AttentionValue;
}

/** STORAGE_UNAVAILABLE: the journal cannot be written (disk full, read-only); nothing was changed. */
export type AtomSpaceErrorCode = 'ATOM_NOT_FOUND' | 'BAD_ATOM' | 'HAS_INCOMING' | 'SPACE_NOT_FOUND' | 'STORAGE_UNAVAILABLE';

export class AtomSpaceError extends Error {
  constructor(
    readonly code: AtomSpaceErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface EmbeddingInput {
  space: string;
  /** The model that made the vector (null when given directly). */
  model: string | null;
  vector: ArrayLike<number>;
}

export interface NodeInput {
  type: string;
  name: string;
  tv?: TruthValue;
  embeddings?: EmbeddingInput[];
}

export interface LinkInput {
  type: string;
  outgoing: number[];
  tv?: TruthValue;
}

export interface AtomSpaceOptions {
  dataDir: string;
  types?: TypeDefinition[];
  /** Journal bytes after which a snapshot is written and old journals dropped. */
  snapshotBytes?: number;
  journalObserver?: JournalObserver;
}

const DEFAULT_TV: TruthValue = { strength: 1, confidence: 0 };
const DEFAULT_AV: AttentionValue = { sti: 0, lti: 0 };

function checkTv(tv: TruthValue | undefined): TruthValue | undefined {
  if (tv === undefined) return undefined;
  for (const key of ['strength', 'confidence'] as const) {
    const v = tv[key];
    if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new AtomSpaceError('BAD_ATOM', `tv.${key} must be a number from 0 to 1`);
  }
  return { strength: tv.strength, confidence: tv.confidence };
}

function checkAv(av: Partial<AttentionValue> | undefined, current: AttentionValue): AttentionValue | undefined {
  if (av === undefined) return undefined;
  const out = { ...current };
  for (const key of ['sti', 'lti'] as const) {
    if (av[key] === undefined) continue;
    if (typeof av[key] !== 'number' || !Number.isFinite(av[key])) throw new AtomSpaceError('BAD_ATOM', `av.${key} must be a finite number`);
    out[key] = av[key]!;
  }
  return out;
}

export class AtomSpace {
  readonly types: TypeHierarchy;
  readonly #atoms = new Map<number, Atom>();
  readonly #nodes = new Map<string, number>();
  readonly #links = new Map<string, number>();
  readonly #incoming = new Map<number, Set<number>>();
  readonly #spaces = new Map<string, EmbeddingSpace>();
  readonly #countByType = new Map<string, number>();
  readonly #journal: Journal;
  readonly #snapshotBytes: number;
  #nextId = 1;
  #snapshotting: Promise<void> | undefined;

  private constructor(options: AtomSpaceOptions) {
    this.types = new TypeHierarchy(options.types ?? []);
    this.#journal = new Journal(options.dataDir, options.journalObserver);
    this.#snapshotBytes = options.snapshotBytes ?? 64 * 2 ** 20;
  }

  /** Open (and recover) the AtomSpace stored in `dataDir`. */
  static async open(options: AtomSpaceOptions): Promise<{ atomspace: AtomSpace; recovered: { atoms: number; truncatedBytes: number } }> {
    const space = new AtomSpace(options);
    const recovered = await space.#journal.recover();
    for (const record of [...(recovered.snapshot ?? []), ...recovered.journal]) space.#replay(record);
    return { atomspace: space, recovered: { atoms: space.#atoms.size, truncatedBytes: recovered.truncatedBytes } };
  }

  get size(): number {
    return this.#atoms.size;
  }

  get journalBytes(): number {
    return this.#journal.bytes;
  }

  countsByType(): Map<string, number> {
    return new Map(this.#countByType);
  }

  get(id: number): Atom | undefined {
    const atom = this.#atoms.get(id);
    return atom && copy(atom);
  }

  require(id: number): Atom {
    const atom = this.get(id);
    if (!atom) throw new AtomSpaceError('ATOM_NOT_FOUND', `no atom ${id}`);
    return atom;
  }

  /** Atoms of a type (and its subtypes), optionally with a name. */
  find(filter: { type?: string; name?: string; limit?: number; offset?: number }): { atoms: Atom[]; total: number } {
    if (filter.type && !this.types.has(filter.type)) throw new AtomSpaceError('BAD_ATOM', `unknown atom type '${filter.type}'`);
    if (filter.type && filter.name !== undefined && this.types.isNode(filter.type)) {
      const id = this.#nodes.get(nodeKey(filter.type, filter.name));
      const atoms = id ? [copy(this.#atoms.get(id)!)] : [];
      return { atoms, total: atoms.length };
    }
    const matches: Atom[] = [];
    for (const atom of this.#atoms.values()) {
      if (filter.type && !this.types.isA(atom.type, filter.type)) continue;
      if (filter.name !== undefined && atom.name !== filter.name) continue;
      matches.push(atom);
    }
    const offset = filter.offset ?? 0;
    const limit = filter.limit ?? 100;
    return { atoms: matches.slice(offset, offset + limit).map(copy), total: matches.length };
  }

  incoming(id: number): Atom[] {
    this.require(id);
    return [...(this.#incoming.get(id) ?? [])].sort((a, b) => a - b).map((l) => copy(this.#atoms.get(l)!));
  }

  space(name: string): EmbeddingSpace | undefined {
    return this.#spaces.get(name);
  }

  spaces(): EmbeddingSpace[] {
    return [...this.#spaces.values()];
  }

  /** The vector of an atom in a space. */
  embedding(id: number, space: string): Float32Array | undefined {
    return this.#spaces.get(space)?.get(id);
  }

  /** Spaces in which the atom has a vector. */
  spacesOf(id: number): string[] {
    return [...this.#spaces.values()].filter((s) => s.has(id)).map((s) => s.name);
  }

  /** Add a node, or return the existing one (whose tv and embeddings are updated when given). */
  async addNode(input: NodeInput): Promise<{ atom: Atom; created: boolean }> {
    const [result] = await this.addBatch([{ node: input }]);
    return result!;
  }

  async addLink(input: LinkInput): Promise<{ atom: Atom; created: boolean }> {
    const [result] = await this.addBatch([{ link: input }]);
    return result!;
  }

  /**
   * Add many atoms in one journal group commit. Every item is validated before anything
   * changes, so a link must name atoms that already exist (add its targets in an earlier call).
   */
  async addBatch(items: ({ node: NodeInput } | { link: LinkInput })[]): Promise<{ atom: Atom; created: boolean }[]> {
    const records: JournalRecord[] = [];
    const results: { atom: Atom; created: boolean }[] = [];
    // Validate everything first so a bad item changes nothing.
    for (const item of items) {
      if ('node' in item) this.#validateNode(item.node);
      else this.#validateLink(item.link);
    }
    for (const item of items) {
      if ('node' in item) results.push(this.#applyNode(item.node, records));
      else results.push(this.#applyLink(item.link, records));
    }
    await this.#commit(records);
    return results.map((r) => ({ atom: copy(this.#atoms.get(r.atom.id)!), created: r.created }));
  }

  async update(id: number, change: { tv?: TruthValue; av?: Partial<AttentionValue> }): Promise<Atom> {
    const atom = this.#atoms.get(id);
    if (!atom) throw new AtomSpaceError('ATOM_NOT_FOUND', `no atom ${id}`);
    const tv = checkTv(change.tv);
    const av = checkAv(change.av, atom.av);
    if (!tv && !av) throw new AtomSpaceError('BAD_ATOM', 'nothing to update: give tv and/or av');
    const record = { op: 'update', id, ...(tv ? { tv } : {}), ...(av ? { av } : {}) };
    this.#replay({ json: record });
    await this.#commit([{ json: record }]);
    return copy(this.#atoms.get(id)!);
  }

  /** Remove an atom; refused when links contain it, unless recursive (then they go too). */
  async remove(id: number, recursive: boolean): Promise<number[]> {
    if (!this.#atoms.has(id)) throw new AtomSpaceError('ATOM_NOT_FOUND', `no atom ${id}`);
    const incoming = this.#incoming.get(id);
    if (incoming?.size && !recursive) {
      throw new AtomSpaceError('HAS_INCOMING', `atom ${id} is in ${incoming.size} link(s) (${[...incoming].slice(0, 5).join(', ')}); remove them first or pass recursive=true`);
    }
    const order: number[] = [];
    const visit = (atomId: number) => {
      for (const parent of this.#incoming.get(atomId) ?? []) if (!order.includes(parent)) visit(parent);
      if (!order.includes(atomId)) order.push(atomId);
    };
    visit(id);
    const record = { op: 'remove', ids: order };
    this.#replay({ json: record });
    await this.#commit([{ json: record }]);
    return order;
  }

  async setEmbedding(id: number, input: EmbeddingInput): Promise<void> {
    const atom = this.#atoms.get(id);
    if (!atom) throw new AtomSpaceError('ATOM_NOT_FOUND', `no atom ${id}`);
    const records: JournalRecord[] = [];
    this.#checkEmbedding(input);
    this.#embed(atom, input, records);
    await this.#commit(records);
  }

  /** A consistent view of one space for a similarity scan. */
  view(space: string): SpaceView {
    const s = this.#spaces.get(space);
    if (!s) throw new AtomSpaceError('SPACE_NOT_FOUND', `no embedding space '${space}' (spaces: ${[...this.#spaces.keys()].join(', ') || 'none'})`);
    return s.view();
  }

  async close(): Promise<void> {
    await this.#snapshotting;
    await this.#journal.close();
  }

  /** Write a snapshot now (also happens by itself as the journal grows). */
  async snapshot(): Promise<void> {
    if (this.#snapshotting) return this.#snapshotting;
    const records = this.#snapshotRecords();
    this.#snapshotting = this.#journal.snapshot(records).finally(() => {
      this.#snapshotting = undefined;
    });
    return this.#snapshotting;
  }

  // ----- internals -----

  async #commit(records: JournalRecord[]): Promise<void> {
    if (records.length === 0) return;
    await this.#journal.append(records);
    if (this.#journal.bytes > this.#snapshotBytes && !this.#snapshotting) {
      // Compact tombstoned rows while we are at it; queries in flight keep their arrays.
      for (const s of this.#spaces.values()) if (s.tombstones > s.size) s.compact();
      void this.snapshot().catch(() => undefined);
    }
  }

  #validateNode(input: NodeInput): void {
    if (typeof input.type !== 'string' || !this.types.has(input.type)) throw new AtomSpaceError('BAD_ATOM', `unknown atom type '${input.type}'`);
    if (!this.types.isNode(input.type)) throw new AtomSpaceError('BAD_ATOM', `'${input.type}' is not a node type`);
    if (typeof input.name !== 'string' || input.name.length === 0 || input.name.length > 4096) {
      throw new AtomSpaceError('BAD_ATOM', 'a node needs a name of 1 to 4096 characters');
    }
    checkTv(input.tv);
    for (const e of input.embeddings ?? []) this.#checkEmbedding(e);
  }

  #checkEmbedding(e: EmbeddingInput): void {
    if (typeof e.space !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/.test(e.space)) {
      throw new AtomSpaceError('BAD_ATOM', `embedding space name '${e.space}' must be letters, digits, . _ : -`);
    }
    const existing = this.#spaces.get(e.space);
    if (existing) existing.normalize(e.vector);
    else new EmbeddingSpace(e.space, e.vector.length, e.model, 1).normalize(e.vector);
  }

  #validateLink(input: LinkInput): void {
    if (typeof input.type !== 'string' || !this.types.has(input.type)) throw new AtomSpaceError('BAD_ATOM', `unknown atom type '${input.type}'`);
    if (!this.types.isLink(input.type)) throw new AtomSpaceError('BAD_ATOM', `'${input.type}' is not a link type`);
    if (!Array.isArray(input.outgoing) || input.outgoing.length === 0 || input.outgoing.length > 1024) {
      throw new AtomSpaceError('BAD_ATOM', 'a link needs 1 to 1024 outgoing atom ids');
    }
    for (const id of input.outgoing) {
      if (!Number.isInteger(id) || !this.#atoms.has(id)) throw new AtomSpaceError('ATOM_NOT_FOUND', `outgoing atom ${id} does not exist`);
    }
    checkTv(input.tv);
  }

  #applyNode(input: NodeInput, records: JournalRecord[]): { atom: Atom; created: boolean } {
    const result = this.#addOrUpdate(this.#nodes.get(nodeKey(input.type, input.name)), input.tv, records, (id, tv) => ({ op: 'node', id, type: input.type, name: input.name, tv }));
    for (const e of input.embeddings ?? []) this.#embed(result.atom, e, records);
    return result;
  }

  #applyLink(input: LinkInput, records: JournalRecord[]): { atom: Atom; created: boolean } {
    this.#validateLink(input);
    const outgoing = this.types.isUnordered(input.type) ? [...input.outgoing].sort((a, b) => a - b) : [...input.outgoing];
    return this.#addOrUpdate(this.#links.get(linkKey(input.type, outgoing)), input.tv, records, (id, tv) => ({ op: 'link', id, type: input.type, outgoing, tv }));
  }

  /** Create the atom (`existing` undefined) or update its tv when one is given; records the change. */
  #addOrUpdate(existing: number | undefined, tv: TruthValue | undefined, records: JournalRecord[], create: (id: number, tv: TruthValue) => object) {
    let record: object | undefined;
    const id = existing ?? this.#nextId;
    if (existing === undefined) record = create(id, checkTv(tv) ?? DEFAULT_TV);
    else if (tv) record = { op: 'update', id, tv: checkTv(tv) };
    if (record) {
      this.#replay({ json: record });
      records.push({ json: record });
    }
    return { atom: this.#atoms.get(id)!, created: existing === undefined };
  }

  #embed(atom: Atom, input: EmbeddingInput, records: JournalRecord[]): void {
    const vector = Float32Array.from(input.vector);
    const record = { op: 'embed', id: atom.id, space: input.space, model: input.model, dim: vector.length };
    const bytes = new Uint8Array(vector.buffer);
    this.#replay({ json: record, bytes });
    records.push({ json: record, bytes });
  }

  /** Apply one journal record to memory. Idempotent: replaying a record twice changes nothing. */
  #replay(record: JournalRecord): void {
    const r = record.json as Record<string, unknown> & { op: string };
    switch (r.op) {
      case 'node': {
        const id = r.id as number;
        if (this.#atoms.has(id)) return;
        const atom: Atom = { id, type: r.type as string, name: r.name as string, tv: r.tv as TruthValue, av: (r.av as AttentionValue) ?? { ...DEFAULT_AV } };
        this.#atoms.set(id, atom);
        this.#nodes.set(nodeKey(atom.type, atom.name!), id);
        this.#count(atom.type, 1);
        this.#nextId = Math.max(this.#nextId, id + 1);
        return;
      }
      case 'link': {
        const id = r.id as number;
        if (this.#atoms.has(id)) return;
        const atom: Atom = { id, type: r.type as string, outgoing: r.outgoing as number[], tv: r.tv as TruthValue, av: (r.av as AttentionValue) ?? { ...DEFAULT_AV } };
        this.#atoms.set(id, atom);
        this.#links.set(linkKey(atom.type, atom.outgoing!), id);
        for (const target of new Set(atom.outgoing)) {
          let set = this.#incoming.get(target);
          if (!set) this.#incoming.set(target, (set = new Set()));
          set.add(id);
        }
        this.#count(atom.type, 1);
        this.#nextId = Math.max(this.#nextId, id + 1);
        return;
      }
      case 'update': {
        const atom = this.#atoms.get(r.id as number);
        if (!atom) return;
        if (r.tv) atom.tv = r.tv as TruthValue;
        if (r.av) atom.av = r.av as AttentionValue;
        return;
      }
      case 'remove': {
        for (const id of r.ids as number[]) this.#removeOne(id);
        return;
      }
      case 'embed': {
        const atom = this.#atoms.get(r.id as number);
        if (!atom || !record.bytes) return;
        const vector = new Float32Array(record.bytes.buffer.slice(record.bytes.byteOffset, record.bytes.byteOffset + record.bytes.byteLength));
        let space = this.#spaces.get(r.space as string);
        if (!space) {
          space = new EmbeddingSpace(r.space as string, r.dim as number, (r.model as string | null) ?? null);
          this.#spaces.set(space.name, space);
        }
        space.set(atom.id, this.types.code(atom.type), vector);
        return;
      }
      case 'next-id':
        this.#nextId = Math.max(this.#nextId, r.value as number);
        return;
      default:
        throw new Error(`unknown journal record '${r.op}'`);
    }
  }

  #removeOne(id: number): void {
    const atom = this.#atoms.get(id);
    if (!atom) return;
    this.#atoms.delete(id);
    if (atom.name !== undefined) this.#nodes.delete(nodeKey(atom.type, atom.name));
    if (atom.outgoing) {
      this.#links.delete(linkKey(atom.type, atom.outgoing));
      for (const target of atom.outgoing) this.#incoming.get(target)?.delete(id);
    }
    this.#incoming.delete(id);
    for (const space of this.#spaces.values()) space.remove(id);
    this.#count(atom.type, -1);
  }

  #count(type: string, delta: number): void {
    this.#countByType.set(type, (this.#countByType.get(type) ?? 0) + delta);
  }

  #snapshotRecords(): JournalRecord[] {
    const records: JournalRecord[] = [{ json: { op: 'next-id', value: this.#nextId } }];
    // Nodes before links, links in id order: every link's targets exist when it is replayed.
    const atoms = [...this.#atoms.values()].sort((a, b) => a.id - b.id);
    for (const a of atoms) {
      if (a.outgoing) continue;
      records.push({ json: { op: 'node', id: a.id, type: a.type, name: a.name, tv: a.tv, av: a.av } });
    }
    for (const a of atoms) {
      if (!a.outgoing) continue;
      records.push({ json: { op: 'link', id: a.id, type: a.type, outgoing: a.outgoing, tv: a.tv, av: a.av } });
    }
    for (const space of this.#spaces.values()) {
      for (const [id, vector] of space.entries()) {
        records.push({ json: { op: 'embed', id, space: space.name, model: space.model, dim: space.dim }, bytes: new Uint8Array(vector.slice().buffer) });
      }
    }
    return records;
  }
}

function nodeKey(type: string, name: string): string {
  return `${type}\u0000${name}`;
}

function linkKey(type: string, outgoing: number[]): string {
  return `${type}\u0000${outgoing.join(',')}`;
}

function copy(atom: Atom): Atom {
  return { ...atom, tv: { ...atom.tv }, av: { ...atom.av }, ...(atom.outgoing ? { outgoing: [...atom.outgoing] } : {}) };
}
