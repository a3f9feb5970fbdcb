/** Liveness, readiness (start-up models loaded and warm), KServe v2 server metadata, metrics. */
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';

import type { ServerContext } from '../context.js';

const Status = Type.Object({ status: Type.String() });

export async function healthRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  // Ready once the start-up models are loaded and warm; a later lazy load or reload of one model
  // does not take the whole server out of rotation. Not ready again once shutting down.
  const ready = () => ctx.startupDone() && !ctx.registry.closing;
  const open = { public: true };

  app.get('/health/live', { config: open, schema: { tags: ['health'], summary: 'The process is up', response: { 200: Status } } }, async () => ({ status: 'live' }));
  app.get(
    '/health/ready',
    { config: open, schema: { tags: ['health'], summary: 'Start-up models are loaded and warm', response: { 200: Status, 503: Status } } },
    async (_request, reply) => (ready() ? { status: 'ready' } : reply.status(503).send({ status: 'starting' })),
  );
  app.get('/v2/health/live', { config: open, schema: { tags: ['kserve-v2'], summary: 'Server liveness', response: { 200: Type.Object({ live: Type.Boolean() }) } } }, async () => ({ live: true }));
  app.get(
    '/v2/health/ready',
    { config: open, schema: { tags: ['kserve-v2'], summary: 'Server readiness: 200 when ready', response: { 200: Type.Object({ ready: Type.Boolean() }), 503: Type.Object({ ready: Type.Boolean() }) } } },
    async (_request, reply) => reply.status(ready() ? 200 : 503).send({ ready: ready() }),
  );
  app.get(
    '/v2',
    { schema: { tags: ['kserve-v2'], summary: 'Server metadata', response: { 200: Type.Object({ name: Type.String(), version: Type.String(), extensions: Type.Array(Type.String()) }) } } },
    async () => ({ name: 'atenspace-serve', version: '0.1.0', extensions: ['model_repository', 'binary_tensor_data'] }),
  );
  app.get(
    '/metrics',
    { config: { alwaysServe: true }, schema: { tags: ['health'], summary: 'Prometheus metrics', produces: ['text/plain'], response: { 200: Type.String() } } },
    async (_request, reply) => {
      void reply.header('content-type', ctx.metrics.registry.contentType);
      return ctx.metrics.registry.metrics();
    },
  );
}
