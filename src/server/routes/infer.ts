/**
 * KServe v2 raw-tensor inference: POST /v2/models/:name/infer and
 * /v2/models/:name/versions/:version/infer, with JSON tensors or the binary tensor data extension.
 */
import type { FastifyInstance } from 'fastify';

import type { ServerContext } from '../context.js';
import { acceptBinaryBodies, BINARY_CONTENT_TYPE, registerBinaryBodies } from '../kserve-binary.js';
import { type Body, inferTensors } from '../kserve-infer.js';
import { errors } from '../request-outcome.js';
import { InferResponse, KServeInferRequest, ModelName, ModelVersion } from '../schemas.js';

const BINARY_NOTE = [
  '',
  `Binary tensor data extension: send \`${BINARY_CONTENT_TYPE}\` with the \`Inference-Header-Content-Length\` header giving the byte length of the JSON header;`,
  'inputs with `parameters.binary_data_size` take their bytes (little-endian, row-major) from after it, in input order.',
  'Outputs come back as bytes with `parameters.binary_data_output: true` or an output\'s `parameters.binary_data: true`: the answer is then',
  `\`${BINARY_CONTENT_TYPE}\`, its JSON header as long as the \`Inference-Header-Content-Length\` response header says, then the outputs' bytes.`,
].join('\n');

export async function inferRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  registerBinaryBodies(app, ctx.config.bodyLimit);
  const consumes = ['application/json', BINARY_CONTENT_TYPE];
  const produces = ['application/json', BINARY_CONTENT_TYPE];

  app.post(
    '/v2/models/:name/infer',
    {
      config: { write: false },
      ...acceptBinaryBodies,
      schema: {
        tags: ['kserve-v2'],
        summary: "KServe v2 inference (the model's default version)",
        description: `Runs the newest ready version of the model.${BINARY_NOTE}`,
        consumes,
        produces,
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

  app.post(
    '/v2/models/:name/versions/:version/infer',
    {
      config: { write: false },
      ...acceptBinaryBodies,
      schema: {
        tags: ['kserve-v2'],
        summary: 'KServe v2 inference on one version of a model',
        description: `Runs the version named in the path; it must be loaded (or LAZY_LOAD on).${BINARY_NOTE}`,
        consumes,
        produces,
        params: ModelVersion,
        body: KServeInferRequest,
        response: { 200: InferResponse, ...errors },
      },
    },
    async (request, reply) => {
      const { name, version } = request.params as { name: string; version: string };
      return inferTensors(ctx, name, request.body as Body, request, reply, version);
    },
  );
}
