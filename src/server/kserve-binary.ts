/**
 * The KServe v2 / Triton binary tensor data extension on HTTP: a request body that is a JSON
 * header (its length in the `Inference-Header-Content-Length` header) followed by raw tensor
 * bytes, and answers that carry outputs the same way.
 *
 * The body is kept as the chunks it arrived in; each binary input is copied once, from those
 * chunks into a typed array of its dtype (tensor-bytes.ts), and goes to the addon as that.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

import { HttpError } from './http-errors.js';

export const HEADER_LENGTH = 'inference-header-content-length';
export const BINARY_CONTENT_TYPE = 'application/octet-stream';

/** The bytes after the JSON header: where binary inputs read from, in input order. */
export interface BinarySection {
  chunks: Uint8Array[];
  offset: number;
  length: number;
}

/** What the octet-stream parser hands the route: the JSON header, parsed, and the bytes after it. */
interface ParsedBinaryBody {
  readonly header: unknown;
  readonly binary: BinarySection;
}

const binaryOf = new WeakMap<FastifyRequest, BinarySection>();

/** The binary section of a request whose body had one. */
export function binarySection(request: FastifyRequest): BinarySection | undefined {
  return binaryOf.get(request);
}

function bad(message: string): HttpError {
  return new HttpError(400, 'BAD_INPUT', message);
}

function headerLength(request: FastifyRequest): number | undefined {
  const raw = request.headers[HEADER_LENGTH];
  if (raw === undefined) return undefined;
  const text = Array.isArray(raw) ? raw[0]! : raw;
  if (!/^\d+$/.test(text.trim())) throw bad(`the ${HEADER_LENGTH} header must be a byte count, got '${text}'`);
  return Number(text.trim());
}

function decodeHeader(chunks: Uint8Array[], length: number): unknown {
  const bytes = Buffer.concat(chunks.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength)), length);
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw bad(`the JSON header (the first ${length} bytes of the body) is not valid JSON: ${(error as Error).message}`);
  }
}

/**
 * Teach `app` the binary body: an `application/octet-stream` parser that splits header and
 * bytes, and, for the routes that call `acceptBinaryBodies`, a request with the length header
 * but another content type (or none) is read the same way.
 */
export function registerBinaryBodies(app: FastifyInstance, bodyLimit: number): void {
  app.addContentTypeParser(BINARY_CONTENT_TYPE, (request, payload, done) => {
    let length: number | undefined;
    try {
      length = headerLength(request);
    } catch (error) {
      done(error as Error, undefined);
      return;
    }
    if (length === undefined) {
      payload.resume();
      done(bad(`an ${BINARY_CONTENT_TYPE} body needs the ${HEADER_LENGTH} header (the byte length of its JSON header)`), undefined);
      return;
    }
    const chunks: Uint8Array[] = [];
    let total = 0;
    let failed = false;
    payload.on('data', (chunk: Buffer) => {
      if (failed) return;
      total += chunk.byteLength;
      if (total > bodyLimit) {
        failed = true;
        const error = Object.assign(new Error('Request body is too large'), { code: 'FST_ERR_CTP_BODY_TOO_LARGE', statusCode: 413 });
        done(error, undefined);
        return;
      }
      chunks.push(chunk);
    });
    payload.on('error', (error) => {
      if (!failed) done(error, undefined);
      failed = true;
    });
    payload.on('end', () => {
      if (failed) return;
      if (length! > total) {
        done(bad(`the ${HEADER_LENGTH} header says ${length} bytes of JSON, the body has only ${total}`), undefined);
        return;
      }
      try {
        const parsed: ParsedBinaryBody = { header: decodeHeader(chunks, length!), binary: { chunks, offset: length!, length: total - length! } };
        done(null, parsed);
      } catch (error) {
        done(error as Error, undefined);
      }
    });
  });
}

/** Route hooks: read binary bodies whatever their content type, and hand the route the JSON header as its body. */
export const acceptBinaryBodies = {
  preParsing: async (request: FastifyRequest) => {
    if (request.headers[HEADER_LENGTH] !== undefined && request.headers['content-type'] !== BINARY_CONTENT_TYPE) {
      request.headers['content-type'] = BINARY_CONTENT_TYPE;
    }
  },
  preValidation: async (request: FastifyRequest) => {
    const body = request.body as ParsedBinaryBody | undefined;
    if (body && typeof body === 'object' && 'binary' in body && 'header' in body && request.headers['content-type'] === BINARY_CONTENT_TYPE) {
      binaryOf.set(request, body.binary);
      request.body = body.header;
    }
  },
};

/** One output to send: its JSON part (without data), and the bytes when it travels as binary. */
export interface OutputPart {
  json: Record<string, unknown>;
  bytes?: Uint8Array;
}

/** Send a KServe answer whose outputs may carry binary data. Without any, it is plain JSON. */
export function sendInferAnswer(reply: FastifyReply, answer: Record<string, unknown>, parts: OutputPart[]): FastifyReply | Record<string, unknown> {
  const binary = parts.filter((p) => p.bytes);
  const outputs = parts.map((p) => p.json);
  if (binary.length === 0) return { ...answer, outputs };
  const header = Buffer.from(JSON.stringify({ ...answer, outputs }), 'utf8');
  const body = Buffer.concat([header, ...binary.map((p) => p.bytes!)]);
  return reply.header('content-type', BINARY_CONTENT_TYPE).header(HEADER_LENGTH, String(header.byteLength)).send(body);
}
