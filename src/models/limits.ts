/**
 * Per-request limits: how much one request may ask of the server. Each has a setting (the
 * name users see in errors and in the README) and a safe default; exceeding one is a
 * LimitError naming the setting, answered 413 (too much content) or 400 (a value out of range).
 */

export interface RequestLimits {
  /** Elements over all input tensors of one raw-tensor request. */
  maxTensorElements: number;
  /** Texts in one embedding or tokenize request. */
  maxTextsPerRequest: number;
  /** Tokens in one text (0: the model's own limit); never above the model's limit. */
  maxTokensPerText: number;
  /** Bytes of one encoded image. */
  maxImageBytes: number;
  /** Pixels (width x height) of one image. */
  maxImagePixels: number;
  /** Tokens one generation request may ask for. */
  maxNewTokens: number;
  /** Atoms in one /atoms/batch request. */
  maxAtomsPerBatch: number;
  /** Neighbours one similarity query may ask for. */
  maxK: number;
}

/** The setting behind each limit, as users write it. */
export const LIMIT_SETTINGS: Record<keyof RequestLimits, string> = {
  maxTensorElements: 'MAX_TENSOR_ELEMENTS',
  maxTextsPerRequest: 'MAX_TEXTS_PER_REQUEST',
  maxTokensPerText: 'MAX_TOKENS_PER_TEXT',
  maxImageBytes: 'MAX_IMAGE_BYTES',
  maxImagePixels: 'MAX_IMAGE_PIXELS',
  maxNewTokens: 'MAX_NEW_TOKENS',
  maxAtomsPerBatch: 'MAX_ATOMS_PER_BATCH',
  maxK: 'MAX_K',
};

export const DEFAULT_LIMITS: RequestLimits = {
  maxTensorElements: 16 * 1024 * 1024,
  maxTextsPerRequest: 256,
  maxTokensPerText: 0,
  maxImageBytes: 16 * 1024 * 1024,
  maxImagePixels: 40_000_000,
  maxNewTokens: 1024,
  maxAtomsPerBatch: 10_000,
  maxK: 1000,
};

export class LimitError extends Error {
  readonly code = 'LIMIT_EXCEEDED';

  constructor(
    /** The setting that was exceeded, e.g. MAX_TEXTS_PER_REQUEST. */
    readonly limit: string,
    /** 413 for too much content, 400 for a parameter out of range. */
    readonly status: 400 | 413,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Throw a LimitError when `value` is over the limit `key`: "<what> is <value>, more than
 * MAX_X (<max>)".
 */
export function enforce(limits: RequestLimits, key: keyof RequestLimits, value: number, what: string, status: 400 | 413 = 413): void {
  const max = limits[key];
  if (value > max) throw new LimitError(LIMIT_SETTINGS[key], status, `${what} is ${value}, more than ${LIMIT_SETTINGS[key]} (${max})`);
}
