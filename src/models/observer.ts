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
}

export const noopObserver: ModelObserver = {
  cacheHit() {},
  cacheMiss() {},
  batchExecuted() {},
  stage() {},
  queueDepth() {},
};
