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

export function registerAuth(app: FastifyInstance, apiKey: string | undefined, authReads: boolean): void {
  if (!apiKey) return;
  app.addHook('onRequest', async (request) => {
    const config = request.routeOptions.config;
    if (config.public) return;
    // Routes say whether they write; by default anything but GET/HEAD/OPTIONS does.
    const isWrite = config.write ?? !['GET', 'HEAD', 'OPTIONS'].includes(request.method);
    if (!isWrite && !authReads) return;
    const header = request.headers.authorization ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header);
    if (!match || !same(match[1]!.trim(), apiKey)) {
      throw new HttpError(401, 'UNAUTHORIZED', 'this endpoint needs Authorization: Bearer <API_KEY>');
    }
  });
}
