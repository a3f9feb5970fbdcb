/** Model listing, load and unload: /models and the KServe v2 model/repository routes. */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { Type } from 'typebox';

import type { ServerContext } from '../context.js';
import { describeModel } from '../describe-model.js';
import { modelMetadata } from '../kserve-metadata.js';
import { deviceMemory } from '../device-memory.js';
import { ErrorResponse, ModelDescription, ModelName, ModelVersion } from '../schemas.js';

const KServeModelMetadata = Type.Object({
  name: Type.String(),
  versions: Type.Array(Type.String()),
  platform: Type.String(),
  inputs: Type.Array(Type.Object({ name: Type.String(), datatype: Type.String(), shape: Type.Array(Type.Integer()) })),
  outputs: Type.Array(Type.Object({ name: Type.String(), datatype: Type.String(), shape: Type.Array(Type.Integer()) })),
});

const RepositoryIndexEntry = Type.Object({ name: Type.String(), version: Type.Optional(Type.String()), state: Type.String(), reason: Type.Optional(Type.String()) });

export async function modelRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  const { registry, config } = ctx;
  const describe = (name: string) => describeModel(registry.get(name)!, registry, config.device);

  app.get(
    '/models',
    {
      schema: {
        tags: ['models'],
        summary: 'List every model in the repository, and CUDA device memory',
        response: {
          200: Type.Object({
            models: Type.Array(ModelDescription),
            devices: Type.Array(Type.Object({ device: Type.String(), allocated: Type.Number(), reserved: Type.Number() }), {
              description: "CUDA caching allocator bytes per device (empty without CUDA)",
            }),
          }),
        },
      },
    },
    async () => {
      await registry.refresh();
      return { models: registry.list().map((e) => describe(e.name)), devices: deviceMemory() };
    },
  );

  app.get(
    '/models/:name',
    { schema: { tags: ['models'], summary: 'Describe one model', params: ModelName, response: { 200: ModelDescription, 404: ErrorResponse } } },
    async (request) => {
      const { name } = request.params as { name: string };
      await registry.find(name);
      return describe(name);
    },
  );

  const loadSchema = (summary: string) => ({
    tags: ['models'],
    summary,
    params: ModelName,
    response: { 200: ModelDescription, 401: ErrorResponse, 404: ErrorResponse, 503: ErrorResponse },
  });

  app.post('/models/:name/load', { config: { write: true }, schema: loadSchema('Load a model: its served versions (version policy), warmed up; then unload the versions it no longer serves, after they drain (a rollout)') }, async (request) => {
    const { name } = request.params as { name: string };
    await registry.load(name);
    return describe(name);
  });

  app.post('/models/:name/unload', { config: { write: true }, schema: loadSchema('Unload a model (every version) after its queues drain') }, async (request) => {
    const { name } = request.params as { name: string };
    await registry.unload(name);
    return describe(name);
  });

  // KServe v2 model metadata and readiness, of the default version or of one version.
  const metadata = (name: string, version?: string) => modelMetadata(ctx, name, version);
  const readiness = async (name: string, version: string | undefined, reply: FastifyReply) => {
    const entry = await registry.find(name, version);
    const ready = entry.state === 'ready';
    if (ready) return { ready };
    // Triton answers 400 for a model that is not ready; the body says why, as every 4xx does.
    const which = version !== undefined ? ` version ${version}` : '';
    return reply.status(400).send({ ready, error: `model '${entry.name}'${which} is ${entry.state}${entry.error ? `: ${entry.error}` : ''}`, code: 'MODEL_NOT_READY' });
  };
  const readyResponse = { 200: Type.Object({ ready: Type.Boolean() }), 400: Type.Object({ ready: Type.Optional(Type.Boolean({ description: 'false: the model is not ready (absent when the request itself is bad)' })), error: Type.String(), code: Type.String() }), 404: ErrorResponse };

  app.get(
    '/v2/models/:name',
    { schema: { tags: ['kserve-v2'], summary: 'Model metadata (versions: the served ones)', params: ModelName, response: { 200: KServeModelMetadata, 404: ErrorResponse } } },
    async (request) => metadata((request.params as { name: string }).name),
  );
  app.get(
    '/v2/models/:name/versions/:version',
    { schema: { tags: ['kserve-v2'], summary: 'Metadata of one version of a model', params: ModelVersion, response: { 200: KServeModelMetadata, 404: ErrorResponse } } },
    async (request) => {
      const { name, version } = request.params as { name: string; version: string };
      return metadata(name, version);
    },
  );

  app.get(
    '/v2/models/:name/ready',
    { schema: { tags: ['kserve-v2'], summary: 'Model readiness (its default version): 200 when ready, 400 otherwise', params: ModelName, response: readyResponse } },
    async (request, reply) => readiness((request.params as { name: string }).name, undefined, reply),
  );
  app.get(
    '/v2/models/:name/versions/:version/ready',
    { schema: { tags: ['kserve-v2'], summary: 'Readiness of one version of a model: 200 when ready, 400 otherwise', params: ModelVersion, response: readyResponse } },
    async (request, reply) => {
      const { name, version } = request.params as { name: string; version: string };
      return readiness(name, version, reply);
    },
  );

  // KServe v2 repository extension.
  app.post(
    '/v2/repository/index',
    { config: { write: false }, schema: { tags: ['kserve-v2'], summary: 'Repository index', response: { 200: Type.Array(RepositoryIndexEntry) } } },
    async () => {
      await registry.refresh();
      return registry.list().flatMap((d) =>
        registry.versionsOf(d.name).map(({ entry: e }) => ({
          name: e.name,
          version: e.version,
          state: e.state === 'ready' ? 'READY' : e.state === 'loading' ? 'LOADING' : e.state === 'failed' ? 'UNAVAILABLE' : 'UNLOADED',
          ...(e.error ? { reason: e.error } : {}),
        })),
      );
    },
  );

  const ok = Type.Object({});
  app.post(
    '/v2/repository/models/:name/load',
    { config: { write: true }, schema: { tags: ['kserve-v2'], summary: 'Load a model', params: ModelName, response: { 200: ok, 401: ErrorResponse, 404: ErrorResponse, 503: ErrorResponse } } },
    async (request) => {
      await registry.load((request.params as { name: string }).name);
      return {};
    },
  );
  app.post(
    '/v2/repository/models/:name/unload',
    { config: { write: true }, schema: { tags: ['kserve-v2'], summary: 'Unload a model', params: ModelName, response: { 200: ok, 401: ErrorResponse, 404: ErrorResponse } } },
    async (request) => {
      await registry.unload((request.params as { name: string }).name);
      return {};
    },
  );
}

/** Allocated and reserved bytes of each CUDA device, as the caching allocator reports them. */
