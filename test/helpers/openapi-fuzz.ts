/**
 * Property-based fuzzing driven by the served OpenAPI spec: every operation in it gets
 * requests built from its own schemas (so new routes are covered without changes here),
 * then mutated into adversarial ones: wrong types, huge numbers, deep nesting, unicode and
 * lone surrogates, NaN-like strings, empty and oversized arrays, shapes whose product
 * overflows, base64 that is not an image, images of extreme sizes, broken JSON, odd headers,
 * query strings and path parameters. fast-check generates them from a seed, so a failure
 * is reproducible from (seed, index).
 *
 * `checkResponse` is the pass rule: no 5xx, and every 4xx is JSON with `error` and `code`.
 */
import { Agent, request } from 'node:http';

import fc from 'fast-check';

export interface FuzzRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  payload?: string | Buffer;
  /** The operation it was built from, e.g. "POST /atoms/{id}". */
  operation: string;
  /** Whether the body asked for a deadline (parameters.timeout): a 504 is then the documented answer. */
  askedDeadline: boolean;
}

export interface FuzzResponse {
  statusCode: number;
  headers: Record<string, string | string[] | number | undefined>;
  body: string;
}

type Schema = Record<string, unknown> & {
  type?: string | string[];
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  anyOf?: Schema[];
  oneOf?: Schema[];
  enum?: unknown[];
  const?: unknown;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minItems?: number;
  maxItems?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  nullable?: boolean;
};

interface Operation {
  method: string;
  path: string;
  pathParams: { name: string; schema: Schema }[];
  query: { name: string; schema: Schema }[];
  body?: Schema;
  contentTypes: string[];
}

export interface FuzzWorld {
  /** Model names in the repository under test. */
  models: string[];
  /** Images, by what they are (valid PNG, 1x1, sliver, too many pixels, truncated...). */
  images: Buffer[];
  /** Atom types to draw from (valid and not). */
  atomTypes: string[];
  /** Largest atom id likely to exist (ids are drawn from 1..this and a few beyond). */
  maxAtomId: number;
  /** The model a request body of this schema title is for, e.g. 'embedding request' -> 'demo-embedder'. */
  modelFor: Record<string, string>;
  /** The model that paths taking a model name or a raw-tensor body should usually name. */
  defaultModel: string;
}

/** Where a value is being generated: the operation's path, and the model its body is for. */
interface Where {
  path: string;
  model?: string;
}

/** Every operation of an OpenAPI 3 document. */
export function operationsOf(spec: { paths: Record<string, Record<string, unknown>> }): Operation[] {
  const out: Operation[] = [];
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const [method, raw] of Object.entries(item)) {
      if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
      const op = raw as { parameters?: { name: string; in: string; schema: Schema }[]; requestBody?: { content?: Record<string, { schema: Schema; example?: unknown }> } };
      const content = op.requestBody?.content ?? {};
      // The spec moves a body's own example up to the media type; put it back on the schema.
      const json = content['application/json'];
      if (json && json.example !== undefined) json.schema = { ...json.schema, examples: [json.example] };
      out.push({
        method: method.toUpperCase(),
        path,
        pathParams: (op.parameters ?? []).filter((p) => p.in === 'path').map((p) => ({ name: p.name, schema: p.schema })),
        query: (op.parameters ?? []).filter((p) => p.in === 'query').map((p) => ({ name: p.name, schema: p.schema })),
        ...(content['application/json'] ? { body: content['application/json'].schema } : {}),
        contentTypes: Object.keys(content),
      });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Adversarial values

function deepNest(depth: number, leaf: unknown, asObject: boolean): unknown {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = asObject ? { a: v } : [v];
  return v;
}

const NASTY_STRINGS = [
  '',
  ' ',
  'NaN',
  'Infinity',
  '-Infinity',
  '-0',
  '1e309',
  'null',
  'undefined',
  'true',
  '0x10',
  '\u0000',
  '\uD800',
  '\uDFFF\uD800',
  '\uFEFF',
  '\u202E\u0627\u0644\u0639\u0631\u0628\u064A\u0629',
  '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 🤖👩‍👩‍👧‍👦',
  'Z͑ͫ̓ͪ̂ͫ̽͏̴̙̤̞͉͚̯̞̠͍A̴̵̜̰͔ͫ͗͢L̠ͨͧͩ͘G̴̻͈͍͔̹̑͗̎̅͛́Ǫ̵̹̻̝̳͂̌̌͘',
  '../../../../etc/passwd',
  '%2e%2e%2f%2e%2e%2f',
  '<script>alert(1)</script>',
  "'; DROP TABLE atoms; --",
  '__proto__',
  'constructor',
  '${jndi:ldap://x}',
  'a'.repeat(5000),
  '\n\r\t',
];

const NASTY_NUMBERS = [0, -0, -1, 1, 0.5, -0.5, 1e308, -1e308, 5e-324, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 53 + 2, -(2 ** 53), 2 ** 63, 1e21, 123456789.123];

/** A value of any JSON type, often nasty. */
function nastyValue(): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...NASTY_STRINGS) },
    { weight: 3, arbitrary: fc.constantFrom(...NASTY_NUMBERS) },
    { weight: 1, arbitrary: fc.constantFrom(null, true, false, [], {}, [[]], [null], { '': null }) },
    { weight: 1, arbitrary: fc.constantFrom(JSON.parse('{"__proto__": {"polluted": 1}}') as unknown, { constructor: { prototype: { polluted: 1 } } }, { toString: 1, valueOf: 'x' }) },
    { weight: 1, arbitrary: fc.integer({ min: 10, max: 3000 }).chain((d) => fc.constantFrom(deepNest(d, 1, false), deepNest(d, 'x', true))) },
    { weight: 1, arbitrary: fc.constantFrom(new Array(10_000).fill(1), new Array(2000).fill('x'), new Array(300).fill({ a: [1, 2, 3] })) },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
    { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  );
}

// ---------------------------------------------------------------------------------------------
// Schema -> arbitrary, with hints for fields whose realistic values matter

const SENTENCES = ['hello world', 'the quick brown fox jumps over the lazy dog', 'a', 'models turn text into vectors', 'ünïcödé and émoji 🤖', '   padded   '];

function text(): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...SENTENCES) },
    { weight: 2, arbitrary: fc.string({ minLength: 1, maxLength: 60 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }) },
    { weight: 1, arbitrary: fc.constantFrom('word '.repeat(400), 'x'.repeat(20_000)) },
  );
}

/** A raw tensor for the embedder's inputs, sometimes subtly wrong. */
function tokenTensors(): fc.Arbitrary<unknown[]> {
  return fc.record({ n: fc.integer({ min: 1, max: 24 }), rows: fc.integer({ min: 1, max: 3 }), seed: fc.integer({ min: 5, max: 900 }) }).map(({ n, rows, seed }) => {
    const ids = Array.from({ length: rows * n }, (_, i) => (seed + i * 7) % 1000);
    return [
      { name: 'input_ids', shape: [rows, n], datatype: 'INT64', data: ids },
      { name: 'attention_mask', shape: [rows, n], datatype: 'INT64', data: new Array(rows * n).fill(1) },
      { name: 'token_type_ids', shape: [rows, n], datatype: 'INT64', data: new Array(rows * n).fill(0) },
    ];
  });
}

function shape(): fc.Arbitrary<number[]> {
  return fc.oneof(
    fc.array(fc.integer({ min: 0, max: 8 }), { minLength: 0, maxLength: 4 }),
    fc.constantFrom<number[][]>([2 ** 31, 2 ** 31, 2 ** 31], [2 ** 53, 2 ** 53], [65536, 65536, 65536, 65536], [0, 1e9], [1, 1e308], [-1, 4], [1.5, 2]),
  );
}

function fromSchema(schema: Schema | undefined, world: FuzzWorld, where: Where, key = '', depth = 0): fc.Arbitrary<unknown> {
  if (!schema || depth > 6) return fc.jsonValue({ maxDepth: 2 });
  const title = typeof schema.title === 'string' ? schema.title : '';
  if (world.modelFor[title]) where = { ...where, model: world.modelFor[title] };
  const hinted = hint(key, schema, world, where);
  if (hinted) return hinted;
  const examples = Array.isArray(schema.examples) ? (schema.examples as unknown[]) : [];
  if (examples.length) {
    // The spec's own examples are valid requests: start from them a third of the time.
    return fc.oneof({ weight: 1, arbitrary: fc.constantFrom(...examples) }, { weight: 2, arbitrary: fromSchema({ ...schema, examples: [] }, world, where, key, depth) });
  }
  if (schema.const !== undefined) return fc.constant(schema.const);
  if (schema.enum) return fc.constantFrom(...schema.enum);
  const alternatives = schema.anyOf ?? schema.oneOf;
  if (alternatives) return fc.oneof(...alternatives.map((s) => fromSchema(s, world, where, key, depth + 1)));
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  switch (type) {
    case 'object': {
      const props = schema.properties ?? {};
      const required = new Set(schema.required ?? []);
      const shape: Record<string, fc.Arbitrary<unknown>> = {};
      for (const [name, sub] of Object.entries(props)) shape[name] = fromSchema(sub, world, where, name, depth + 1);
      if (Object.keys(shape).length === 0) return fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 });
      return fc.record(shape, { requiredKeys: [...required].filter((k) => k in shape) });
    }
    case 'array': {
      const min = schema.minItems ?? 0;
      const max = Math.min(schema.maxItems ?? 6, Math.max(min, 6));
      return fc.array(fromSchema(schema.items, world, where, key, depth + 1), { minLength: min, maxLength: max });
    }
    case 'string':
      if (schema.pattern) return fc.stringMatching(new RegExp(schema.pattern)).filter((s) => s.length <= (schema.maxLength ?? 1000) && s.length >= (schema.minLength ?? 0));
      return fc.string({ minLength: schema.minLength ?? 0, maxLength: Math.min(schema.maxLength ?? 30, 60) });
    case 'integer': {
      const min = schema.minimum ?? (schema.exclusiveMinimum !== undefined ? schema.exclusiveMinimum + 1 : -5);
      return fc.integer({ min: Math.max(min, -1e6), max: Math.min(schema.maximum ?? min + 50, 1e6) });
    }
    case 'number':
      return fc.double({ min: schema.minimum ?? -10, max: schema.maximum ?? 10, noNaN: true, noDefaultInfinity: true });
    case 'boolean':
      return fc.boolean();
    default:
      return fc.jsonValue({ maxDepth: 2 });
  }
}

/** Realistic values for fields whose meaning the schema does not carry. */
function hint(key: string, schema: Schema, world: FuzzWorld, where: Where): fc.Arbitrary<unknown> | undefined {
  const usual = where.model ?? (/embed|tokenize|similar|atoms/.test(where.path) ? world.defaultModel : undefined);
  const model = fc.oneof(
    { weight: usual ? 12 : 0, arbitrary: fc.constant(usual ?? '') },
    { weight: 6, arbitrary: fc.constantFrom(...world.models) },
    { weight: 1, arbitrary: fc.constantFrom('no-such-model', '../demo-embedder', '') },
  );
  const images = fc.constantFrom(...world.images).chain((b) => fc.constantFrom(b.toString('base64'), `data:image/png;base64,${b.toString('base64')}`));
  const atomId = fc.oneof({ weight: 9, arbitrary: fc.integer({ min: 1, max: world.maxAtomId }) }, { weight: 1, arbitrary: fc.constantFrom(0, -1, 2 ** 31, 2 ** 53) });
  const isArray = schema.type === 'array';
  switch (key) {
    case 'model':
      return model;
    case 'text':
    case 'inputs':
    case 'input':
      if (key === 'inputs' && isArray && schema.items?.properties?.datatype) {
        return fc.oneof({ weight: 3, arbitrary: tokenTensors() }, { weight: 1, arbitrary: fc.array(fromSchema(schema.items, world, where, 'tensor', 1), { minLength: 1, maxLength: 3 }) });
      }
      if (schema.type === 'string') return text();
      return fc.oneof(text(), fc.array(text(), { minLength: 1, maxLength: 5 }), fc.constantFrom(new Array(300).fill('x'), []));
    case 'image':
      return fc.oneof({ weight: 8, arbitrary: images }, { weight: 1, arbitrary: fc.constantFrom('aGVsbG8gd29ybGQ=', 'not base64 at all!', 'data:image/png;base64,', 'data:,', '====') });
    case 'shape':
      return shape();
    case 'outputs':
      return fc.constantFrom([{ name: 'last_hidden_state' }], [{ name: 'logits' }], [{ name: 'pred_boxes' }, { name: 'logits' }], [{ name: 'no-such-output' }], []);
    case 'datatype':
      return fc.constantFrom('INT64', 'FP32', 'FP16', 'BF16', 'BOOL', 'UINT8', 'INT8', 'INT32', 'FP64', 'FP128', 'BYTES', '');
    case 'data':
      return fc.oneof(fc.array(fc.double({ noNaN: true }), { maxLength: 16 }), fc.array(fc.array(fc.integer(), { maxLength: 4 }), { maxLength: 4 }), fc.array(fc.boolean(), { maxLength: 8 }));
    case 'type':
      return fc.constantFrom(...world.atomTypes);
    case 'outgoing':
      return fc.array(atomId, { minLength: 0, maxLength: 4 });
    case 'atom':
    case 'id':
      return atomId;
    case 'embedding':
      return fc.oneof(
        fc.integer({ min: 1, max: 64 }).chain((n) => fc.array(fc.double({ min: -1, max: 1, noNaN: true }), { minLength: n, maxLength: n })),
        fc.constantFrom([0, 0, 0, 0], new Array(384).fill(0.01), new Array(70_000).fill(0)),
      );
    case 'space':
      return fc.constantFrom('default', ...world.models, 'no-such-space', 'bad space/name');
    case 'k':
    case 'limit':
      return fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 1, max: 20 }) }, { weight: 1, arbitrary: fc.constantFrom(0, 1001, 10_001, 2 ** 31, 1e15) });
    case 'max_new_tokens':
      return fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 1, max: 8 }) }, { weight: 1, arbitrary: fc.constantFrom(0, 64, 1025, 1e9) });
    case 'timeout':
      return fc.oneof(fc.integer({ min: 1, max: 100 }), fc.integer({ min: 1000, max: 10_000_000 }));
    case 'dimensions':
      return fc.oneof(fc.integer({ min: 1, max: 64 }), fc.constantFrom(0, 100_000));
    case 'name':
      // An atom's name or a tensor's; path {name} is handled by pathValue.
      return fc.oneof(fc.constantFrom('input_ids', 'attention_mask', 'token_type_ids', 'cat', 'dog'), fc.string({ minLength: 1, maxLength: 20 }));
    default:
      return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Mutations

type Json = unknown;

/** Replace a random node of `value`, drop a key, or add an unknown one. */
function mutate(value: Json): fc.Arbitrary<Json> {
  const paths: (string | number)[][] = [];
  const walk = (v: Json, path: (string | number)[]) => {
    paths.push(path);
    if (paths.length > 200) return;
    if (Array.isArray(v)) v.slice(0, 5).forEach((x, i) => walk(x, [...path, i]));
    else if (v && typeof v === 'object') for (const k of Object.keys(v)) walk((v as Record<string, Json>)[k], [...path, k]);
  };
  walk(value, []);
  return fc.tuple(fc.constantFrom(...paths), fc.constantFrom('replace', 'replace', 'replace', 'drop', 'extra'), nastyValue()).map(([path, how, nasty]) => {
    const copy = structuredClone(value);
    if (path.length === 0) return how === 'replace' ? nasty : copy;
    let parent = copy as Record<string | number, Json>;
    for (const step of path.slice(0, -1)) parent = parent[step] as Record<string | number, Json>;
    const last = path[path.length - 1]!;
    if (how === 'drop') {
      if (Array.isArray(parent)) parent.splice(last as number, 1);
      else delete parent[last];
    } else if (how === 'extra' && !Array.isArray(parent)) {
      parent['unexpected_field'] = nasty;
    } else {
      parent[last] = nasty;
    }
    return copy;
  });
}

/** Raw bodies that are not the JSON they claim to be. */
const BROKEN_BODIES: (string | Buffer)[] = [
  '',
  '{',
  '{"model": ',
  '[]',
  'null',
  '"just a string"',
  '1e999',
  '{"model": "demo-embedder", "text": "a"}}',
  '{"a":1,"a":2}',
  Buffer.from([0xff, 0xfe, 0x00, 0x7b]),
  Buffer.from('{"text": "\\ud800"}'),
  '{"__proto__": {"admin": true}, "model": "demo-embedder", "text": "x"}',
  '[' + '['.repeat(20_000) + ']'.repeat(20_000) + ']',
  '{"text": "' + 'x'.repeat(100_000) + '"}',
];

const CONTENT_TYPES = ['application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=xyz', 'application/octet-stream', 'image/png', 'application/json; charset=latin1', ''];

/** Percent-encoding that also writes lone surrogates, as the invalid UTF-8 bytes a careless client would send. */
function pct(s: string): string {
  try {
    return encodeURIComponent(s);
  } catch {
    return [...s].map((c) => (/[\uD800-\uDFFF]/.test(c) ? '%ED%A0%80' : encodeURIComponent(c))).join('');
  }
}

function pathValue(name: string, world: FuzzWorld, path: string): fc.Arbitrary<string> {
  const models = path.endsWith('/infer') ? fc.oneof({ weight: 3, arbitrary: fc.constant(world.defaultModel) }, { weight: 1, arbitrary: fc.constantFrom(...world.models) }) : fc.constantFrom(...world.models);
  const good = name === 'id' && !path.startsWith('/v1/models') ? fc.integer({ min: 1, max: world.maxAtomId }).map(String) : name === 'version' ? fc.constantFrom('1', '1', '1', '2', '0', '-1', '01', '99') : models;
  return fc.oneof(
    { weight: 6, arbitrary: good },
    {
      weight: 2,
      arbitrary: fc.constantFrom('..', '.', '%2e%2e', '..%2F..%2Fetc%2Fpasswd', '%00', 'a'.repeat(300), '-1', '0', '1e3', '9007199254740993', '1.5', 'NaN', '%F0%9F%A4%96', '%E2%80%AE', '%', 'name%20with%20space', '~', '%252e%252e'),
    },
    { weight: 1, arbitrary: fc.string({ minLength: 1, maxLength: 12 }).map(pct) },
  );
}

function queryString(op: Operation, world: FuzzWorld): fc.Arbitrary<string> {
  const pairs = fc.array(
    fc.oneof(
      ...(op.query.length ? [fc.constantFrom(...op.query).chain((q) => fc.oneof(fromSchema(q.schema, world, { path: op.path }, q.name).map(String), fc.constantFrom(...NASTY_STRINGS)).map((v) => [q.name, v] as const))] : []),
      fc.tuple(fc.constantFrom('x', 'limit', 'recursive', 'type', 'name', 'k', '__proto__', 'a[b]'), fc.constantFrom(...NASTY_STRINGS)),
    ),
    { maxLength: 4 },
  );
  return pairs.map((ps) => (ps.length ? '?' + ps.map(([k, v]) => `${pct(k)}=${pct(v)}`).join('&') : ''));
}

function headers(op: Operation): fc.Arbitrary<Record<string, string>> {
  return fc
    .record(
      {
        ct: fc.oneof({ weight: 9, arbitrary: fc.constant('application/json') }, { weight: 1, arbitrary: fc.constantFrom(...CONTENT_TYPES) }),
        accept: fc.constantFrom('application/json', '*/*', 'text/event-stream', 'text/html', 'image/png'),
        auth: fc.constantFrom('', 'Bearer ', 'Bearer wrong', 'Basic Zm9vOmJhcg==', 'Bearer ' + 'x'.repeat(4000)),
        id: fc.constantFrom('', 'fuzz-1', 'x'.repeat(500), '../../etc', '<script>'),
        extra: fc.constantFrom('', 'x-forwarded-for', 'transfer-encoding', 'content-encoding'),
      },
      { requiredKeys: ['ct'] },
    )
    .map((h) => {
      const out: Record<string, string> = {};
      if (op.body || h.ct !== 'application/json') out['content-type'] = h.ct;
      if (h.accept) out.accept = h.accept;
      if (h.auth) out.authorization = h.auth;
      if (h.id) out['x-request-id'] = h.id;
      if (h.extra === 'x-forwarded-for') out['x-forwarded-for'] = '1.2.3.4, ::1, nonsense';
      if (h.extra === 'content-encoding') out['content-encoding'] = 'gzip';
      return out;
    });
}

/** How a binary-extension body is made wrong, or 'exact' / 'binary-out' for a well-formed one. */
const BINARY_FLAWS = ['exact', 'exact', 'binary-out', 'binary-out', 'header-longer', 'header-shorter', 'header-not-a-number', 'size-off-by-one', 'truncated', 'extra-bytes', 'no-header', 'json-content-type'] as const;

/** One tensor's `data` as the extension's bytes: little-endian, row-major, BYTES as 4-byte length + bytes. */
function tensorBytesOf(datatype: unknown, data: unknown): Buffer {
  const flat = (Array.isArray(data) ? data.flat(8) : [data]) as unknown[];
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : typeof v === 'boolean' ? Number(v) : 0);
  const write = (size: number, put: (b: Buffer, v: number, at: number) => void) => {
    const b = Buffer.alloc(size * flat.length);
    flat.forEach((v, i) => put(b, num(v), i * size));
    return b;
  };
  switch (datatype) {
    case 'INT64':
      return write(8, (b, v, at) => b.writeBigInt64LE(BigInt(Math.trunc(Math.max(-(2 ** 62), Math.min(2 ** 62, v)))), at));
    case 'INT32':
      return write(4, (b, v, at) => b.writeInt32LE(Math.trunc(Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, v))), at));
    case 'FP32':
      return write(4, (b, v, at) => b.writeFloatLE(v, at));
    case 'FP64':
      return write(8, (b, v, at) => b.writeDoubleLE(v, at));
    case 'FP16':
    case 'BF16':
      return write(2, (b, v, at) => b.writeUInt16LE(Math.abs(Math.trunc(v)) & 0xffff, at));
    case 'BOOL':
    case 'UINT8':
    case 'INT8':
      return write(1, (b, v, at) => b.writeUInt8(Math.abs(Math.trunc(v)) & 0xff, at));
    case 'BYTES':
      return Buffer.concat(flat.map((v) => {
        const s = Buffer.from(String(v), 'utf8');
        const n = Buffer.alloc(4);
        n.writeUInt32LE(s.byteLength);
        return Buffer.concat([n, s]);
      }));
    default:
      return Buffer.from(flat.map((v) => num(v) & 0xff));
  }
}

/**
 * The binary tensor data extension's form of an infer body (Triton's extension_binary_data):
 * some inputs' data moved after the JSON header as bytes, and sometimes a flaw that the server
 * must answer with a 400 (a header length past the body, sizes that do not match, no header).
 */
function binaryVariant(valid: unknown): fc.Arbitrary<{ payload: Buffer; headers: Record<string, string> }> | undefined {
  const inputs = (valid as { inputs?: unknown })?.inputs;
  if (!Array.isArray(inputs) || !inputs.some((t) => t && typeof t === 'object' && 'data' in t)) return undefined;
  return fc.record({ which: fc.array(fc.boolean(), { minLength: inputs.length, maxLength: inputs.length }), flaw: fc.constantFrom(...BINARY_FLAWS) }).map(({ which, flaw }) => {
    const body = structuredClone(valid) as { inputs: Record<string, unknown>[]; parameters?: Record<string, unknown> };
    const chunks: Buffer[] = [];
    body.inputs.forEach((t, i) => {
      if (!t || typeof t !== 'object' || !('data' in t) || (!which[i] && i > 0)) return;
      const bytes = tensorBytesOf(t.datatype, t.data);
      delete t.data;
      t.parameters = { ...(typeof t.parameters === 'object' && t.parameters ? t.parameters : {}), binary_data_size: bytes.byteLength + (flaw === 'size-off-by-one' && chunks.length === 0 ? 1 : 0) };
      chunks.push(bytes);
    });
    if (flaw === 'binary-out') body.parameters = { ...(body.parameters ?? {}), binary_data_output: true };
    const header = Buffer.from(JSON.stringify(body), 'utf8');
    let payload = Buffer.concat([header, ...chunks]);
    if (flaw === 'truncated') payload = payload.subarray(0, Math.max(header.byteLength, payload.byteLength - 3));
    if (flaw === 'extra-bytes') payload = Buffer.concat([payload, Buffer.from([1, 2, 3, 4, 5])]);
    const length = flaw === 'header-longer' ? payload.byteLength + 10 : flaw === 'header-shorter' ? header.byteLength - 3 : header.byteLength;
    const headers: Record<string, string> = { 'content-type': flaw === 'json-content-type' ? 'application/json' : 'application/octet-stream' };
    if (flaw !== 'no-header') headers['inference-header-content-length'] = flaw === 'header-not-a-number' ? '12abc' : String(length);
    return { payload, headers };
  });
}

/** Requests for one operation: mostly schema-shaped, often mutated, sometimes raw garbage. */
function requestsFor(op: Operation, world: FuzzWorld): fc.Arbitrary<FuzzRequest> {
  const params = op.pathParams.length ? fc.tuple(...op.pathParams.map((p) => pathValue(p.name, world, op.path))) : fc.constant([] as string[]);
  const binary = op.contentTypes.includes('application/octet-stream');
  const body: fc.Arbitrary<{ payload?: string | Buffer; asked: boolean; headers?: Record<string, string> }> = op.body
    ? fromSchema(op.body, world, { path: op.path }).chain((valid) => {
        const json = fc.oneof(
          { weight: 5, arbitrary: fc.constant(valid) },
          { weight: 3, arbitrary: mutate(valid) },
          { weight: 1, arbitrary: fc.constant(undefined) },
        ).chain((v) =>
          fc.oneof(
            { weight: 9, arbitrary: fc.constant(v === undefined ? undefined : JSON.stringify(v)) },
            { weight: 1, arbitrary: fc.constantFrom(...BROKEN_BODIES) },
          ),
        ).map((payload) => ({ ...(payload !== undefined ? { payload } : {}), asked: typeof payload === 'string' && /"timeout"\s*:/.test(payload) }));
        const asBinary = binary ? binaryVariant(valid) : undefined;
        // Routes that take the binary tensor extension get a third of their bodies in it.
        return asBinary ? fc.oneof({ weight: 2, arbitrary: json }, { weight: 1, arbitrary: asBinary.map((b) => ({ ...b, asked: /"timeout"\s*:/.test(b.payload.toString('latin1')) })) }) : json;
      })
    : fc.oneof({ weight: 9, arbitrary: fc.constant({ asked: false }) }, { weight: 1, arbitrary: fc.constantFrom(...BROKEN_BODIES).map((payload) => ({ payload, asked: false })) });
  const method = fc.oneof({ weight: 19, arbitrary: fc.constant(op.method) }, { weight: 1, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS') });
  return fc.record({ params, query: queryString(op, world), body, headers: headers(op), method }).map(({ params, query, body, headers, method }) => {
    let i = 0;
    const path = op.path.replace(/\{[^}]+\}/g, () => params[i++] ?? 'x');
    return {
      method,
      url: path + query,
      headers: body.headers ? { ...headers, ...body.headers } : headers,
      ...(body.payload !== undefined && method !== 'GET' ? { payload: body.payload } : {}),
      operation: `${op.method} ${op.path}`,
      askedDeadline: body.asked,
    };
  });
}

/** An arbitrary over every operation of the spec, each equally likely. */
export function requestArbitrary(spec: { paths: Record<string, Record<string, unknown>> }, world: FuzzWorld, skip: (op: string) => boolean = () => false): fc.Arbitrary<FuzzRequest> {
  const ops = operationsOf(spec).filter((op) => !skip(`${op.method} ${op.path}`));
  // Operations whose bodies have more shapes get more requests: /infer's five bodies, a node or a link.
  const weight = (op: Operation) => 1 + (op.body ? 1 + (op.body.anyOf ?? op.body.oneOf ?? []).length : 0);
  return fc.oneof(...ops.map((op) => ({ weight: weight(op), arbitrary: requestsFor(op, world) })));
}

/** Why a response breaks the rules, or undefined when it is fine. */
export function checkResponse(request: FuzzRequest, response: FuzzResponse): string | undefined {
  const status = response.statusCode;
  const type = String(response.headers['content-type'] ?? '');
  if (status >= 500) {
    // A deadline the client set itself, passed while queued, is Triton's documented 504.
    if (status === 504 && request.askedDeadline && /DEADLINE_EXCEEDED/.test(response.body)) return undefined;
    return `${status} ${response.body.slice(0, 300)}`;
  }
  // The fuzzer always waits for its answer: a 499 (client went away) is the server's mistake.
  if (status === 499) return `499 although the client was still waiting: ${response.body.slice(0, 200)}`;
  if (status >= 400) {
    if (!type.startsWith('application/json')) return `${status} with content-type '${type}': ${response.body.slice(0, 200)}`;
    let body: { error?: unknown; code?: unknown };
    try {
      body = JSON.parse(response.body) as typeof body;
    } catch {
      return `${status} body is not JSON: ${response.body.slice(0, 200)}`;
    }
    const message = typeof body.error === 'string' ? body.error : (body.error as { message?: unknown } | undefined)?.message;
    if (typeof message !== 'string' || message === '') return `${status} without an error message: ${response.body.slice(0, 200)}`;
    if (typeof body.code !== 'string' || body.code === '') return `${status} without a code: ${response.body.slice(0, 200)}`;
    if (/\n\s+at .+\(.+:\d+:\d+\)/.test(message)) return `${status} leaks a stack trace: ${message.slice(0, 200)}`;
  }
  return undefined;
}

export function describeRequest(r: FuzzRequest): string {
  const payload = r.payload === undefined ? '' : typeof r.payload === 'string' ? r.payload : `<${r.payload.length} bytes>`;
  return `${r.method} ${r.url.slice(0, 200)} [${r.operation}] ${JSON.stringify(r.headers).slice(0, 200)} ${payload.slice(0, 400)}`;
}

/** Send fuzz requests to 127.0.0.1:port over node:http (raw bytes and odd headers as given). */
export function httpSender(port: number, sockets = 8): { send(r: FuzzRequest): Promise<FuzzResponse>; close(): void } {
  const agent = new Agent({ keepAlive: true, maxSockets: sockets });
  const send = (r: FuzzRequest) =>
    new Promise<FuzzResponse>((resolve, reject) => {
      const body = r.payload === undefined ? undefined : Buffer.isBuffer(r.payload) ? r.payload : Buffer.from(r.payload);
      const headers: Record<string, string | number> = { ...r.headers };
      if (body) headers['content-length'] = body.length;
      const req = request({ host: '127.0.0.1', port, method: r.method, path: r.url, headers, agent, timeout: 60_000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error('no answer in 60 s')));
      req.on('error', reject);
      req.end(body);
    });
  return { send, close: () => agent.destroy() };
}
