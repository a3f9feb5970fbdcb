/**
 * The text-generation task: prompt -> tokens -> decode loop -> text. Greedy decoding picks
 * the argmax at every step, as transformers' generate(do_sample=False) does; with past
 * key/values exported, each step after the first feeds one token and the cache.
 * The model's engine decodes its generations together (continuous batching) when the export
 * has the past key/values module.
 */
import type { SubmitOptions } from '../../batching/batcher.js';
import type { SequenceHandler } from '../engine/decode-scheduler.js';
import { DEFAULT_LIMITS, enforce, type RequestLimits } from '../limits.js';
import { sectionOf } from '../manifest.js';
import { argmax, logProbability, sample, SeededRandom } from './sampling.js';
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
  /** Keep only the prompt's last N tokens (as text-generation-inference's `truncate`). */
  truncate?: number;
  /** Give each chosen token's log-probability to `onToken`. */
  logprobs?: boolean;
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

/**
 * Every token as it is chosen, the EOS that ends a generation included (its text the token
 * itself, special tokens kept). `text` is what the token settled: '' while a character is
 * incomplete, and not cut by a stop sequence. `logprob` only with options.logprobs; `finish` is
 * set on the token that ends the generation.
 */
export interface ChosenToken {
  id: number;
  text: string;
  logprob: number | null;
  finish: FinishReason | null;
}
export type OnToken = (token: ChosenToken) => void;

export function validateGenerateOptions(options: GenerateOptions, limits: RequestLimits = DEFAULT_LIMITS): void {
  const { maxNewTokens, temperature, topK, topP, seed, stop, truncate } = options;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) throw new TaskInputError(`max_new_tokens must be a positive integer, got ${maxNewTokens}`);
  enforce(limits, 'maxNewTokens', maxNewTokens, 'max_new_tokens', 400);
  if (temperature !== undefined && !(temperature >= 0 && temperature <= 100)) throw new TaskInputError('temperature must be from 0 (greedy) to 100');
  if (topK !== undefined && !(Number.isInteger(topK) && topK >= 0)) throw new TaskInputError('top_k must be a non-negative integer (0: no limit)');
  if (topP !== undefined && !(topP > 0 && topP <= 1)) throw new TaskInputError('top_p must be in (0, 1]');
  if (seed !== undefined && !Number.isSafeInteger(seed)) throw new TaskInputError('seed must be an integer');
  if (stop && (stop.length > 8 || stop.some((s) => typeof s !== 'string' || s === ''))) {
    throw new TaskInputError('stop must be up to 8 non-empty strings');
  }
  if (truncate !== undefined && !(Number.isInteger(truncate) && truncate >= 1)) throw new TaskInputError('truncate must be a positive integer');
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
  onToken?: OnToken,
): Promise<GenerateResult> {
  const entry = await runtime.entryForTask(model, 'text-generation');
  if (typeof text !== 'string' || text === '') throw new TaskInputError('text is empty');
  validateGenerateOptions(options, runtime.limits);
  const section = sectionOf(entry.manifest!, 'generation');
  const t0 = performance.now();
  const [encoded] = await runtime.tokenizer(entry).encode([text], false);
  const prompt = options.truncate !== undefined && encoded!.ids.length > options.truncate ? encoded!.ids.slice(-options.truncate) : encoded!.ids;
  runtime.observer.stage(model, 'preprocess', (performance.now() - t0) / 1000);
  runtime.tokensPerRequest(model, prompt.length);
  if (prompt.length === 0) throw new TaskInputError('text encodes to no tokens');
  if (prompt.length >= section.context_length) {
    throw new TaskInputError(`the prompt is ${prompt.length} tokens; the model's context is ${section.context_length} tokens, leaving no room to generate`);
  }
  const run = new Generation(prompt, Math.min(options.maxNewTokens, section.context_length - prompt.length), options, section.eos_token_id, runtime.tokenizer(entry), onText, onToken);
  // The model may be unloaded while the prompt is tokenized or queued: withEngine reloads it and retries.
  await runtime.registry.withEngine(entry, (engine) => engine.generate(run, submit));
  const t1 = performance.now();
  const result = await run.result();
  runtime.observer.stage(model, 'postprocess', (performance.now() - t1) / 1000);
  return result;
}

/**
 * One generation as its model's engine drives it: given the logits of each step it picks the
 * next token (greedy, or sampled from its own seeded generator, so the tokens do not depend on
 * what else shares the batch), streams the settled text, and says when it is done: EOS, a stop
 * sequence, or its token budget.
 */
class Generation implements SequenceHandler {
  readonly generated: number[] = [];
  #text = '';
  #finishReason: FinishReason = 'length';
  readonly #random: SeededRandom;

  constructor(
    readonly prompt: number[],
    readonly maxNewTokens: number,
    private readonly options: GenerateOptions,
    private readonly eos: number | null,
    private readonly tokenizer: TextTokenizer,
    private readonly onText: OnText | undefined,
    private readonly onToken: OnToken | undefined,
  ) {
    this.#random = new SeededRandom(options.seed ?? Math.floor(Math.random() * 2 ** 32));
  }

  async next(logits: Float32Array): Promise<number | undefined> {
    const { options } = this;
    const token = isSampling(options)
      ? sample(logits, { temperature: options.temperature!, topK: options.topK ?? 0, topP: options.topP ?? 1 }, this.#random)
      : argmax(logits);
    const logprob = options.logprobs ? logProbability(logits, token) : null;
    if (this.eos !== null && token === this.eos) {
      this.#finishReason = 'eos';
      if (this.onToken) this.onToken({ id: token, text: await this.tokenizer.decode([token], false), logprob, finish: 'eos' });
      return undefined;
    }
    this.generated.push(token);
    const decoded = await this.tokenizer.decode(this.generated);
    // Hold back a trailing partial character (an incomplete UTF-8 sequence decodes to U+FFFD).
    const settled = decoded.endsWith('\uFFFD') ? this.#text : decoded;
    const stopAt = firstStop(settled, options.stop);
    const finish = stopAt >= 0 ? 'stop' : this.generated.length >= this.maxNewTokens ? 'length' : null;
    this.onToken?.({ id: token, text: settled.length > this.#text.length ? settled.slice(this.#text.length) : '', logprob, finish });
    if (stopAt >= 0) {
      const finalText = settled.slice(0, stopAt);
      if (finalText.length > this.#text.length) this.onText?.(finalText.slice(this.#text.length), token);
      this.#text = finalText;
      this.#finishReason = 'stop';
      return undefined;
    }
    if (settled.length > this.#text.length) this.onText?.(settled.slice(this.#text.length), token);
    this.#text = settled;
    return this.generated.length >= this.maxNewTokens ? undefined : token;
  }

  async result(): Promise<GenerateResult> {
    const text = this.#finishReason === 'stop' ? this.#text : await this.tokenizer.decode(this.generated);
    return { text, tokenIds: this.generated, finishReason: this.#finishReason, promptTokens: this.prompt.length };
  }
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
