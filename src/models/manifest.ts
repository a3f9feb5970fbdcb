/**
 * The model folder's manifest, atenspace.json, as written by the exporter (fields are
 * documented in models/README.md). Only what the server relies on is checked strictly;
 * extra fields pass through.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { Type, type Static } from 'typebox';
import { Value } from 'typebox/value';

import { DTYPES } from '../runtime/index.js';

export const MANIFEST_FILE = 'atenspace.json';
export const TASKS = ['embedding', 'text-generation', 'image-classification', 'object-detection'] as const;
export type Task = (typeof TASKS)[number];

const TensorSpec = Type.Object({
  name: Type.String({ minLength: 1 }),
  dtype: Type.Union(DTYPES.map((d) => Type.Literal(d))),
  shape: Type.Array(Type.Integer({ minimum: -1 })),
});
export type TensorSpec = Static<typeof TensorSpec>;

export const ManifestSchema = Type.Object(
  {
    format: Type.Literal(1),
    name: Type.String({ minLength: 1 }),
    task: Type.Union(TASKS.map((t) => Type.Literal(t))),
    architecture: Type.String(),
    model_type: Type.Optional(Type.String()),
    weights: Type.Union([Type.Literal('pretrained'), Type.Literal('random-init')]),
    dtype: Type.String(),
    quantization: Type.Union([Type.String(), Type.Null()]),
    file: Type.String({ minLength: 1 }),
    inputs: Type.Array(TensorSpec, { minItems: 1 }),
    outputs: Type.Array(TensorSpec, { minItems: 1 }),
    max_batch_size: Type.Integer({ minimum: 1 }),
    max_sequence_length: Type.Optional(Type.Integer({ minimum: 1 })),
    file_bytes: Type.Optional(Type.Integer({ minimum: 0 })),
    parameters: Type.Optional(Type.Integer({ minimum: 0 })),
    source: Type.Optional(Type.Unknown()),
    image: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    labels: Type.Optional(Type.Array(Type.String())),
  },
  { additionalProperties: true },
);
export type Manifest = Static<typeof ManifestSchema> & Record<string, unknown>;

export class ManifestError extends Error {}

/** Read and check `folder/atenspace.json`. Throws ManifestError naming the problem. */
export async function readManifest(folder: string): Promise<Manifest> {
  const path = join(folder, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ManifestError(`cannot read ${path}: ${(error as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ManifestError(`${path} is not valid JSON: ${(error as Error).message}`);
  }
  if (!Value.Check(ManifestSchema, value)) {
    const first = [...Value.Errors(ManifestSchema, value)][0];
    const where = first ? `${first.instancePath || '/'}: ${first.message}` : 'invalid';
    throw new ManifestError(`${path} is not a valid manifest (${where})`);
  }
  return value as Manifest;
}

export const SERVING_FILE = 'serving.json';

const ServingSchema = Type.Object(
  {
    max_batch_size: Type.Optional(Type.Integer({ minimum: 1 })),
    max_queue_delay_ms: Type.Optional(Type.Number({ minimum: 0, maximum: 10000 })),
    instances: Type.Optional(Type.Integer({ minimum: 1, maximum: 64 })),
    max_queue_size: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);

/**
 * Per-model serving settings from the folder's optional serving.json (written by the
 * operator, not the exporter); they override the server-wide settings for this model.
 */
export async function readServingOverrides(folder: string): Promise<{ maxBatchSize?: number; maxQueueDelayMs?: number; instances?: number; maxQueueSize?: number }> {
  const path = join(folder, SERVING_FILE);
  if (!existsSync(path)) return {};
  let value: unknown;
  try {
    value = JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    throw new ManifestError(`${path} is not valid JSON: ${(error as Error).message}`);
  }
  if (!Value.Check(ServingSchema, value)) {
    const first = [...Value.Errors(ServingSchema, value)][0];
    throw new ManifestError(`${path}: ${first ? `${first.instancePath || '/'} ${first.message}` : 'invalid'} (fields: max_batch_size, max_queue_delay_ms, instances, max_queue_size)`);
  }
  const v = value as Static<typeof ServingSchema>;
  return {
    ...(v.max_batch_size !== undefined ? { maxBatchSize: v.max_batch_size } : {}),
    ...(v.max_queue_delay_ms !== undefined ? { maxQueueDelayMs: v.max_queue_delay_ms } : {}),
    ...(v.instances !== undefined ? { instances: v.instances } : {}),
    ...(v.max_queue_size !== undefined ? { maxQueueSize: v.max_queue_size } : {}),
  };
}
