/**
 * Every error becomes `{ error, code }` JSON with the status that says whose fault it was. Domain
 * errors (models, runtime, AtomSpace, queues, limits) carry their `code`; this file's one table
 * maps a code to its status and headers. Fastify's own errors are mapped after it.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';

import { LimitError } from '../models/limits.js';

export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface ErrorBody {
  error: string;
  code: string;
  /** For LIMIT_EXCEEDED: the setting that was exceeded. */
  limit?: string;
}

/** Fastify's and multipart's own size errors, as LimitErrors naming the setting. */
export function namingLimits(error: unknown, limits: { bodyLimit: number; maxImageBytes: number }): unknown {
  const code = (error as { code?: string } | undefined)?.code;
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new LimitError('BODY_LIMIT', 413, `the request body is larger than BODY_LIMIT (${limits.bodyLimit} bytes)`);
  if (code === 'FST_REQ_FILE_TOO_LARGE') return new LimitError('MAX_IMAGE_BYTES', 413, `the uploaded file is larger than MAX_IMAGE_BYTES (${limits.maxImageBytes} bytes)`);
  return error;
}

interface Mapping {
  status: number | ((error: Error & { code: string }) => number);
  /** Retry-After seconds (from the error when it says). */
  retryAfter?: number;
  /** The code the client sees, when not the error's own. */
  as?: string;
  /** Says in the message what happened when the domain's own message does not. */
  prefix?: string;
}

/** Domain error codes → HTTP. A code not listed is a 500 (an error nobody expected). */
export const ERROR_STATUS: Readonly<Record<string, Mapping>> = {
  // the request
  BAD_INPUT: { status: 400 },
  BAD_REQUEST: { status: 400 },
  BAD_EMBEDDING: { status: 400 },
  BAD_ATOM: { status: 400 },
  BAD_ATOM_TYPE: { status: 400 },
  LIMIT_EXCEEDED: { status: (e) => (e instanceof LimitError ? e.status : 413) },
  // what it names
  MODEL_NOT_FOUND: { status: 404 },
  ATOM_NOT_FOUND: { status: 404 },
  SPACE_NOT_FOUND: { status: 404 },
  HAS_INCOMING: { status: 409 },
  // the model refused valid-looking inputs (e.g. token ids past the vocabulary)
  FORWARD_FAILED: { status: 422, prefix: 'the model could not run these inputs: ' },
  // load and capacity
  QUEUE_FULL: { status: 429, retryAfter: 1 },
  MODEL_NOT_READY: { status: 503, retryAfter: 1 },
  MODEL_DISPOSED: { status: 503, retryAfter: 1, as: 'MODEL_NOT_READY', prefix: 'the model was unloaded while this request ran; retry: ' },
  MODEL_MEMORY_LIMIT: { status: 503 },
  BAD_MANIFEST: { status: 503 },
  OUT_OF_MEMORY: { status: 503, retryAfter: 1, prefix: 'out of memory running the model: ' },
  STORAGE_UNAVAILABLE: { status: 503, retryAfter: 5 },
  DEADLINE_EXCEEDED: { status: 504 },
  CANCELLED: { status: 499 },
};

/** Fastify's errors that are the client's fault, by Fastify code. */
const FASTIFY_ERRORS: Readonly<Record<string, { status: number; code: string }>> = {
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, code: 'BAD_JSON' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: 'BAD_JSON' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, code: 'BAD_JSON' },
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: 'BODY_TOO_LARGE' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
};

export function toHttp(error: unknown): { status: number; body: ErrorBody; headers?: Record<string, string> } {
  const e = error as FastifyError & { code?: unknown; retryAfterSeconds?: number; limit?: string };
  if (error instanceof HttpError) return { status: error.statusCode, body: { error: error.message, code: error.code } };
  const mapping = typeof e?.code === 'string' && Object.hasOwn(ERROR_STATUS, e.code) ? ERROR_STATUS[e.code]! : undefined;
  if (mapping && error instanceof Error) {
    const coded = error as Error & { code: string };
    const status = typeof mapping.status === 'function' ? mapping.status(coded) : mapping.status;
    const body: ErrorBody = { error: `${mapping.prefix ?? ''}${coded.message}`, code: mapping.as ?? coded.code };
    if (error instanceof LimitError) body.limit = error.limit;
    if (coded.code === 'QUEUE_FULL') body.limit = 'MAX_QUEUE_SIZE';
    const retryAfter = e.retryAfterSeconds ?? mapping.retryAfter;
    return { status, body, ...(retryAfter !== undefined ? { headers: { 'retry-after': String(retryAfter) } } : {}) };
  }
  if (e?.validation) return { status: 400, body: { error: e.message, code: 'BAD_REQUEST' } };
  const fastify = typeof e?.code === 'string' && Object.hasOwn(FASTIFY_ERRORS, e.code) ? FASTIFY_ERRORS[e.code]! : undefined;
  if (fastify) return { status: fastify.status, body: { error: e.message, code: fastify.code } };
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return { status: e.statusCode, body: { error: e.message, code: typeof e.code === 'string' ? e.code : 'BAD_REQUEST' } };
  }
  return { status: 500, body: { error: 'internal server error', code: 'INTERNAL' } };
}

export function errorHandler(error: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const { status, body, headers } = toHttp(error);
  if (status >= 500) request.log.error({ err: error }, 'request failed');
  else request.log.info({ code: body.code, status }, body.error);
  if (headers) void reply.headers(headers);
  void reply.status(status).send(body);
}
