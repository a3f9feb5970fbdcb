/**
 * A request's stages, for its trace: the front end that traces a request makes it current
 * (AsyncLocalStorage) while the request runs; the engine and the task pipelines report the
 * stages they time to it. The model layer knows nothing of OpenTelemetry: the server's tracing
 * turns each stage into a child span. While no front end traces, `currentTrace()` is a boolean
 * check and nothing more.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

import type { Stage } from './observer.js';

export interface StageTrace {
  /** A stage of this request ran from `startMs` to `endMs` (performance.now() milliseconds). */
  stage(stage: Stage, startMs: number, endMs: number, attributes?: Readonly<Record<string, number>>): void;
}

const current = new AsyncLocalStorage<StageTrace>();
let tracing = false;

/** Some front end traces requests: from now on the current trace is looked up. */
export function enableRequestTraces(): void {
  tracing = true;
}

/** The trace of the request this code runs for, if it is traced. */
export function currentTrace(): StageTrace | undefined {
  return tracing ? current.getStore() : undefined;
}

/** Run `work` as part of the request `trace` belongs to. */
export function runTraced<T>(trace: StageTrace, work: () => T): T {
  return current.run(trace, work);
}

/** The rest of this synchronous execution, and what it starts, belongs to `trace` (for hooks that cannot wrap the work). */
export function enterTrace(trace: StageTrace): void {
  current.enterWith(trace);
}
