/**
 * The AtomSpace over HTTP: create, read, update, delete atoms, import many (NDJSON), and find
 * similar ones. Vectors come as numbers or as base64 of little-endian float32.
 */
import { endianness } from 'node:os';
import type { Readable } from 'node:stream';

import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { Compile } from 'typebox/compile';

import type { Atom, EmbeddingInput } from '../../atomspace/atomspace.js';
import { type ImportEntry, type ImportItem, importAtoms } from '../../atomspace/bulk-import.js';
import { enforce, LimitError } from '../../models/limits.js';
import { embed } from '../../models/tasks/embedding.js';
import { AtomBody, AtomJson, Av, BatchBody, ImportFailure, ImportQuery, ImportReport, LinkBody, NodeBody, SimilarBody, SimilarResponse, Tv } from '../atom-schemas.js';
import type { ServerContext } from '../context.js';
import { HttpError } from '../http-errors.js';
import { type NdjsonLine, ndjsonLines } from '../ndjson.js';
import { ErrorResponse } from '../schemas.js';

const BIG_ENDIAN = endianness() === 'BE';

/** A vector given as numbers, or as base64 of little-endian float32 values. */
export function vectorOf(value: number[] | string, what: string): ArrayLike<number> {
  if (typeof value !== 'string') return value;
  const bytes = Buffer.from(value, 'base64');
  // Node's decoder skips what is not base64 and stops at '=': a clean string decodes to exactly this many bytes.
  const padding = value.endsWith('==') ? 2 : value.endsWith('=') ? 1 : 0;
  if (value.length % 4 !== 0 || bytes.length !== (value.length / 4) * 3 - padding) {
    throw new HttpError(400, 'BAD_EMBEDDING', `${what} is neither an array of numbers nor base64 (A-Z a-z 0-9 + /, padded with = to a multiple of 4 characters)`);
  }
  if (bytes.length === 0 || bytes.length % 4 !== 0) throw new HttpError(400, 'BAD_EMBEDDING', `${what} decodes to ${bytes.length} bytes, not a whole number of float32 values (4 bytes each)`);
  const out = new Float32Array(bytes.length / 4);
  if (BIG_ENDIAN) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  } else {
    new Uint8Array(out.buffer).set(bytes);
  }
  return out;
}

const checkNode = Compile(NodeBody);
const checkLink = Compile(LinkBody);

const IdParams = Type.Object({ id: Type.Integer({ minimum: 1 }) });
const errors = { 400: ErrorResponse, 401: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse, 503: ErrorResponse };

export async function atomRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  const { atomspace, similarity } = ctx;
  const show = (atom: Atom) => ({ ...atom, embeddings: atomspace.spacesOf(atom.id) });

  // Kept in PostgreSQL that cannot be reached now: reads are answered from memory, which says how stale it may be.
  app.addHook('onSend', async (_request, reply) => {
    const store = atomspace.storeStatus();
    if (store && !store.connected) void reply.header('x-atomspace-stale-seconds', store.staleSeconds.toFixed(1));
  });

  /** The vector a node body gives (checking text/model/embedding go together). */
  function givenVector(n: NodeBody): EmbeddingInput | undefined {
    if (n.text !== undefined && n.embedding !== undefined) throw new HttpError(400, 'BAD_ATOM', 'give either text (with model) or embedding, not both');
    if (n.text !== undefined && !n.model) throw new HttpError(400, 'BAD_ATOM', 'text needs the model that embeds it');
    if (n.model && n.text === undefined) throw new HttpError(400, 'BAD_ATOM', 'model is only used with text');
    return n.embedding !== undefined ? { space: n.space ?? 'default', model: null, vector: vectorOf(n.embedding, 'embedding') } : undefined;
  }

  /** Embed the texts of node bodies, grouped by model, in batches the embedding task accepts. */
  async function embeddingsFor(nodes: NodeBody[]): Promise<(EmbeddingInput | undefined)[]> {
    const out: (EmbeddingInput | undefined)[] = nodes.map(givenVector);
    const byModel = new Map<string, number[]>();
    nodes.forEach((n, i) => n.text !== undefined && byModel.set(n.model!, [...(byModel.get(n.model!) ?? []), i]));
    for (const [model, indices] of byModel) {
      for (let start = 0; start < indices.length; start += ctx.config.maxTextsPerRequest) {
        const chunk = indices.slice(start, start + ctx.config.maxTextsPerRequest);
        const { embeddings } = await embed(ctx.tasks, model, chunk.map((i) => nodes[i]!.text!), { truncate: true });
        chunk.forEach((i, j) => (out[i] = { space: nodes[i]!.space ?? model, model, vector: embeddings[j]! }));
      }
    }
    return out;
  }

  /** Bodies as AtomSpace items, texts embedded. */
  async function itemsOf(bodies: (NodeBody | LinkBody)[]): Promise<ImportItem[]> {
    const nodes = bodies.filter((b): b is NodeBody => 'name' in b);
    return asItems(bodies, nodes, await embeddingsFor(nodes));
  }

  /** Bodies without texts as AtomSpace items. */
  function itemsNow(bodies: (NodeBody | LinkBody)[]): ImportItem[] {
    const nodes = bodies.filter((b): b is NodeBody => 'name' in b);
    return asItems(bodies, nodes, nodes.map((n) => givenVector(n)));
  }

  function asItems(bodies: (NodeBody | LinkBody)[], nodes: NodeBody[], vectors: (EmbeddingInput | undefined)[]): ImportItem[] {
    const vectorOfNode = new Map(nodes.map((n, i) => [n, vectors[i]]));
    return bodies.map((b) => {
      if ('outgoing' in b) return { link: { type: b.type, outgoing: b.outgoing, ...(b.tv ? { tv: b.tv } : {}) } };
      const v = vectorOfNode.get(b);
      return { node: { type: b.type, name: b.name, ...(b.tv ? { tv: b.tv } : {}), ...(v ? { embeddings: [v] } : {}) } };
    });
  }

  async function add(bodies: (NodeBody | LinkBody)[]) {
    return atomspace.addBatch(await itemsOf(bodies));
  }

  /** NDJSON lines as import entries: each parsed, checked against the atom schema, its vector decoded or its text embedded. */
  async function* importEntries(stream: AsyncIterable<Buffer>): AsyncGenerator<ImportEntry[]> {
    for await (const lines of ndjsonLines(stream, ctx.config.bodyLimit)) {
      const entries: ImportEntry[] = [];
      for (const l of lines) entries.push(await importEntry(l));
      yield entries;
    }
  }

  async function importEntry(l: NdjsonLine): Promise<ImportEntry> {
    if ('tooLong' in l) return { line: l.line, error: `the line is ${l.tooLong} bytes, more than BODY_LIMIT (${ctx.config.bodyLimit} bytes)`, code: 'LIMIT_EXCEEDED' };
    let value: unknown;
    try {
      value = JSON.parse(l.text);
    } catch (error) {
      return { line: l.line, error: `the line is not JSON: ${(error as Error).message}`, code: 'BAD_JSON' };
    }
    const schema = value !== null && typeof value === 'object' && 'outgoing' in value ? checkLink : checkNode;
    if (!schema.Check(value)) {
      const first = schema.Errors(value)[0];
      return { line: l.line, error: `the line is not an atom (a node or a link as for POST /atoms): ${first ? `${first.instancePath || '/'} ${first.message}` : 'invalid'}`, code: 'BAD_ATOM' };
    }
    try {
      const body = value as NodeBody | LinkBody;
      // Texts need the model (async); everything else converts at once.
      const [item] = 'text' in body && body.text !== undefined ? await itemsOf([body]) : itemsNow([body]);
      return { line: l.line, item: item! };
    } catch (error) {
      const e = error as { message?: string; code?: string };
      return { line: l.line, error: e.message ?? String(error), code: e.code ?? 'BAD_ATOM' };
    }
  }

  app.post(
    '/atoms',
    {
      schema: {
        tags: ['atomspace'],
        summary: 'Add a node or a link (an existing one is returned)',
        description: 'Node `{type, name, tv?, embedding?, space?}` or `{type, name, text, model}` (the model embeds the text into the space named after it); link `{type, outgoing: [ids], tv?}`. 201 when created, 200 when it existed. Acknowledged once on disk.',
        body: AtomBody,
        response: { 200: AtomJson, 201: AtomJson, ...errors },
      },
    },
    async (request, reply) => {
      const [result] = await add([request.body as NodeBody | LinkBody]);
      return reply.status(result!.created ? 201 : 200).send(show(result!.atom));
    },
  );

  app.post(
    '/atoms/batch',
    {
      schema: {
        tags: ['atomspace'],
        summary: 'Add many atoms in one durable commit',
        description: 'Items are added in order; a link may name atoms added earlier in the batch once their ids are known (send those in an earlier batch). Nothing is added when any item is invalid.',
        body: BatchBody,
        response: { 200: Type.Object({ atoms: Type.Array(Type.Object({ atom: AtomJson, created: Type.Boolean() })) }), ...errors },
      },
    },
    async (request) => {
      const { atoms } = request.body as { atoms: (NodeBody | LinkBody)[] };
      enforce(ctx.config, 'maxAtomsPerBatch', atoms.length, 'the number of atoms');
      const results = await add(atoms);
      return { atoms: results.map((r) => ({ atom: show(r.atom), created: r.created })) };
    },
  );

  // NDJSON reaches the import route as a stream: it is read line by line, so BODY_LIMIT bounds a line, not the import.
  app.addContentTypeParser('application/x-ndjson', (_request, payload, done) => done(null, payload));

  app.post(
    '/atoms/import',
    {
      schema: {
        tags: ['atomspace'],
        summary: 'Import atoms from NDJSON (one per line), in durable groups',
        description: [
          'The body is `application/x-ndjson`: one atom per line, as for `POST /atoms` (vectors as numbers or base64 of little-endian float32), of any total size.',
          'Each line is checked on its own: a bad line is reported (`errors`: line, error, code) and skipped. The good lines are committed in groups of `group` lines,',
          'each one durable commit that lands whole or not at all. When the journal cannot be written the import stops with 503: `report.stopped.line` is the first line not committed.',
          'A link may name atoms of earlier groups (ask for `ids=true` to learn them).',
        ].join(' '),
        consumes: ['application/x-ndjson'],
        querystring: ImportQuery,
        response: { 200: ImportReport, 400: ErrorResponse, 401: ErrorResponse, 415: ErrorResponse, 503: ImportFailure },
      },
    },
    async (request, reply) => {
      const body = request.body as Readable | null;
      if (!body || typeof (body as { pipe?: unknown }).pipe !== 'function') {
        throw new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', 'send the atoms as application/x-ndjson: one JSON atom (as for POST /atoms) per line');
      }
      const query = request.query as { group?: number; ids?: boolean };
      const groupSize = query.group ?? Math.min(1000, ctx.config.maxAtomsPerBatch);
      enforce(ctx.config, 'maxAtomsPerBatch', groupSize, 'group', 400);
      // Stopping early must not destroy the stream: the 503 goes out, then the rest of the body is drained (early-answer.ts).
      const report = await importAtoms(atomspace, importEntries(body.iterator({ destroyOnReturn: false })), { groupSize, ids: query.ids ?? false });
      if (report.stopped) {
        return reply
          .status(503)
          .header('retry-after', '5')
          .send({ error: `${report.stopped.error}; lines before ${report.stopped.line} are committed`, code: 'STORAGE_UNAVAILABLE', report });
      }
      return report;
    },
  );

  app.get(
    '/atoms',
    {
      schema: {
        tags: ['atomspace'],
        summary: 'Find atoms by type (subtypes included) and name',
        querystring: Type.Object({
          type: Type.Optional(Type.String()),
          name: Type.Optional(Type.String()),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000, default: 100 })),
          offset: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
        }),
        response: { 200: Type.Object({ atoms: Type.Array(AtomJson), total: Type.Integer() }), ...errors },
      },
    },
    async (request) => {
      const q = request.query as { type?: string; name?: string; limit?: number; offset?: number };
      const { atoms, total } = atomspace.find(q);
      return { atoms: atoms.map(show), total };
    },
  );

  app.get('/atoms/:id', { schema: { tags: ['atomspace'], summary: 'One atom', params: IdParams, response: { 200: AtomJson, ...errors } } }, async (request) =>
    show(atomspace.require((request.params as { id: number }).id)),
  );

  app.get(
    '/atoms/:id/incoming',
    { schema: { tags: ['atomspace'], summary: 'Links that contain the atom', params: IdParams, response: { 200: Type.Object({ atoms: Type.Array(AtomJson) }), ...errors } } },
    async (request) => ({ atoms: atomspace.incoming((request.params as { id: number }).id).map(show) }),
  );

  app.patch(
    '/atoms/:id',
    {
      schema: {
        tags: ['atomspace'],
        summary: 'Update truth value and/or attention values',
        params: IdParams,
        body: Type.Object({ tv: Type.Optional(Tv), av: Type.Optional(Av) }, { additionalProperties: false, examples: [{ tv: { strength: 0.8, confidence: 0.6 }, av: { sti: 10 } }] }),
        response: { 200: AtomJson, ...errors },
      },
    },
    async (request) => show(await atomspace.update((request.params as { id: number }).id, request.body as { tv?: { strength: number; confidence: number }; av?: { sti?: number; lti?: number } })),
  );

  app.delete(
    '/atoms/:id',
    {
      schema: {
        tags: ['atomspace'],
        summary: 'Remove an atom (refused while links contain it, unless recursive=true)',
        params: IdParams,
        querystring: Type.Object({ recursive: Type.Optional(Type.Boolean({ default: false })) }),
        response: { 200: Type.Object({ removed: Type.Array(Type.Integer()) }), ...errors },
      },
    },
    async (request) => ({
      removed: await atomspace.remove((request.params as { id: number }).id, (request.query as { recursive?: boolean }).recursive ?? false),
    }),
  );

  app.post(
    '/atoms/similar',
    {
      config: { write: false },
      schema: {
        tags: ['atomspace'],
        summary: 'Nearest atoms to a text, a vector or an atom',
        description: 'One of `{text, model}`, `{embedding, space?}` or `{atom, space?}`; `k` (default 10), `type` (subtypes included), `threshold` (minimum cosine), `mode` (auto, exact, approximate). Scores are cosine similarities.',
        body: SimilarBody,
        response: { 200: SimilarResponse, ...errors },
      },
    },
    async (request) => {
      const b = request.body as SimilarBody;
      const given = [b.text !== undefined, b.embedding !== undefined, b.atom !== undefined].filter(Boolean).length;
      if (given !== 1) throw new HttpError(400, 'BAD_QUERY', 'give exactly one of {text, model}, {embedding} or {atom}');
      enforce(ctx.config, 'maxK', b.k ?? 10, 'k', 400);
      let space: string;
      let vector: ArrayLike<number>;
      let exclude: number | undefined;
      if (b.text !== undefined) {
        if (!b.model) throw new HttpError(400, 'BAD_QUERY', 'text needs the model that embeds it');
        space = b.space ?? b.model;
        vector = (await embed(ctx.tasks, b.model, [b.text], { truncate: true })).embeddings[0]!;
      } else if (b.embedding !== undefined) {
        space = b.space ?? 'default';
        vector = vectorOf(b.embedding, 'embedding');
      } else {
        atomspace.require(b.atom!);
        const spaces = atomspace.spacesOf(b.atom!);
        space = b.space ?? spaces[0] ?? '';
        const v = atomspace.embedding(b.atom!, space);
        if (!v) throw new HttpError(400, 'BAD_QUERY', `atom ${b.atom} has no vector${b.space ? ` in space '${b.space}'` : ''} (it has: ${spaces.join(', ') || 'none'})`);
        vector = v;
        exclude = b.atom;
      }
      const hits = await similarity.search({ space, vector, k: b.k ?? 10, ...(b.type ? { type: b.type } : {}), ...(b.threshold !== undefined ? { threshold: b.threshold } : {}), ...(exclude ? { exclude } : {}), ...(b.mode ? { mode: b.mode } : {}) });
      return {
        space,
        results: hits.map((h) => {
          const atom = atomspace.get(h.id);
          return { atom: { id: h.id, type: atom?.type ?? 'removed', ...(atom?.name !== undefined ? { name: atom.name } : {}) }, score: h.score };
        }),
      };
    },
  );
}
