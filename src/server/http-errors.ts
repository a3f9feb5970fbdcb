/** Every error becomes `{ error, code }` JSON with the status that says whose fault it was. */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';

import { AtomSpaceError } from '../atomspace/atomspace.js';
import { EmbeddingError } from '../atomspace/embedding-space.js';
import { TypeError_ as AtomTypeError } from '../atomspace/types.js';
import { CancelledError, DeadlineExceededError, QueueClosedError, QueueFullError } from '../batching/batcher.js';
import { LimitError } from '../models/limits.js';
import { MemoryLimitError, ModelNotFoundError, ModelNotReadyError } from '../models/registry.js';
import { TaskInputError } from '../models/tasks/task-errors.js';
import { InputError } from '../models/tensor-batch.js';
import { TorchRuntimeError } from '../runtime/index.js';

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

export function toHttp(error: unknown): { status: number; body: ErrorBody; headers?: Record<string, string> } {
  const e = error as FastifyError & { code?: string };
  if (error instanceof HttpError) return { status: error.statusCode, body: { error: error.message, code: error.code } };
  if (error instanceof AtomSpaceError) {
    if (error.code === 'STORAGE_UNAVAILABLE') return { status: 503, body: { error: e.message, code: error.code }, headers: { 'retry-after': '5' } };
    const status = { ATOM_NOT_FOUND: 404, SPACE_NOT_FOUND: 404, HAS_INCOMING: 409, BAD_ATOM: 400 }[error.code];
    return { status, body: { error: e.message, code: error.code } };
  }
  if (error instanceof LimitError) return { status: error.status, body: { error: error.message, code: error.code, limit: error.limit } };
  if (error instanceof EmbeddingError || error instanceof AtomTypeError) return { status: 400, body: { error: e.message, code: error.code } };
  if (error instanceof InputError || error instanceof TaskInputError) return { status: 400, body: { error: e.message, code: 'BAD_INPUT' } };
  if (error instanceof ModelNotFoundError) return { status: 404, body: { error: e.message, code: 'MODEL_NOT_FOUND' } };
  if (error instanceof ModelNotReadyError) return { status: 503, body: { error: e.message, code: 'MODEL_NOT_READY' } };
  if (error instanceof QueueClosedError) return { status: 503, body: { error: e.message, code: error.code }, headers: { 'retry-after': '1' } };
  if (error instanceof MemoryLimitError) return { status: 503, body: { error: e.message, code: 'MODEL_MEMORY_LIMIT' } };
  if (error instanceof QueueFullError) {
    return { status: 429, body: { error: e.message, code: 'QUEUE_FULL', limit: 'MAX_QUEUE_SIZE' }, headers: { 'retry-after': String(error.retryAfterSeconds) } };
  }
  if (error instanceof DeadlineExceededError) return { status: 504, body: { error: e.message, code: 'DEADLINE_EXCEEDED' } };
  if (error instanceof CancelledError) return { status: 499, body: { error: e.message, code: 'CANCELLED' } };
  if (error instanceof TorchRuntimeError) {
    switch (error.code) {
      case 'BAD_INPUT':
        return { status: 400, body: { error: e.message, code: error.code } };
      case 'FORWARD_FAILED':
        // The inputs passed validation but the model refused them (e.g. token ids past the vocabulary).
        return { status: 422, body: { error: `the model could not run these inputs: ${e.message}`, code: error.code } };
      case 'MODEL_DISPOSED':
        // The model was unloaded under the request: not the client's fault, and retrying reloads it.
        return { status: 503, body: { error: `the model was unloaded while this request ran; retry: ${e.message}`, code: 'MODEL_NOT_READY' }, headers: { 'retry-after': '1' } };
      case 'OUT_OF_MEMORY':
        return { status: 503, body: { error: `out of memory running the model: ${e.message}`, code: error.code }, headers: { 'retry-after': '1' } };
      default:
        return { status: 500, body: { error: e.message, code: error.code } };
    }
  }
  if (e.validation) return { status: 400, body: { error: e.message, code: 'BAD_REQUEST' } };
  if (e.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || e.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || e.code === 'FST_ERR_CTP_INVALID_CONTENT_LENGTH') {
    return { status: 400, body: { error: e.message, code: 'BAD_JSON' } };
  }
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return { status: 413, body: { error: e.message, code: 'BODY_TOO_LARGE' } };
  if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return { status: 415, body: { error: e.message, code: 'UNSUPPORTED_MEDIA_TYPE' } };
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return { status: e.statusCode, body: { error: e.message, code: e.code ?? 'BAD_REQUEST' } };
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
