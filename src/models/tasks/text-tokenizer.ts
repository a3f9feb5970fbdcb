/**
 * A model's tokenizer (HuggingFace's Rust tokenizers, from its tokenizer.json), with the
 * model's length limit applied: too long is an error unless the caller asks to truncate.
 */
import { join } from 'node:path';

import { Tokenizer } from 'tokenizers';

// One text at a time per call, on libuv's pool: the Rust tokenizer's own thread pool would only
// compete with LibTorch's threads for the cores.
process.env.TOKENIZERS_PARALLELISM ??= 'false';

import { LimitError } from '../limits.js';
import type { Manifest } from '../manifest.js';
import { TaskInputError } from './task-errors.js';

export interface Encoded {
  ids: number[];
  typeIds: number[];
}

export class TextTokenizer {
  readonly maxLength: number;
  /** Set when MAX_TOKENS_PER_TEXT, not the model, is what bounds maxLength. */
  readonly #bySetting: boolean;
  readonly #plain: Tokenizer;
  readonly #truncating: Tokenizer;
  readonly #addSpecial: boolean;

  private constructor(plain: Tokenizer, truncating: Tokenizer, maxLength: number, bySetting: boolean, addSpecial: boolean) {
    this.#bySetting = bySetting;
    this.#plain = plain;
    this.#truncating = truncating;
    this.maxLength = maxLength;
    this.#addSpecial = addSpecial;
  }

  /** `maxTokensPerText` (MAX_TOKENS_PER_TEXT, 0: none) may only lower the model's own limit. */
  static load(folder: string, manifest: Manifest, maxTokensPerText = 0): TextTokenizer {
    const section = manifest.tokenizer ?? {};
    const path = join(folder, section.file ?? 'tokenizer.json');
    const maxLength = Math.min(section.max_length ?? Infinity, manifest.max_sequence_length ?? Infinity);
    const modelLimit = Number.isFinite(maxLength) ? maxLength : 512;
    const bySetting = maxTokensPerText > 0 && maxTokensPerText < modelLimit;
    const limit = bySetting ? maxTokensPerText : modelLimit;
    let plain: Tokenizer;
    let truncating: Tokenizer;
    try {
      plain = Tokenizer.fromFile(path);
      truncating = Tokenizer.fromFile(path);
    } catch (error) {
      throw new Error(`cannot read the tokenizer ${path}: ${(error as Error).message}`);
    }
    plain.disablePadding();
    plain.disableTruncation();
    truncating.disablePadding();
    truncating.setTruncation(limit);
    return new TextTokenizer(plain, truncating, limit, bySetting, section.add_special_tokens ?? true);
  }

  /** Encode texts; longer than the limit is a TaskInputError unless `truncate`. */
  async encode(texts: string[], truncate: boolean): Promise<Encoded[]> {
    const tokenizer = truncate ? this.#truncating : this.#plain;
    const encodings = await tokenizer.encodeBatch(texts, { addSpecialTokens: this.#addSpecial });
    return encodings.map((e, i) => {
      const ids = e.getIds();
      if (ids.length > this.maxLength) {
        if (this.#bySetting) {
          throw new LimitError('MAX_TOKENS_PER_TEXT', 413, `text ${i} is ${ids.length} tokens long, more than MAX_TOKENS_PER_TEXT (${this.maxLength}); shorten it or pass "truncate": true`);
        }
        throw new TaskInputError(
          `text ${i} is ${ids.length} tokens long, more than the model's limit of ${this.maxLength} tokens; shorten it or pass "truncate": true`,
        );
      }
      return { ids, typeIds: e.getTypeIds() };
    });
  }

  /**
   * Token ids given by the caller (OpenAI's embeddings input may be token arrays), checked
   * against the vocabulary and the length limit and used as given: no special tokens are added.
   */
  fromIds(inputs: number[][]): Encoded[] {
    const vocab = this.#plain.getVocabSize(true);
    return inputs.map((ids, i) => {
      if (ids.length === 0) throw new TaskInputError(`input ${i} has no token ids`);
      const bad = ids.findIndex((id) => !Number.isInteger(id) || id < 0 || id >= vocab);
      if (bad >= 0) throw new TaskInputError(`input ${i}, token ${bad} is id ${ids[bad]}, outside the model's vocabulary of ${vocab} tokens (0 to ${vocab - 1})`);
      if (ids.length > this.maxLength) {
        if (this.#bySetting) throw new LimitError('MAX_TOKENS_PER_TEXT', 413, `input ${i} is ${ids.length} tokens long, more than MAX_TOKENS_PER_TEXT (${this.maxLength})`);
        throw new TaskInputError(`input ${i} is ${ids.length} tokens long, more than the model's limit of ${this.maxLength} tokens`);
      }
      return { ids: [...ids], typeIds: new Array<number>(ids.length).fill(0) };
    });
  }

  /** Token ids and the tokens they stand for, for /tokenize. */
  async tokenize(text: string, addSpecialTokens: boolean): Promise<{ id: number; text: string; start: number; stop: number; special: boolean }[]> {
    const e = await this.#plain.encode(text, null, { addSpecialTokens });
    const ids = e.getIds();
    const tokens = e.getTokens();
    const offsets = e.getOffsets();
    const special = e.getSpecialTokensMask();
    return ids.map((id, i) => ({ id, text: tokens[i]!, start: offsets[i]![0] ?? 0, stop: offsets[i]![1] ?? 0, special: special[i] === 1 }));
  }

  async decode(ids: number[], skipSpecialTokens = true): Promise<string> {
    return this.#plain.decode(ids, skipSpecialTokens);
  }
}
