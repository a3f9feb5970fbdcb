/**
 * text-generation-inference's generation over the text-generation task: its `parameters` as
 * generate() options (a 400 naming any that would change the answer in a way this server does
 * not implement), the whole answer with `details` when asked, or one Server-Sent Event per token
 * with the text and details on the last.
 */
import { randomInt } from 'node:crypto';

import type { SubmitOptions } from '../batching/batcher.js';
import type { RequestLimits } from '../models/limits.js';
import { TaskInputError } from '../models/tasks/task-errors.js';
import type { TaskRuntime } from '../models/tasks/task-runtime.js';
import { type ChosenToken, type FinishReason, type GenerateOptions, type GenerateResult, generate } from '../models/tasks/text-generation.js';
import type { EventStream } from './sse.js';
import type { TgiParameters, TgiRequest, TgiResponse } from './tgi-schemas.js';

/** TGI's default max_new_tokens (its OpenAPI document's). */
const DEFAULT_MAX_NEW_TOKENS = 100;

const FINISH: Record<FinishReason, 'eos_token' | 'stop_sequence' | 'length'> = { eos: 'eos_token', stop: 'stop_sequence', length: 'length' };

interface TgiRun {
  options: GenerateOptions;
  /** The seed sampling uses (reported in details), null when greedy. */
  seed: number | null;
  details: boolean;
  fullText: boolean;
}

/** A parameter at a value this server does not implement. */
function unsupported(name: string, why: string): TaskInputError {
  return new TaskInputError(`parameters.${name}: ${why}`);
}

/**
 * TGI's parameters as generate() options. As in TGI, a request samples when `do_sample` is true
 * or any of temperature ≠ 1, top_k, top_p < 1 is given, and is greedy otherwise.
 */
export function tgiRun(parameters: TgiParameters = {}, limits: RequestLimits, logprobs: boolean): TgiRun {
  const p = parameters;
  if ((p.best_of ?? 1) !== 1) throw unsupported('best_of', `only 1 is supported (one sequence per request), got ${p.best_of}`);
  if (p.decoder_input_details) throw unsupported('decoder_input_details', 'prompt token log-probabilities are not computed (the decode step keeps the last position’s logits only); leave it false');
  if ((p.repetition_penalty ?? 1) !== 1) throw unsupported('repetition_penalty', `only 1.0 (no penalty) is supported, got ${p.repetition_penalty}`);
  if ((p.frequency_penalty ?? 0) !== 0) throw unsupported('frequency_penalty', `only 0 (no penalty) is supported, got ${p.frequency_penalty}`);
  if ((p.typical_p ?? 1) !== 1) throw unsupported('typical_p', `typical decoding is not supported: only 1.0, got ${p.typical_p}`);
  if ((p.top_n_tokens ?? 0) !== 0) throw unsupported('top_n_tokens', `alternative tokens are not returned: only 0, got ${p.top_n_tokens}`);
  if (p.watermark) throw unsupported('watermark', 'watermarking is not supported; leave it false');
  if (p.grammar != null) throw unsupported('grammar', 'guided generation (JSON schema or regex grammars) is not supported');
  if (p.adapter_id != null) throw unsupported('adapter_id', `there are no LoRA adapters (got '${p.adapter_id}')`);

  const sampling = p.do_sample === true || (p.temperature != null && p.temperature !== 1) || p.top_k != null || (p.top_p != null && p.top_p < 1);
  const seed = sampling ? (p.seed ?? randomInt(2 ** 32)) : null;
  const options: GenerateOptions = {
    maxNewTokens: p.max_new_tokens ?? Math.min(DEFAULT_MAX_NEW_TOKENS, limits.maxNewTokens),
    temperature: sampling ? (p.temperature ?? 1) : 0,
    ...(sampling && p.top_k != null ? { topK: p.top_k } : {}),
    ...(sampling && p.top_p != null ? { topP: p.top_p } : {}),
    ...(seed !== null ? { seed } : {}),
    ...(p.stop?.length ? { stop: p.stop } : {}),
    ...(p.truncate != null ? { truncate: p.truncate } : {}),
    logprobs,
  };
  return { options, seed, details: p.details === true, fullText: p.return_full_text === true };
}

const tokenOf = (t: ChosenToken) => ({ id: t.id, text: t.text, logprob: t.logprob, special: t.finish === 'eos' });

/**
 * TGI's generated_text: the text of every generated token (so a stop sequence is kept, as TGI
 * keeps it), with the prompt before it when return_full_text.
 */
function generatedText(inputs: string, run: TgiRun, result: GenerateResult, tokens: ChosenToken[]): string {
  const text = result.finishReason === 'stop' ? tokens.map((t) => t.text).join('') : result.text;
  return run.fullText ? inputs + text : text;
}

/** POST /generate: `{generated_text, details?}`. */
export async function tgiGenerate(tasks: TaskRuntime, model: string, body: TgiRequest, submit: SubmitOptions): Promise<TgiResponse> {
  const run = tgiRun(body.parameters, tasks.limits, body.parameters?.details === true);
  const tokens: ChosenToken[] = [];
  const result = await generate(tasks, model, body.inputs, run.options, submit, undefined, (t) => tokens.push(t));
  const generated_text = generatedText(body.inputs, run, result, tokens);
  if (!run.details) return { generated_text };
  return {
    generated_text,
    details: { finish_reason: FINISH[result.finishReason], generated_tokens: tokens.length, seed: run.seed, prefill: [], tokens: tokens.map(tokenOf) },
  };
}

/**
 * POST /generate_stream: `data: {index, token, generated_text: null, details: null}` per token;
 * the last token's event carries generated_text, and details when asked. No [DONE], as TGI.
 */
export async function tgiStream(tasks: TaskRuntime, model: string, body: TgiRequest, submit: SubmitOptions, stream: EventStream): Promise<void> {
  const run = tgiRun(body.parameters, tasks.limits, true);
  const tokens: ChosenToken[] = [];
  await stream.run(async () => {
    const result = await generate(tasks, model, body.inputs, run.options, submit, undefined, (t) => {
      tokens.push(t);
      // The last token waits for the result, to go out with the whole text.
      if (!t.finish) stream.send({ index: tokens.length, token: tokenOf(t), generated_text: null, details: null });
    });
    const last = tokens[tokens.length - 1];
    if (!last?.finish) throw new Error('the generation ended without a last token');
    stream.send({
      index: tokens.length,
      token: tokenOf(last),
      generated_text: generatedText(body.inputs, run, result, tokens),
      details: run.details ? { finish_reason: FINISH[result.finishReason], generated_tokens: tokens.length, seed: run.seed, input_length: result.promptTokens } : null,
    });
    stream.end();
  });
}
