/**
 * Errors as gRPC statuses. An error is first mapped exactly as HTTP maps it (http-errors.ts:
 * the one code → status table, with the same message and `code`); this file's one table turns
 * that HTTP status into the gRPC status code. The error's `code` (and `limit`, and
 * `retry-after` when there is one) travel in the trailing metadata.
 */
import { Metadata, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';

import { toHttp } from '../http-errors.js';

/** HTTP status → gRPC status code (as grpc-gateway and the gRPC HTTP mapping pair them). */
export const GRPC_STATUS: Readonly<Record<number, GrpcStatus>> = {
  400: GrpcStatus.INVALID_ARGUMENT,
  401: GrpcStatus.UNAUTHENTICATED,
  403: GrpcStatus.PERMISSION_DENIED,
  404: GrpcStatus.NOT_FOUND,
  409: GrpcStatus.FAILED_PRECONDITION,
  413: GrpcStatus.RESOURCE_EXHAUSTED,
  // the model refused valid-looking tensors: the request's fault, as HTTP says with 422
  422: GrpcStatus.INVALID_ARGUMENT,
  429: GrpcStatus.RESOURCE_EXHAUSTED,
  499: GrpcStatus.CANCELLED,
  500: GrpcStatus.INTERNAL,
  503: GrpcStatus.UNAVAILABLE,
  504: GrpcStatus.DEADLINE_EXCEEDED,
};

export interface GrpcFailure {
  /** The HTTP status the same error gets (for metrics and logs). */
  httpStatus: number;
  code: string;
  error: ServiceError;
}

/** The gRPC status for any error a handler throws. */
export function toGrpc(thrown: unknown): GrpcFailure {
  const { status, body, headers } = toHttp(thrown);
  const metadata = new Metadata();
  metadata.set('error-code', body.code);
  if (body.limit) metadata.set('error-limit', body.limit);
  if (headers?.['retry-after']) metadata.set('retry-after', headers['retry-after']);
  const code = GRPC_STATUS[status] ?? (status >= 500 ? GrpcStatus.INTERNAL : GrpcStatus.INVALID_ARGUMENT);
  const error = Object.assign(new Error(body.error), { code, details: body.error, metadata }) as ServiceError;
  return { httpStatus: status, code: body.code, error };
}
