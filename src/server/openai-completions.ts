/**
 * OpenAI completions and chat completions over the text-generation task: every prompt × n
 * choices is one generation (they decode together in the model's engine), answered whole or
 * streamed as Server-Sent Events whose pieces concatenate to the whole answer.
 */
import { randomUUID } from 'node:crypto';

import type { SubmitOptions } from '../batching/batcher.js';
import { sectionOf } from '../models/manifest.js';
import { renderChat } from '../models/tasks/chat-template.js';
import { type FinishReason, type GenerateOptions, type GenerateResult, generate } from '../models/tasks/text-generation.js';
import type { TaskRuntime } from '../models/tasks/task-runtime.js';
import type { ChatCompletionRequest, CompletionRequest } from './openai-schemas.js';
import type { EventStream } from './sse.js';

/** OpenAI's completions default. */
const DEFAULT_COMPLETION_TOKENS = 16;

type Kind = 'completion' | 'chat';

interface Choice {
  index: number;
  prompt: string;
  options: GenerateOptions;
}

export function openAiFinish(reason: FinishReason): 'stop' | 'length' {
  return reason === 'length' ? 'length' : 'stop';
}

function samplingOf(body: CompletionRequest | ChatCompletionRequest, maxTokens: number, choice: number): GenerateOptions {
  const temperature = body.temperature ?? 1;
  return {
    maxNewTokens: maxTokens,
    temperature,
    ...(body.top_p !== undefined ? { topP: body.top_p } : {}),
    ...(body.top_k !== undefined ? { topK: body.top_k } : {}),
    ...(body.seed !== undefined ? { seed: body.seed + choice } : {}),
    ...(body.stop !== undefined ? { stop: typeof body.stop === 'string' ? [body.stop] : body.stop } : {}),
  };
}

/** The generations a request asks for: each prompt n times, in OpenAI's index order. */
async function choicesOf(tasks: TaskRuntime, kind: Kind, body: CompletionRequest | ChatCompletionRequest): Promise<Choice[]> {
  const n = body.n ?? 1;
  let prompts: string[];
  let maxTokens: number;
  if (kind === 'chat') {
    const chat = body as ChatCompletionRequest;
    const entry = await tasks.entryForTask(chat.model, 'text-generation');
    const messages = chat.messages.map((m) => ({ ...m, content: typeof m.content === 'string' ? m.content : m.content === null ? '' : m.content.map((p) => p.text).join('') }));
    prompts = [renderChat(entry.manifest!, messages)];
    // As OpenAI: until the model stops, within MAX_NEW_TOKENS and the context (generate caps it there).
    maxTokens = chat.max_completion_tokens ?? chat.max_tokens ?? Math.min(tasks.limits.maxNewTokens, sectionOf(entry.manifest!, 'generation').context_length);
  } else {
    const completion = body as CompletionRequest;
    prompts = typeof completion.prompt === 'string' ? [completion.prompt] : completion.prompt;
    maxTokens = completion.max_tokens ?? DEFAULT_COMPLETION_TOKENS;
  }
  return prompts.flatMap((prompt, p) => Array.from({ length: n }, (_, j) => ({ index: p * n + j, prompt, options: samplingOf(body, maxTokens, j) })));
}

function usageOf(results: GenerateResult[], n: number) {
  // Each prompt counts once, however many choices it has.
  const prompt = results.filter((_, i) => i % n === 0).reduce((s, r) => s + r.promptTokens, 0);
  const completion = results.reduce((s, r) => s + r.tokenIds.length, 0);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

/** A whole answer. */
export async function complete(tasks: TaskRuntime, kind: Kind, body: CompletionRequest | ChatCompletionRequest, submit: SubmitOptions) {
  const choices = await choicesOf(tasks, kind, body);
  const results = await Promise.all(choices.map((c) => generate(tasks, body.model, c.prompt, c.options, submit)));
  const id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomUUID()}`;
  const created = Math.floor(Date.now() / 1000);
  const usage = usageOf(results, body.n ?? 1);
  if (kind === 'chat') {
    return {
      id,
      object: 'chat.completion' as const,
      created,
      model: body.model,
      choices: results.map((r, index) => ({ index, message: { role: 'assistant' as const, content: r.text }, logprobs: null, finish_reason: openAiFinish(r.finishReason) })),
      usage,
    };
  }
  return {
    id,
    object: 'text_completion' as const,
    created,
    model: body.model,
    choices: results.map((r, index) => ({ text: r.text, index, logprobs: null, finish_reason: openAiFinish(r.finishReason) })),
    usage,
  };
}

/** A streamed answer: pieces as they settle, a last chunk per choice with its finish_reason, then [DONE]. */
export async function streamCompletion(tasks: TaskRuntime, kind: Kind, body: CompletionRequest | ChatCompletionRequest, submit: SubmitOptions, stream: EventStream): Promise<void> {
  const choices = await choicesOf(tasks, kind, body);
  const id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomUUID()}`;
  const created = Math.floor(Date.now() / 1000);
  const base = { id, object: kind === 'chat' ? ('chat.completion.chunk' as const) : ('text_completion' as const), created, model: body.model };
  const chunk = (index: number, text: string | undefined, finish: 'stop' | 'length' | null, first = false) =>
    kind === 'chat'
      ? { ...base, choices: [{ index, delta: finish ? {} : { ...(first ? { role: 'assistant' } : {}), content: text ?? '' }, logprobs: null, finish_reason: finish }] }
      : { ...base, choices: [{ text: text ?? '', index, logprobs: null, finish_reason: finish }] };
  await stream.run(async () => {
    if (kind === 'chat') for (const c of choices) stream.send(chunk(c.index, '', null, true));
    const results = await Promise.all(
      choices.map(async (c) => {
        let sent = '';
        const result = await generate(tasks, body.model, c.prompt, c.options, submit, (piece) => {
          sent += piece;
          stream.send(chunk(c.index, piece, null));
        });
        // Text held back while a character was incomplete goes out before the end, so the
        // pieces always add up to the whole answer.
        if (result.text.length > sent.length && result.text.startsWith(sent)) stream.send(chunk(c.index, result.text.slice(sent.length), null));
        stream.send(chunk(c.index, undefined, openAiFinish(result.finishReason)));
        return result;
      }),
    );
    if (body.stream_options?.include_usage) stream.send({ ...base, choices: [], usage: usageOf(results, body.n ?? 1) });
    stream.end('[DONE]');
  });
}
