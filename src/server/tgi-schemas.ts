/**
 * Request and response schemas of text-generation-inference's and text-embeddings-inference's
 * own routes (POST /, /generate, /generate_stream, GET /info), as their OpenAPI documents give
 * them. Parameters this server cannot honour are accepted at their no-op values only (see
 * tgi-generate.ts); `model` is this server's extension (TGI and TEI serve one model).
 */
import { type Static, type TSchema, Type } from 'typebox';

const nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

const Model = Type.Optional(Type.String({ minLength: 1, description: 'this server’s extension: the model to use (default: see the route)' }));

export const TgiParameters = Type.Object(
  {
    max_new_tokens: Type.Optional(nullable(Type.Integer({ minimum: 1, description: 'default 100 (TGI’s), within MAX_NEW_TOKENS and the model’s context' }))),
    do_sample: Type.Optional(Type.Boolean({ description: 'sample; also implied by temperature ≠ 1, top_k or top_p < 1, as in TGI' })),
    temperature: Type.Optional(nullable(Type.Number({ exclusiveMinimum: 0, maximum: 100 }))),
    top_k: Type.Optional(nullable(Type.Integer({ minimum: 1 }))),
    top_p: Type.Optional(nullable(Type.Number({ exclusiveMinimum: 0, maximum: 1 }))),
    seed: Type.Optional(nullable(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }))),
    stop: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { maxItems: 8, description: 'stop sequences; as in TGI the generated text keeps the one that stopped it' })),
    return_full_text: Type.Optional(nullable(Type.Boolean({ description: 'prepend the prompt to generated_text' }))),
    details: Type.Optional(Type.Boolean({ description: 'add finish_reason, generated_tokens, seed and the tokens with their log-probabilities' })),
    decoder_input_details: Type.Optional(Type.Boolean({ description: 'false only: prompt log-probabilities are not computed (400 when true)' })),
    truncate: Type.Optional(nullable(Type.Integer({ minimum: 1, description: 'keep only the prompt’s last N tokens' }))),
    best_of: Type.Optional(nullable(Type.Integer({ minimum: 1, description: '1 only (400 beyond)' }))),
    repetition_penalty: Type.Optional(nullable(Type.Number({ exclusiveMinimum: 0, description: '1 only (no penalty; 400 otherwise)' }))),
    frequency_penalty: Type.Optional(nullable(Type.Number({ description: '0 only (no penalty; 400 otherwise)' }))),
    typical_p: Type.Optional(nullable(Type.Number({ exclusiveMinimum: 0, maximum: 1, description: '1 only (400 below)' }))),
    top_n_tokens: Type.Optional(nullable(Type.Integer({ minimum: 0, description: '0 only (400 above)' }))),
    watermark: Type.Optional(Type.Boolean({ description: 'false only (400 when true)' })),
    grammar: Type.Optional(nullable(Type.Object({ type: Type.String(), value: Type.Unknown() }, { description: 'null only: guided generation is not supported (400 otherwise)' }))),
    adapter_id: Type.Optional(nullable(Type.String({ description: 'null only: there are no LoRA adapters (400 otherwise)' }))),
  },
  { additionalProperties: false },
);
export type TgiParameters = Static<typeof TgiParameters>;

export const TgiRequest = Type.Object(
  {
    inputs: Type.String({ minLength: 1, description: 'the prompt' }),
    parameters: Type.Optional(TgiParameters),
    stream: Type.Optional(Type.Boolean({ description: 'POST /: answer with Server-Sent Events as /generate_stream does; ignored by /generate and /generate_stream' })),
    model: Model,
  },
  { title: 'TGI generate request', additionalProperties: false, examples: [{ inputs: 'Once upon a time', parameters: { max_new_tokens: 16, details: true } }] },
);
export type TgiRequest = Static<typeof TgiRequest>;

/** TEI's embedding options; huggingface_hub's feature_extraction sends them under `parameters`. */
const teiOptions = {
  normalize: Type.Optional(nullable(Type.Boolean({ description: 'default true' }))),
  truncate: Type.Optional(nullable(Type.Boolean({ description: 'cut texts longer than the model allows, at the end (default false: 400)' }))),
  truncation_direction: Type.Optional(nullable(Type.Union([Type.Literal('right'), Type.Literal('Right'), Type.Literal('left'), Type.Literal('Left')], { description: 'right only (400 for left)' }))),
  prompt_name: Type.Optional(nullable(Type.String({ description: 'null only: no prompts are configured (400 otherwise)' }))),
  dimensions: Type.Optional(nullable(Type.Integer({ minimum: 1, description: 'keep the first N dimensions, then re-normalise' }))),
};
export const TEI_OPTIONS = Object.keys(teiOptions);

export const TeiRequest = Type.Object(
  {
    inputs: Type.Union([Type.String(), Type.Array(Type.String(), { minItems: 1 })]),
    ...teiOptions,
    parameters: Type.Optional(Type.Object({ ...teiOptions, encoding_format: Type.Optional(nullable(Type.Literal('float'))) }, { additionalProperties: false })),
    model: Model,
  },
  { title: 'TEI embed request', additionalProperties: false, examples: [{ inputs: ['hello world', 'a second sentence'] }] },
);
export type TeiRequest = Static<typeof TeiRequest>;

const Token = Type.Object({
  id: Type.Integer(),
  text: Type.String(),
  logprob: Type.Union([Type.Number(), Type.Null()], { description: 'log softmax of the model’s logits (temperature 1, before any filtering)' }),
  special: Type.Boolean({ description: 'true for the EOS token that ended the generation' }),
});

const FinishReason = Type.Union([Type.Literal('length'), Type.Literal('eos_token'), Type.Literal('stop_sequence')]);
const Seed = Type.Union([Type.Integer(), Type.Null()], { description: 'the seed sampling used (null when greedy)' });

export const TgiResponse = Type.Object({
  generated_text: Type.String(),
  details: Type.Optional(
    Type.Object({
      finish_reason: FinishReason,
      generated_tokens: Type.Integer({ description: 'the tokens generated, the EOS that ended it included (as TGI counts)' }),
      seed: Seed,
      prefill: Type.Array(Type.Object({ id: Type.Integer(), text: Type.String(), logprob: Type.Union([Type.Number(), Type.Null()]) }), { description: 'always empty: decoder_input_details is not supported' }),
      tokens: Type.Array(Token),
    }),
  ),
});
export type TgiResponse = Static<typeof TgiResponse>;

export const TgiStreamEvent = Type.Object(
  {
    index: Type.Integer({ description: 'the token’s position, from 1' }),
    token: Token,
    generated_text: Type.Union([Type.String(), Type.Null()], { description: 'the whole text, on the last event only' }),
    details: Type.Union(
      [Type.Object({ finish_reason: FinishReason, generated_tokens: Type.Integer(), seed: Seed, input_length: Type.Integer() }), Type.Null()],
      { description: 'on the last event with `details: true`' },
    ),
  },
  { description: 'one `data:` event per token (text/event-stream)' },
);

export const TgiError = Type.Object({
  error: Type.String({ description: 'what went wrong' }),
  error_type: Type.String({ description: 'TGI’s kind of error: validation, overloaded, generation' }),
  code: Type.String({ description: 'this server’s machine-readable code, as every route has it' }),
  limit: Type.Optional(Type.String({ description: 'with LIMIT_EXCEEDED: the setting that was exceeded' })),
});

export const TgiInfo = Type.Object(
  {
    model_id: Type.String(),
    model_sha: Type.Union([Type.String(), Type.Null()]),
    model_dtype: Type.String(),
    model_device_type: Type.String(),
    model_pipeline_tag: Type.String({ description: 'text-generation or feature-extraction' }),
    max_concurrent_requests: Type.Integer({ description: 'requests that may wait for the model (MAX_QUEUE_SIZE) before 429' }),
    max_client_batch_size: Type.Integer(),
    version: Type.String(),
    router: Type.String(),
    sha: Type.Null(),
    docker_label: Type.Null(),
    // text-generation-inference
    max_best_of: Type.Optional(Type.Integer()),
    max_stop_sequences: Type.Optional(Type.Integer()),
    max_input_tokens: Type.Optional(Type.Integer()),
    max_input_length: Type.Optional(Type.Integer()),
    max_total_tokens: Type.Optional(Type.Integer()),
    max_batch_total_tokens: Type.Optional(Type.Integer()),
    max_batch_size: Type.Optional(Type.Integer()),
    // text-embeddings-inference
    model_type: Type.Optional(Type.Object({ embedding: Type.Object({ pooling: Type.String() }) })),
    max_batch_tokens: Type.Optional(Type.Integer()),
    max_batch_requests: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
    auto_truncate: Type.Optional(Type.Boolean()),
    tokenization_workers: Type.Optional(Type.Integer()),
  },
  { description: 'TGI’s /info for a text-generation model, TEI’s for an embedding model (the fields of both are listed)' },
);
export type TgiInfo = Static<typeof TgiInfo>;
