/** OpenAI-compatible request and response bodies: completions, chat completions, models. */
import { type Static, Type } from 'typebox';

const Stop = Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1, maxItems: 4 })], {
  description: 'up to 4 sequences; the text stops before the first one generated',
});

/** Sampling fields shared by completions and chat. */
const Sampling = {
  model: Type.String({ minLength: 1 }),
  max_tokens: Type.Optional(Type.Integer({ minimum: 1, description: 'tokens to generate (completions: default 16; chat: up to MAX_NEW_TOKENS and the context)' })),
  temperature: Type.Optional(Type.Number({ minimum: 0, maximum: 2, description: 'default 1 (as OpenAI); 0 is greedy, token-identical to transformers generate(do_sample=False)' })),
  top_p: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1 })),
  top_k: Type.Optional(Type.Integer({ minimum: 0, description: 'an extension (as vLLM): keep the k likeliest tokens; 0 for all' })),
  stop: Type.Optional(Stop),
  seed: Type.Optional(Type.Integer({ description: 'repeats a sampled answer; choice i uses seed + i' })),
  n: Type.Optional(Type.Integer({ minimum: 1, maximum: 8, description: 'choices per prompt (at most 8)' })),
  stream: Type.Optional(Type.Boolean()),
  stream_options: Type.Optional(Type.Object({ include_usage: Type.Optional(Type.Boolean()) }, { additionalProperties: false })),
  user: Type.Optional(Type.String()),
};

export const CompletionRequest = Type.Object(
  {
    ...Sampling,
    prompt: Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1, maxItems: 16 })]),
  },
  { additionalProperties: false, examples: [{ model: 'demo-gpt2', prompt: 'Once upon a time', max_tokens: 16, temperature: 0 }] },
);
export type CompletionRequest = Static<typeof CompletionRequest>;

const TextPart = Type.Object({ type: Type.Literal('text'), text: Type.String() }, { additionalProperties: false });
export const ChatMessageBody = Type.Object(
  {
    role: Type.String({ minLength: 1 }),
    content: Type.Union([Type.String(), Type.Array(TextPart, { minItems: 1 }), Type.Null()]),
    name: Type.Optional(Type.String()),
  },
  // Other fields (tool_call_id, tool_calls…) go to the chat template, which decides what it renders or refuses.
  { additionalProperties: true },
);

export const ChatCompletionRequest = Type.Object(
  {
    ...Sampling,
    messages: Type.Array(ChatMessageBody, { minItems: 1, maxItems: 256 }),
    max_completion_tokens: Type.Optional(Type.Integer({ minimum: 1, description: 'the same as max_tokens (OpenAI’s newer name)' })),
  },
  { additionalProperties: false, examples: [{ model: 'demo-gpt2', messages: [{ role: 'user', content: 'Hello!' }], max_tokens: 16 }] },
);
export type ChatCompletionRequest = Static<typeof ChatCompletionRequest>;

const FinishReason = Type.Union([Type.Literal('stop'), Type.Literal('length')]);
const Usage = Type.Object({ prompt_tokens: Type.Integer(), completion_tokens: Type.Integer(), total_tokens: Type.Integer() });

export const CompletionResponse = Type.Object({
  id: Type.String(),
  object: Type.Literal('text_completion'),
  created: Type.Integer(),
  model: Type.String(),
  choices: Type.Array(Type.Object({ text: Type.String(), index: Type.Integer(), logprobs: Type.Null(), finish_reason: FinishReason })),
  usage: Usage,
});

export const ChatCompletionResponse = Type.Object({
  id: Type.String(),
  object: Type.Literal('chat.completion'),
  created: Type.Integer(),
  model: Type.String(),
  choices: Type.Array(
    Type.Object({
      index: Type.Integer(),
      message: Type.Object({ role: Type.Literal('assistant'), content: Type.String() }),
      logprobs: Type.Null(),
      finish_reason: FinishReason,
    }),
  ),
  usage: Usage,
});

export const OpenAiModel = Type.Object({
  id: Type.String(),
  object: Type.Literal('model'),
  created: Type.Integer({ description: 'when the model folder was written (seconds since the epoch)' }),
  owned_by: Type.String(),
});

export const OpenAiModelList = Type.Object({ object: Type.Literal('list'), data: Type.Array(OpenAiModel) });
