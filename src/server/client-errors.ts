/**
 * Errors Node's HTTP parser raises before Fastify sees a request (headers too large, malformed
 * HTTP, a client too slow to send its headers): the same `{error, code}` JSON as every other
 * 4xx, and `Connection: close`, so a keep-alive client does not send its next request into a
 * socket that is about to close (Fastify's default answer omits it).
 */
import type { Socket } from 'node:net';

const ANSWERS: Record<string, [number, string, string, string]> = {
  HPE_HEADER_OVERFLOW: [431, 'Request Header Fields Too Large', 'HEADERS_TOO_LARGE', 'the request line and headers are larger than the server accepts (16 KiB)'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'Request Timeout', 'REQUEST_TIMEOUT', 'the request was not received in time'],
};

export function clientErrorHandler(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, reason, code, message] = ANSWERS[error.code ?? ''] ?? [400, 'Bad Request', 'BAD_HTTP', `malformed HTTP request (${error.code ?? error.message})`];
  const body = JSON.stringify({ error: message, code });
  if (!socket.writable) {
    socket.destroy(error);
    return;
  }
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`, () => socket.destroy());
}
