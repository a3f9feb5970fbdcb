/** The AtomSpace over HTTP: create, read, update, delete atoms, and find similar ones. */
import type { FastifyInstance } from 'fastify';
import { type Static, Type } from 'typebox';

import type { Atom, EmbeddingInput } from '../../atomspace/atomspace.js';
import { enforce } from '../../models/limits.js';
import { embed } from '../../models/tasks/embedding.js';
import type { ServerContext } from '../context.js';
import { HttpError } from '../http-errors.js';
import { ErrorResponse } from '../schemas.js';

const Tv = Type.Object({ strength: Type.Number({ minimum: 0, maximum: 1 }), confidence: Type.Number({ minimum: 0, maximum: 1 }) }, { additionalProperties: false });
const Av = Type.Object({ sti: Type.Optional(Type.Number()), lti: Type.Optional(Type.Number()) }, { additionalProperties: false });
const SpaceName = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]*$' });

const NodeBody = Type.Object(
  {
    type: Type.String({ description: 'a node type, e.g. ConceptNode' }),
    name: Type.String({ minLength: 1, maxLength: 4096 }),
    tv: Type.Optional(Tv),
    embedding: Type.Optional(Type.Array(Type.Number(), { minItems: 1, maxItems: 65536, description: 'a vector for `space` (default "default")' })),
    space: Type.Optional(SpaceName),
    text: Type.Optional(Type.String({ minLength: 1, description: 'embedded by `model` into the space named after the model' })),
    model: Type.Optional(Type.String({ minLength: 1 })),
  },
  {
    additionalProperties: false,
    title: 'node',
    examples: [
      { type: 'ConceptNode', name: 'cat', text: 'a small cat', model: 'demo-embedder' },
      { type: 'ConceptNode', name: 'dog', embedding: [0.1, 0.7, -0.2, 0.4], space: 'toy', tv: { strength: 0.9, confidence: 0.8 } },
    ],
  },
);
const LinkBody = Type.Object(
  { type: Type.String({ description: 'a link type, e.g. InheritanceLink' }), outgoing: Type.Array(Type.Integer({ minimum: 1 }), { minItems: 1, maxItems: 1024 }), tv: Type.Optional(Tv) },
  { additionalProperties: false, title: 'link', examples: [{ type: 'InheritanceLink', outgoing: [1, 2], tv: { strength: 1, confidence: 0.9 } }] },
);
const AtomBody = Type.Union([NodeBody, LinkBody]);
type NodeBody = Static<typeof NodeBody>;
type LinkBody = Static<typeof LinkBody>;

const AtomJson = Type.Object({
  id: Type.Integer(),
  type: Type.String(),
  name: Type.Optional(Type.String()),
  outgoing: Type.Optional(Type.Array(Type.Integer())),
  tv: Type.Object({ strength: Type.Number(), confidence: Type.Number() }),
  av: Type.Object({ sti: Type.Number(), lti: Type.Number() }),
  embeddings: Type.Array(Type.String(), { description: 'spaces in which the atom has a vector' }),
});

const SimilarBody = Type.Object(
  {
    text: Type.Optional(Type.String({ minLength: 1 })),
    model: Type.Optional(Type.String({ minLength: 1 })),
    embedding: Type.Optional(Type.Array(Type.Number(), { minItems: 1, maxItems: 65536 })),
    atom: Type.Optional(Type.Integer({ minimum: 1 })),
    space: Type.Optional(SpaceName),
    k: Type.Optional(Type.Integer({ minimum: 1, default: 10, description: 'at most MAX_K (default 1000)' })),
    type: Type.Optional(Type.String()),
    threshold: Type.Optional(Type.Number({ minimum: -1, maximum: 1 })),
    mode: Type.Optional(Type.Union([Type.Literal('auto'), Type.Literal('exact'), Type.Literal('approximate')])),
  },
  { additionalProperties: false, examples: [{ text: 'a small cat', model: 'demo-embedder', k: 5 }] },
);
type SimilarBody = Static<typeof SimilarBody>;

const IdParams = Type.Object({ id: Type.Integer({ minimum: 1 }) });
const errors = { 400: ErrorResponse, 401: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse, 503: ErrorResponse };

export async function atomRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  const { atomspace, similarity } = ctx;
  const show = (atom: Atom) => ({ ...atom, embeddings: atomspace.spacesOf(atom.id) });

  /** Embed the texts of node bodies, grouped by model, in batches the embedding task accepts. */
  async function embeddingsFor(nodes: NodeBody[]): Promise<(EmbeddingInput | undefined)[]> {
    const out: (EmbeddingInput | undefined)[] = nodes.map((n) => {
      if (n.text !== undefined && n.embedding !== undefined) throw new HttpError(400, 'BAD_ATOM', 'give either text (with model) or embedding, not both');
      if (n.text !== undefined && !n.model) throw new HttpError(400, 'BAD_ATOM', 'text needs the model that embeds it');
      if (n.model && n.text === undefined) throw new HttpError(400, 'BAD_ATOM', 'model is only used with text');
      return n.embedding ? { space: n.space ?? 'default', model: null, vector: n.embedding } : undefined;
    });
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

  async function add(bodies: (NodeBody | LinkBody)[]) {
    const nodes = bodies.filter((b): b is NodeBody => 'name' in b);
    const vectors = await embeddingsFor(nodes);
    const vectorOf = new Map(nodes.map((n, i) => [n, vectors[i]]));
    return atomspace.addBatch(
      bodies.map((b) => {
        if ('outgoing' in b) return { link: { type: b.type, outgoing: b.outgoing, ...(b.tv ? { tv: b.tv } : {}) } };
        const v = vectorOf.get(b);
        return { node: { type: b.type, name: b.name, ...(b.tv ? { tv: b.tv } : {}), ...(v ? { embeddings: [v] } : {}) } };
      }),
    );
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
        body: Type.Object(
          { atoms: Type.Array(AtomBody, { minItems: 1, description: 'at most MAX_ATOMS_PER_BATCH (default 10000)' }) },
          { additionalProperties: false, examples: [{ atoms: [{ type: 'ConceptNode', name: 'animal' }, { type: 'ConceptNode', name: 'mammal', text: 'a warm-blooded animal', model: 'demo-embedder' }] }] },
        ),
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
        response: {
          200: Type.Object({ space: Type.String(), results: Type.Array(Type.Object({ atom: Type.Object({ id: Type.Integer(), type: Type.String(), name: Type.Optional(Type.String()) }), score: Type.Number() })) }),
          ...errors,
        },
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
        vector = b.embedding;
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
