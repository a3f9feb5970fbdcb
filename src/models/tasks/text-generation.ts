/**
 * The text-generation task: prompt -> tokens -> decode loop -> text. Greedy decoding picks
 * the argmax at every step, as transformers' generate(do_sample=False) does; with past
 * key/values exported, each step after the first feeds one token and the cache.
 * Generations of one model run at most `instances` at a time through its engine's sequence queue.
 */
import type { SubmitOptions } from '../../batching/batcher.js';
import type { Decoder } from '../engine/decoder.js';
import type { ModelEngine } from '../engine/model-engine.js';
import { DEFAULT_LIMITS, enforce, type RequestLimits } from '../limits.js';
import { sectionOf } from '../manifest.js';
import { argmax, sample, SeededRandom } from './sampling.js';
import { TaskInputError } from './task-errors.js';
import type { TaskRuntime } from './task-runtime.js';
import type { TextTokenizer } from './text-tokenizer.js';

export interface GenerateOptions {
  maxNewTokens: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  stop?: string[];
}

export type FinishReason = 'stop' | 'length' | 'eos';

export interface GenerateResult {
  text: string;
  tokenIds: number[];
  finishReason: FinishReason;
  promptTokens: number;
}

/** Called with each new piece of text as it is decoded (for streaming). */
export type OnText = (piece: string, tokenId: number) => void;

interface Job {
  engine: ModelEngine;
  tokenizer: TextTokenizer;
  prompt: number[];
  options: GenerateOptions;
  onText: OnText | undefined;
  signal: AbortSignal | undefined;
}

export function validateGenerateOptions(options: GenerateOptions, limits: RequestLimits = DEFAULT_LIMITS): void {
  const { maxNewTokens, temperature, topK, topP, seed, stop } = options;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) throw new TaskInputError(`max_new_tokens must be a positive integer, got ${maxNewTokens}`);
  enforce(limits, 'maxNewTokens', maxNewTokens, 'max_new_tokens', 400);
  if (temperature !== undefined && !(temperature >= 0 && temperature <= 100)) throw new TaskInputError('temperature must be from 0 (greedy) to 100');
  if (topK !== undefined && !(Number.isInteger(topK) && topK >= 0)) throw new TaskInputError('top_k must be a non-negative integer (0: no limit)');
  if (topP !== undefined && !(topP > 0 && topP <= 1)) throw new TaskInputError('top_p must be in (0, 1]');
  if (seed !== undefined && !Number.isSafeInteger(seed)) throw new TaskInputError('seed must be an integer');
  if (stop && (stop.length > 8 || stop.some((s) => typeof s !== 'string' || s === ''))) {
    throw new TaskInputError('stop must be up to 8 non-empty strings');
  }
}

export function isSampling(options: Pick<GenerateOptions, 'temperature'>): boolean {
  return options.temperature !== undefined && options.temperature > 0;
}

export async function generate(
  runtime: TaskRuntime,
  model: string,
  text: string,
  options: GenerateOptions,
  submit: SubmitOptions = {},
  onText?: OnText,
): Promise<GenerateResult> {
  const entry = await runtime.entryForTask(model, 'text-generation');
  if (typeof text !== 'string' || text === '') throw new TaskInputError('text is empty');
  validateGenerateOptions(options, runtime.limits);
  const section = sectionOf(entry.manifest!, 'generation');
  const t0 = performance.now();
  const [encoded] = await runtime.tokenizer(entry).encode([text], false);
  const prompt = encoded!.ids;
  runtime.observer.stage(model, 'preprocess', (performance.now() - t0) / 1000);
  runtime.tokensPerRequest(model, prompt.length);
  if (prompt.length === 0) throw new TaskInputError('text encodes to no tokens');
  if (prompt.length >= section.context_length) {
    throw new TaskInputError(`the prompt is ${prompt.length} tokens; the model's context is ${section.context_length} tokens, leaving no room to generate`);
  }
  // The model may be unloaded while the prompt is tokenized or queued: withModel reloads it and retries.
  return runtime.registry.withEngine(entry, (engine) =>
    engine.runSequence((decoder) => decodeLoop(runtime, { engine, tokenizer: runtime.tokenizer(entry), prompt, options, onText, signal: submit.signal }, decoder(prompt)), submit),
  );
}

async function decodeLoop(runtime: TaskRuntime, job: Job, stepper: Decoder): Promise<GenerateResult> {
  const { engine, tokenizer, prompt, options, onText, signal } = job;
  const section = sectionOf(engine.manifest, 'generation');
  const random = new SeededRandom(options.seed ?? Math.floor(Math.random() * 2 ** 32));
  const sampling = isSampling(options);
  const budget = Math.min(options.maxNewTokens, section.context_length - prompt.length);
  const vocab = section.vocab_size;
  const generated: number[] = [];
  let text = '';
  let finishReason: FinishReason = 'length';
  const computeStart = performance.now();

  for (let step = 0; step < budget; step++) {
    if (signal?.aborted) break;
    const logits = await stepper.next(generated[generated.length - 1]);
    runtime.observer.batchExecuted(engine.name, 1, 1); // one forward per generated token
    const row = logits.subarray(logits.length - vocab);
    const next = sampling
      ? sample(row, { temperature: options.temperature!, topK: options.topK ?? 0, topP: options.topP ?? 1 }, random)
      : argmax(row);
    if (section.eos_token_id !== null && next === section.eos_token_id) {
      finishReason = 'eos';
      break;
    }
    generated.push(next);
    const decoded = await tokenizer.decode(generated);
    // Hold back a trailing partial character (an incomplete UTF-8 sequence decodes to U+FFFD).
    const settled = decoded.endsWith('\uFFFD') ? text : decoded;
    const stopAt = firstStop(settled, options.stop);
    if (stopAt >= 0) {
      const finalText = settled.slice(0, stopAt);
      if (finalText.length > text.length) onText?.(finalText.slice(text.length), next);
      text = finalText;
      finishReason = 'stop';
      break;
    }
    if (settled.length > text.length) onText?.(settled.slice(text.length), next);
    text = settled;
  }
  runtime.observer.stage(engine.name, 'compute', (performance.now() - computeStart) / 1000);
  const decodeStart = performance.now();
  if (finishReason !== 'stop') text = await tokenizer.decode(generated);
  runtime.observer.stage(engine.name, 'postprocess', (performance.now() - decodeStart) / 1000);
  return { text, tokenIds: generated, finishReason, promptTokens: prompt.length };
}

function firstStop(text: string, stops: string[] | undefined): number {
  if (!stops?.length) return -1;
  let at = -1;
  for (const s of stops) {
    const i = text.indexOf(s);
    if (i >= 0 && (at < 0 || i < at)) at = i;
  }
  return at;
}
