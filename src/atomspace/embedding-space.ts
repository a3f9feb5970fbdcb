/**
 * One embedding space (a model name and a dimension): every vector in one contiguous,
 * pre-normalised Float32Array, so cosine similarity against all of them is one matrix-vector
 * product. Rows are append-only: replacing or removing a vector tombstones its row, so a
 * query in flight (which holds the arrays it started with) never sees a row change meaning.
 * `compact()` drops tombstones when no query is running.
 *
 * The matrix lives in a resizable ArrayBuffer that reserves its largest size up front (address
 * space only), so growing it commits pages in place instead of copying every vector on the event
 * loop (a 1M x 384 space would stall it for hundreds of milliseconds per doubling). Past what one
 * ArrayBuffer can hold (4 GiB) it falls back to a copy.
 */
export const REMOVED = 0xffff;

export class EmbeddingError extends Error {
  readonly code = 'BAD_EMBEDDING';
}

export interface SpaceView {
  matrix: Float32Array;
  rows: number;
  rowTypes: Uint16Array;
  rowAtoms: Int32Array;
}

/** ES2024 resizable ArrayBuffers (Node 20 has them; the ES2022 lib does not declare them). */
interface ResizableArrayBuffer extends ArrayBuffer {
  readonly resizable: boolean;
  readonly maxByteLength: number;
  resize(byteLength: number): void;
}
const ResizableBuffer = ArrayBuffer as unknown as new (byteLength: number, options: { maxByteLength: number }) => ResizableArrayBuffer;
/** The largest ArrayBuffer V8 accepts here. */
const MAX_BUFFER_BYTES = 2 ** 32;
/** The most a matrix grows by at once. */
const GROW_BYTES = 32 * 2 ** 20;

/** A zeroed Float32Array of `length` that can grow in place up to what one ArrayBuffer holds. */
function growableMatrix(length: number, dim: number): Float32Array {
  const rowBytes = dim * 4;
  const maxByteLength = Math.floor(MAX_BUFFER_BYTES / rowBytes) * rowBytes;
  if (length * 4 > maxByteLength) return new Float32Array(length);
  return new Float32Array(new ResizableBuffer(length * 4, { maxByteLength }));
}

/** A space's rows as of one instant, for a snapshot: `rowAtoms` is a copy, matrix rows below `rows` never change. */
export interface SpaceCapture {
  name: string;
  model: string | null;
  dim: number;
  rows: number;
  matrix: Float32Array;
  rowAtoms: Int32Array;
}

/** The squared L2 norm of a vector of a space, after checking its length and values; throws EmbeddingError. */
export function squaredNorm(space: string, dim: number, vector: ArrayLike<number>): number {
  if (vector.length !== dim) throw new EmbeddingError(`space '${space}' holds ${dim}-dimensional vectors, got ${vector.length}`);
  let norm = 0;
  for (let i = 0; i < vector.length; i++) {
    const v = vector[i]!;
    if (!Number.isFinite(v)) throw new EmbeddingError(`embedding value ${i} is not a finite number`);
    norm += v * v;
  }
  if (norm === 0) throw new EmbeddingError('embedding has zero norm');
  return norm;
}

export class EmbeddingSpace {
  #matrix: Float32Array;
  #rowTypes: Uint16Array;
  #rowAtoms: Int32Array;
  #rows = 0;
  /** Row of each atom id (-1: none): an array, not a Map, so growing it never rehashes a million entries on the event loop. */
  #rowOf = new Int32Array(1024).fill(-1);
  #size = 0;
  #scratch: Float32Array | undefined;

  constructor(
    readonly name: string,
    readonly dim: number,
    readonly model: string | null,
    capacity = 1024,
  ) {
    if (!Number.isInteger(dim) || dim < 1 || dim > 65536) throw new EmbeddingError(`space '${name}': dimension must be 1..65536`);
    this.#matrix = growableMatrix(capacity * dim, dim);
    this.#rowTypes = new Uint16Array(capacity).fill(REMOVED);
    this.#rowAtoms = new Int32Array(capacity).fill(-1);
  }

  /** Vectors held (not counting tombstones). */
  get size(): number {
    return this.#size;
  }

  /** Rows used, tombstones included. */
  get rows(): number {
    return this.#rows;
  }

  has(atomId: number): boolean {
    return this.#rowOfAtom(atomId) >= 0;
  }

  /** Check a vector for this space (length, finite, non-zero) without copying it; throws EmbeddingError. */
  check(vector: ArrayLike<number>): void {
    squaredNorm(this.name, this.dim, vector);
  }

  /** L2-normalise a vector; throws on a wrong length, a non-finite value or zero norm. */
  normalize(vector: ArrayLike<number>): Float32Array {
    const scale = 1 / Math.sqrt(squaredNorm(this.name, this.dim, vector));
    const out = new Float32Array(this.dim);
    for (let i = 0; i < vector.length; i++) out[i] = vector[i]! * scale;
    return out;
  }

  /** Set the atom's vector (normalised straight into its new row); replaces an earlier one. */
  set(atomId: number, typeCode: number, vector: ArrayLike<number>): void {
    const scale = 1 / Math.sqrt(squaredNorm(this.name, this.dim, vector));
    // Normalised into a plain scratch row, then copied in (element writes into the resizable matrix are slower).
    const scratch = (this.#scratch ??= new Float32Array(this.dim));
    for (let i = 0; i < this.dim; i++) scratch[i] = vector[i]! * scale;
    this.#matrix.set(scratch, this.#newRow(atomId, typeCode) * this.dim);
  }

  /** Put back a vector this space held (from `get`), as it was: already normalised. */
  restore(atomId: number, typeCode: number, normalized: Float32Array): void {
    this.#matrix.set(normalized, this.#newRow(atomId, typeCode) * this.dim);
  }

  /** A fresh row for the atom (its old one, if any, is tombstoned). */
  #newRow(atomId: number, typeCode: number): number {
    this.remove(atomId);
    if (this.#rows === this.#rowAtoms.length) this.#grow();
    const row = this.#rows++;
    this.#rowTypes[row] = typeCode;
    this.#rowAtoms[row] = atomId;
    this.#setRowOf(atomId, row);
    this.#size++;
    return row;
  }

  remove(atomId: number): boolean {
    const row = this.#rowOfAtom(atomId);
    if (row < 0) return false;
    this.#rowTypes[row] = REMOVED;
    this.#rowAtoms[row] = -1;
    this.#rowOf[atomId] = -1;
    this.#size--;
    return true;
  }

  /** The atom's normalised vector (a copy). */
  get(atomId: number): Float32Array | undefined {
    const row = this.#rowOfAtom(atomId);
    return row < 0 ? undefined : this.#matrix.slice(row * this.dim, (row + 1) * this.dim);
  }

  /** The arrays as they are now; later writes never change what these rows mean. */
  view(): SpaceView {
    return { matrix: this.#matrix, rows: this.#rows, rowTypes: this.#rowTypes, rowAtoms: this.#rowAtoms };
  }

  /** The rows as they are now, for a snapshot written while writes go on. */
  capture(): SpaceCapture {
    return { name: this.name, model: this.model, dim: this.dim, rows: this.#rows, matrix: this.#matrix, rowAtoms: this.#rowAtoms.slice(0, this.#rows) };
  }

  /** Every (atom id, vector) pair. */
  *entries(): Generator<[number, Float32Array]> {
    for (let row = 0; row < this.#rows; row++) {
      const atomId = this.#rowAtoms[row]!;
      if (atomId >= 0) yield [atomId, this.#matrix.subarray(row * this.dim, (row + 1) * this.dim)];
    }
  }

  /** Rewrite without tombstones (into new arrays: a running query keeps the old ones). */
  compact(): void {
    if (this.#rows === this.#size) return;
    const capacity = Math.max(1024, this.#size * 2);
    const matrix = growableMatrix(capacity * this.dim, this.dim);
    const rowTypes = new Uint16Array(capacity).fill(REMOVED);
    const rowAtoms = new Int32Array(capacity).fill(-1);
    let next = 0;
    for (let row = 0; row < this.#rows; row++) {
      const atom = this.#rowAtoms[row]!;
      if (atom < 0) continue;
      matrix.set(this.#matrix.subarray(row * this.dim, (row + 1) * this.dim), next * this.dim);
      rowTypes[next] = this.#rowTypes[row]!;
      rowAtoms[next] = atom;
      this.#rowOf[atom] = next;
      next++;
    }
    this.#matrix = matrix;
    this.#rowTypes = rowTypes;
    this.#rowAtoms = rowAtoms;
    this.#rows = next;
  }

  get tombstones(): number {
    return this.#rows - this.#size;
  }

  #rowOfAtom(atomId: number): number {
    return Number.isInteger(atomId) && atomId >= 0 && atomId < this.#rowOf.length ? this.#rowOf[atomId]! : -1;
  }

  #setRowOf(atomId: number, row: number): void {
    if (atomId >= this.#rowOf.length) {
      const grown = new Int32Array(Math.max(atomId + 1, this.#rowOf.length * 2)).fill(-1);
      grown.set(this.#rowOf);
      this.#rowOf = grown;
    }
    this.#rowOf[atomId] = row;
  }

  #grow(): void {
    const buffer = this.#matrix.buffer as ResizableArrayBuffer;
    const maxRows = buffer.resizable ? buffer.maxByteLength / (this.dim * 4) : Infinity;
    let capacity = this.#rowAtoms.length * 2;
    if (buffer.resizable && this.#rowAtoms.length < maxRows) {
      // In place, by at most GROW_BYTES at a time: V8 answers a large jump in external memory
      // with a full, stop-the-world collection of the whole heap (hundreds of ms at a million atoms).
      capacity = Math.min(capacity, maxRows, this.#rowAtoms.length + Math.max(1, Math.floor(GROW_BYTES / (this.dim * 4))));
    }
    let matrix = this.#matrix;
    if (buffer.resizable && capacity * this.dim * 4 <= buffer.maxByteLength) {
      buffer.resize(capacity * this.dim * 4); // in place: rows already there keep their address
    } else {
      matrix = new Float32Array(capacity * this.dim);
      matrix.set(this.#matrix);
    }
    const rowTypes = new Uint16Array(capacity).fill(REMOVED);
    rowTypes.set(this.#rowTypes);
    const rowAtoms = new Int32Array(capacity).fill(-1);
    rowAtoms.set(this.#rowAtoms);
    this.#matrix = matrix;
    this.#rowTypes = rowTypes;
    this.#rowAtoms = rowAtoms;
  }
}
