/** What the model layer reports as it works; the server turns it into metrics. */
export type Stage = 'queue' | 'compute' | 'total' | 'preprocess' | 'postprocess';
export type Outcome = 'success' | 'client_error' | 'server_error' | 'rejected' | 'timeout' | 'cancelled';

export interface ModelObserver {
  modelLoaded(model: string, seconds: number, ok: boolean): void;
  modelUnloaded(model: string): void;
  cacheHit(model: string): void;
  cacheMiss(model: string): void;
  cacheEviction(model: string): void;
  batchExecuted(model: string, rows: number, requests: number): void;
  stage(model: string, stage: Stage, seconds: number): void;
  queueDepth(model: string, depth: number): void;
}

export const noopObserver: ModelObserver = {
  modelLoaded() {},
  modelUnloaded() {},
  cacheHit() {},
  cacheMiss() {},
  cacheEviction() {},
  batchExecuted() {},
  stage() {},
  queueDepth() {},
};
