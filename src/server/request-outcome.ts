/**
 * What every inference route does around its one service call: notice a client that went away
 * (to cancel its queued work), and count the request's outcome and duration per model.
 */
import { setMaxListeners } from 'node:events';

import type { FastifyReply, FastifyRequest } from 'fastify';

import type { Outcome } from '../models/observer.js';
import type { ServerContext } from './context.js';
import type { Protocol } from './metrics.js';
import { toHttp } from './http-errors.js';
import { ErrorResponse } from './schemas.js';

/** The error answers an inference route declares in its schema. */
export const errors = { 400: ErrorResponse, 404: ErrorResponse, 413: ErrorResponse, 422: ErrorResponse, 429: ErrorResponse, 503: ErrorResponse, 504: ErrorResponse };

export function outcomeOf(status: number): Outcome {
  if (status < 400) return 'success';
  if (status === 429) return 'rejected';
  if (status === 499) return 'cancelled';
  if (status === 504) return 'timeout';
  return status < 500 ? 'client_error' : 'server_error';
}

/**
 * An AbortSignal that fires when the client goes away before the response is sent. The
 * response's 'close' is the signal: the request's own 'close' also fires once its body has
 * been read (Node destroys a finished IncomingMessage), which is no disconnect at all.
 */
export function disconnectSignal(_request: FastifyRequest, reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  // One request may hold many sequences (prompts × n choices), each listening: not a leak.
  setMaxListeners(0, controller.signal);
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  return controller.signal;
}

/**
 * Run `work` and count its outcome and duration for `model` (when it is a model of the repository);
 * while it runs it is one of the model's in-flight requests (atenspace_inflight_requests).
 * `protocol` labels the count: the front end it came through.
 */
export async function measured<T>(ctx: ServerContext, model: string, work: () => Promise<T>, protocol: Protocol = 'http'): Promise<T> {
  const started = performance.now();
  let status = 200;
  const known = ctx.registry.get(model) !== undefined;
  if (known) ctx.metrics.requestStarted(model);
  try {
    return await work();
  } catch (error) {
    status = toHttp(error).status;
    throw error;
  } finally {
    if (known) ctx.metrics.requestEnded(model);
    if (ctx.registry.get(model)) ctx.metrics.request(model, outcomeOf(status), (performance.now() - started) / 1000, protocol);
  }
}
