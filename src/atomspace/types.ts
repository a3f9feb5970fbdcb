/**
 * The atom type hierarchy: Node and Link under Atom, the standard OpenCog types under them,
 * extensible by configuration. Each type has a small numeric code (embedding rows store it).
 */
export interface TypeDefinition {
  name: string;
  parent: string;
  /** Links only: outgoing order does not matter (SimilarityLink). */
  unordered?: boolean;
}

export const BUILTIN_TYPES: TypeDefinition[] = [
  { name: 'Node', parent: 'Atom' },
  { name: 'Link', parent: 'Atom' },
  { name: 'ConceptNode', parent: 'Node' },
  { name: 'PredicateNode', parent: 'Node' },
  { name: 'VariableNode', parent: 'Node' },
  { name: 'ListLink', parent: 'Link' },
  { name: 'InheritanceLink', parent: 'Link' },
  { name: 'EvaluationLink', parent: 'Link' },
  { name: 'MemberLink', parent: 'Link' },
  { name: 'SimilarityLink', parent: 'Link', unordered: true },
];

export class TypeError_ extends Error {
  readonly code = 'BAD_ATOM_TYPE';
}

export class TypeHierarchy {
  readonly #parent = new Map<string, string>();
  readonly #unordered = new Set<string>();
  readonly #codes = new Map<string, number>();
  readonly #names: string[] = [];

  constructor(extra: TypeDefinition[] = []) {
    this.#register('Atom', '');
    for (const def of [...BUILTIN_TYPES, ...extra]) this.define(def);
  }

  define(def: TypeDefinition): void {
    if (!/^[A-Z][A-Za-z0-9]*$/.test(def.name)) throw new TypeError_(`type name '${def.name}' must be CamelCase letters and digits`);
    if (this.#parent.has(def.name)) {
      if (this.#parent.get(def.name) !== def.parent) throw new TypeError_(`type '${def.name}' is already defined under '${this.#parent.get(def.name)}'`);
      return;
    }
    if (!this.#parent.has(def.parent)) throw new TypeError_(`type '${def.name}': unknown parent type '${def.parent}'`);
    if (def.parent === 'Atom' && def.name !== 'Node' && def.name !== 'Link') {
      throw new TypeError_(`type '${def.name}' must derive from Node or Link`);
    }
    this.#register(def.name, def.parent);
    if (def.unordered) {
      if (!this.isA(def.name, 'Link')) throw new TypeError_(`only links can be unordered ('${def.name}')`);
      this.#unordered.add(def.name);
    }
  }

  #register(name: string, parent: string): void {
    this.#parent.set(name, parent);
    this.#codes.set(name, this.#names.length);
    this.#names.push(name);
  }

  has(name: string): boolean {
    return this.#parent.has(name);
  }

  /** True when `type` is `ancestor` or derives from it. */
  isA(type: string, ancestor: string): boolean {
    for (let t: string | undefined = type; t; t = this.#parent.get(t)) if (t === ancestor) return true;
    return false;
  }

  isNode(type: string): boolean {
    return this.isA(type, 'Node') && type !== 'Node';
  }

  isLink(type: string): boolean {
    return this.isA(type, 'Link') && type !== 'Link';
  }

  isUnordered(type: string): boolean {
    for (let t: string | undefined = type; t; t = this.#parent.get(t)) if (this.#unordered.has(t)) return true;
    return false;
  }

  code(type: string): number {
    const code = this.#codes.get(type);
    if (code === undefined) throw new TypeError_(`unknown atom type '${type}'`);
    return code;
  }

  /** allowed[code] = 1 for `type` and every type under it. */
  mask(type: string): Uint8Array {
    const mask = new Uint8Array(this.#names.length);
    this.#names.forEach((name, code) => {
      if (this.isA(name, type)) mask[code] = 1;
    });
    return mask;
  }

  get names(): string[] {
    return [...this.#names];
  }

  parentOf(type: string): string | undefined {
    return this.#parent.get(type);
  }
}
