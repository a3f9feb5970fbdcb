/** TypeBox schemas of the AtomSpace routes: they validate requests and generate the OpenAPI spec. */
import { type Static, Type } from 'typebox';

const Tv = Type.Object({ strength: Type.Number({ minimum: 0, maximum: 1 }), confidence: Type.Number({ minimum: 0, maximum: 1 }) }, { additionalProperties: false });
export const Av = Type.Object({ sti: Type.Optional(Type.Number()), lti: Type.Optional(Type.Number()) }, { additionalProperties: false });
export { Tv };
const SpaceName = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]*$' });

/** A vector: numbers, or base64 of little-endian float32 (what OpenAI's `encoding_format: "base64"` returns). */
export const Vector = Type.Union(
  [
    Type.Array(Type.Number(), { minItems: 1, maxItems: 65536 }),
    Type.String({ minLength: 4, maxLength: 349528, contentEncoding: 'base64', description: 'base64 of little-endian float32 values' }),
  ],
  { description: 'numbers, or base64 of little-endian float32 values' },
);

export const NodeBody = Type.Object(
  {
    type: Type.String({ description: 'a node type, e.g. ConceptNode' }),
    name: Type.String({ minLength: 1, maxLength: 4096 }),
    tv: Type.Optional(Tv),
    embedding: Type.Optional(Type.Union(Vector.anyOf, { description: 'a vector for `space` (default "default"): numbers, or base64 of little-endian float32' })),
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
      { type: 'ConceptNode', name: 'fox', embedding: 'zczMPTMzMz+amZk+zczMPg==', space: 'toy' },
    ],
  },
);
export const LinkBody = Type.Object(
  { type: Type.String({ description: 'a link type, e.g. InheritanceLink' }), outgoing: Type.Array(Type.Integer({ minimum: 1 }), { minItems: 1, maxItems: 1024 }), tv: Type.Optional(Tv) },
  { additionalProperties: false, title: 'link', examples: [{ type: 'InheritanceLink', outgoing: [1, 2], tv: { strength: 1, confidence: 0.9 } }] },
);
export const AtomBody = Type.Union([NodeBody, LinkBody]);
export type NodeBody = Static<typeof NodeBody>;
export type LinkBody = Static<typeof LinkBody>;

export const AtomJson = Type.Object({
  id: Type.Integer(),
  type: Type.String(),
  name: Type.Optional(Type.String()),
  outgoing: Type.Optional(Type.Array(Type.Integer())),
  tv: Type.Object({ strength: Type.Number(), confidence: Type.Number() }),
  av: Type.Object({ sti: Type.Number(), lti: Type.Number() }),
  embeddings: Type.Array(Type.String(), { description: 'spaces in which the atom has a vector' }),
});

export const BatchBody = Type.Object(
  { atoms: Type.Array(AtomBody, { minItems: 1, description: 'at most MAX_ATOMS_PER_BATCH (default 10000)' }) },
  { additionalProperties: false, examples: [{ atoms: [{ type: 'ConceptNode', name: 'animal' }, { type: 'ConceptNode', name: 'mammal', text: 'a warm-blooded animal', model: 'demo-embedder' }] }] },
);

export const SimilarBody = Type.Object(
  {
    text: Type.Optional(Type.String({ minLength: 1 })),
    model: Type.Optional(Type.String({ minLength: 1 })),
    embedding: Type.Optional(Vector),
    atom: Type.Optional(Type.Integer({ minimum: 1 })),
    space: Type.Optional(SpaceName),
    k: Type.Optional(Type.Integer({ minimum: 1, default: 10, description: 'at most MAX_K (default 1000)' })),
    type: Type.Optional(Type.String()),
    threshold: Type.Optional(Type.Number({ minimum: -1, maximum: 1 })),
    mode: Type.Optional(Type.Union([Type.Literal('auto'), Type.Literal('exact'), Type.Literal('approximate')])),
  },
  { additionalProperties: false, examples: [{ text: 'a small cat', model: 'demo-embedder', k: 5 }, { embedding: 'zczMPTMzMz+amZk+zczMPg==', space: 'toy', k: 3, mode: 'exact' }] },
);
export type SimilarBody = Static<typeof SimilarBody>;

export const SimilarResponse = Type.Object({
  space: Type.String(),
  results: Type.Array(Type.Object({ atom: Type.Object({ id: Type.Integer(), type: Type.String(), name: Type.Optional(Type.String()) }), score: Type.Number() })),
});

export const ImportQuery = Type.Object({
  group: Type.Optional(Type.Integer({ minimum: 1, description: 'lines per durable group commit (default 1000, at most MAX_ATOMS_PER_BATCH)' })),
  ids: Type.Optional(Type.Boolean({ default: false, description: 'answer the atom id of every line' })),
});

const LineError = Type.Object({ line: Type.Integer({ description: '1-based line number' }), error: Type.String(), code: Type.String() });

export const ImportReport = Type.Object(
  {
    lines: Type.Integer({ description: 'lines read' }),
    created: Type.Integer(),
    existing: Type.Integer({ description: 'lines naming an atom already there' }),
    failed: Type.Integer({ description: 'bad lines (skipped)' }),
    groups: Type.Integer({ description: 'durable group commits made' }),
    errors: Type.Array(LineError, { description: 'the first 1000 bad lines' }),
    ids: Type.Optional(Type.Array(Type.Union([Type.Integer(), Type.Null()]), { description: 'with ids=true: the atom of every line (null: blank or bad)' })),
    stopped: Type.Optional(Type.Object({ line: Type.Integer(), error: Type.String(), code: Type.String() }, { description: 'the journal could not be written: lines before `line` are committed, none from it on' })),
  },
  { description: 'what the import did, line by line' },
);

export const ImportFailure = Type.Object(
  { error: Type.String(), code: Type.String(), report: ImportReport },
  { description: 'the journal could not be written (STORAGE_UNAVAILABLE): `report.stopped.line` is the first line not committed' },
);
