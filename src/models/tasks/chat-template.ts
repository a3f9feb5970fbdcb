/**
 * Chat messages to a prompt, with the model's own chat template (Jinja, exported from its
 * tokenizer config) rendered by Hugging Face's Jinja engine, as transformers'
 * apply_chat_template(add_generation_prompt=True) does. A model without a template cannot chat:
 * that is a 400 naming the missing template (as vLLM answers), not a guessed format.
 */
import { Template } from '@huggingface/jinja';

import type { Manifest } from '../manifest.js';
import { TaskInputError } from './task-errors.js';

export interface ChatMessage {
  role: string;
  content: string;
  name?: string;
  [field: string]: unknown;
}

const templates = new WeakMap<Manifest, Template>();

export function renderChat(manifest: Manifest, messages: ChatMessage[]): string {
  const section = manifest.tokenizer ?? undefined;
  const source = section?.chat_template;
  if (!source) {
    throw new TaskInputError(
      `model '${manifest.name}' has no chat template (its tokenizer config had none when it was exported); use /v1/completions with a prompt, or export a model whose tokenizer has a chat_template`,
    );
  }
  if (messages.length === 0) throw new TaskInputError('messages must not be empty');
  let template = templates.get(manifest);
  if (!template) {
    try {
      template = new Template(source);
    } catch (error) {
      throw new TaskInputError(`model '${manifest.name}' has a chat template that cannot be parsed: ${(error as Error).message}`);
    }
    templates.set(manifest, template);
  }
  try {
    return template.render({ messages, add_generation_prompt: true, bos_token: section?.bos_token ?? '', eos_token: section?.eos_token ?? '' });
  } catch (error) {
    throw new TaskInputError(`the model's chat template rejected the messages: ${(error as Error).message}`);
  }
}
