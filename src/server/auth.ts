/**
 * Optional bearer API key: writes (load, unload, atom changes) need it; reads, inference
 * included, need it only when AUTH_READS is on; health probes never do.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

import type { FastifyInstance } from 'fastify';

import { HttpError } from './http-errors.js';

/** Constant-time, length included: both sides are hashed to 32 bytes before comparing. */
function same(given: string, key: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(given), digest(key));
}

/** Whether an `Authorization` value is `Bearer <apiKey>` (HTTP's header, gRPC's metadata). */
export function bearerMatches(header: string | undefined, apiKey: string): boolean {
  const match = /^Bearer\s+(.+)$/i.exec(header ?? '');
  return match !== null && same(match[1]!.trim(), apiKey);
}

export function registerAuth(app: FastifyInstance, apiKey: string | undefined, authReads: boolean): void {
  if (!apiKey) return;
  app.addHook('onRequest', async (request) => {
    const config = request.routeOptions.config;
    if (config.public) return;
    // Routes say whether they write; by default anything but GET/HEAD/OPTIONS does.
    const isWrite = config.write ?? !['GET', 'HEAD', 'OPTIONS'].includes(request.method);
    if (!isWrite && !authReads) return;
    if (!bearerMatches(request.headers.authorization, apiKey)) {
      throw new HttpError(401, 'UNAUTHORIZED', 'this endpoint needs Authorization: Bearer <API_KEY>');
    }
  });
}
