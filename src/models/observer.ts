/** What the model layer reports as it works; the server turns it into metrics. */
export type Stage = 'queue' | 'compute' | 'total' | 'preprocess' | 'postprocess';
export type Outcome = 'success' | 'client_error' | 'server_error' | 'rejected' | 'timeout' | 'cancelled';

/** The data path's signals; load and unload are lifecycle events (lifecycle.ts), not these. */
export interface ModelObserver {
  cacheHit(model: string): void;
  cacheMiss(model: string): void;
  batchExecuted(model: string, rows: number, requests: number): void;
  stage(model: string, stage: Stage, seconds: number): void;
  queueDepth(model: string, depth: number): void;
  /** Text generation: a prefill of new prompts or a decode step over `rows` sequences. */
  decodeStep(model: string, kind: 'prefill' | 'decode', rows: number, seconds: number): void;
  /** Text generation: a sequence's first token came `seconds` after its request was queued. */
  firstToken(model: string, seconds: number): void;
  /** Text generation: a sequence finished after `tokens` tokens, `secondsPerToken` apart. */
  sequenceFinished(model: string, tokens: number, secondsPerToken: number | undefined): void;
  /** Text generation: sequences decoding now. */
  activeSequences(model: string, count: number): void;
}

export const noopObserver: ModelObserver = {
  cacheHit() {},
  cacheMiss() {},
  batchExecuted() {},
  stage() {},
  queueDepth() {},
  decodeStep() {},
  firstToken() {},
  sequenceFinished() {},
  activeSequences() {},
};
