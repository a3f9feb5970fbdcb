/** KServe v2 raw-tensor inference: POST /v2/models/:name/infer. */
import type { FastifyInstance } from 'fastify';

import type { ServerContext } from '../context.js';
import { type Body, inferTensors } from '../kserve-infer.js';
import { errors } from '../request-outcome.js';
import { InferResponse, KServeInferRequest, ModelName } from '../schemas.js';

export async function inferRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  app.post(
    '/v2/models/:name/infer',
    {
      config: { write: false },
      schema: {
        tags: ['kserve-v2'],
        summary: 'KServe v2 inference',
        params: ModelName,
        body: KServeInferRequest,
        response: { 200: InferResponse, ...errors },
      },
    },
    async (request, reply) => {
      const { name } = request.params as { name: string };
      return inferTensors(ctx, name, request.body as Body, request, reply);
    },
  );
}
