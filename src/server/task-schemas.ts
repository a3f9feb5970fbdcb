/** Request and response schemas of the task-shaped /infer bodies and the TEI / OpenAI routes. */
import { Type, type Static } from 'typebox';


const Texts = Type.Union([Type.String(), Type.Array(Type.String(), { minItems: 1 })]);

export const EmbeddingInfer = Type.Object(
  {
    model: Type.String({ minLength: 1 }),
    text: Texts,
    normalize: Type.Optional(Type.Boolean({ description: "L2-normalise (default: the model's manifest)" })),
    truncate: Type.Optional(Type.Boolean({ description: 'cut texts longer than the model allows (default false: 400)' })),
    dimensions: Type.Optional(Type.Integer({ minimum: 1, description: 'keep the first N dimensions (Matryoshka), then re-normalise' })),
  },
  { title: 'embedding request', additionalProperties: false, examples: [{ model: 'demo-embedder', text: ['hello world', 'a second sentence'] }] },
);
export type EmbeddingInfer = Static<typeof EmbeddingInfer>;

export const GenerationInfer = Type.Object(
  {
    model: Type.String({ minLength: 1 }),
    text: Type.String({ minLength: 1 }),
    max_new_tokens: Type.Integer({ minimum: 1, description: 'at most MAX_NEW_TOKENS (default 1024)' }),
    temperature: Type.Optional(Type.Number({ minimum: 0, maximum: 100, description: '0 or absent: greedy' })),
    top_k: Type.Optional(Type.Integer({ minimum: 0 })),
    top_p: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1 })),
    seed: Type.Optional(Type.Integer()),
    stop: Type.Optional(Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { maxItems: 8 })])),
    stream: Type.Optional(Type.Boolean({ description: 'send tokens as Server-Sent Events' })),
  },
  { title: 'text-generation request', additionalProperties: false, examples: [{ model: 'demo-gpt2', text: 'Once upon a time', max_new_tokens: 16 }] },
);
export type GenerationInfer = Static<typeof GenerationInfer>;

const Image = Type.String({ minLength: 1, description: 'base64 image bytes or a data: URL (PNG, JPEG, WebP, …)' });

export const ClassificationInfer = Type.Object(
  { model: Type.String({ minLength: 1 }), image: Image, top_k: Type.Optional(Type.Integer({ minimum: 1 })) },
  { title: 'image-classification request', additionalProperties: false },
);
export type ClassificationInfer = Static<typeof ClassificationInfer>;

export const DetectionInfer = Type.Object(
  { model: Type.String({ minLength: 1 }), image: Image, threshold: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })) },
  { title: 'object-detection request', additionalProperties: false },
);
export type DetectionInfer = Static<typeof DetectionInfer>;

export const EmbeddingResponse = Type.Object({
  model: Type.String(),
  embeddings: Type.Array(Type.Array(Type.Number())),
  usage: Type.Object({ tokens: Type.Integer() }),
});

export const GenerationResponse = Type.Object({
  model: Type.String(),
  text: Type.String(),
  tokens: Type.Integer({ description: 'tokens generated' }),
  token_ids: Type.Array(Type.Integer()),
  finish_reason: Type.Union([Type.Literal('stop'), Type.Literal('length'), Type.Literal('eos')]),
  usage: Type.Object({ prompt_tokens: Type.Integer(), completion_tokens: Type.Integer() }),
});

export const ClassificationResponse = Type.Object({
  model: Type.String(),
  labels: Type.Array(Type.Object({ label: Type.String(), score: Type.Number() })),
});

export const DetectionResponse = Type.Object({
  model: Type.String(),
  detections: Type.Array(
    Type.Object({
      label: Type.String(),
      score: Type.Number(),
      box: Type.Object({ xmin: Type.Number(), ymin: Type.Number(), xmax: Type.Number(), ymax: Type.Number() }),
    }),
  ),
});

// TEI-style
export const TeiEmbed = Type.Object(
  {
    inputs: Texts,
    normalize: Type.Optional(Type.Boolean({ default: true })),
    truncate: Type.Optional(Type.Boolean()),
    dimensions: Type.Optional(Type.Integer({ minimum: 1 })),
    model: Type.Optional(Type.String({ description: 'default: EMBED_MODEL or the first embedding model' })),
  },
  { additionalProperties: false, examples: [{ inputs: ['hello world', 'a second sentence'] }] },
);
export type TeiEmbed = Static<typeof TeiEmbed>;

export const TeiTokenize = Type.Object(
  { inputs: Texts, add_special_tokens: Type.Optional(Type.Boolean({ default: true })), model: Type.Optional(Type.String()) },
  { additionalProperties: false, examples: [{ inputs: 'hello world' }] },
);
export type TeiTokenize = Static<typeof TeiTokenize>;

export const TeiToken = Type.Object({ id: Type.Integer(), text: Type.String(), special: Type.Boolean(), start: Type.Integer(), stop: Type.Integer() });

// OpenAI-compatible
const TokenIds = Type.Array(Type.Integer({ minimum: 0 }), { minItems: 1 });
export const OpenAiEmbeddings = Type.Object(
  {
    input: Type.Union([Texts, TokenIds, Type.Array(TokenIds, { minItems: 1 })], {
      description: 'a text, texts, or token ids (an array of ints, or one array per input), as OpenAI accepts; ids are checked against the model’s vocabulary and used as given (no special tokens added)',
    }),
    model: Type.String({ minLength: 1 }),
    encoding_format: Type.Optional(Type.Union([Type.Literal('float'), Type.Literal('base64')])),
    dimensions: Type.Optional(Type.Integer({ minimum: 1 })),
    user: Type.Optional(Type.String()),
  },
  { additionalProperties: false, examples: [{ model: 'demo-embedder', input: ['hello world', 'a second sentence'] }] },
);
export type OpenAiEmbeddings = Static<typeof OpenAiEmbeddings>;

export const OpenAiEmbeddingsResponse = Type.Object({
  object: Type.Literal('list'),
  data: Type.Array(Type.Object({ object: Type.Literal('embedding'), index: Type.Integer(), embedding: Type.Union([Type.Array(Type.Number()), Type.String()]) })),
  model: Type.String(),
  usage: Type.Object({ prompt_tokens: Type.Integer(), total_tokens: Type.Integer() }),
});

export const OpenAiError = Type.Object({
  error: Type.Object({
    message: Type.String(),
    type: Type.String(),
    param: Type.Union([Type.String(), Type.Null()], { description: 'with LIMIT_EXCEEDED: the setting that was exceeded' }),
    code: Type.Union([Type.String(), Type.Null()]),
  }),
  code: Type.String({ description: 'the same code, where every route has it' }),
});
