/**
 * The model folder's manifest, atenspace.json, as written by the exporter (fields are
 * documented in models/README.md). Checked once, when it is read: the common fields and every
 * task section present (embedding, generation, tokenizer, image), so everything after this
 * reads typed sections instead of casting. Extra fields pass through.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { Type, type Static, type TSchema } from 'typebox';
import { Value } from 'typebox/value';

import { DEFAULT_VERSION_POLICY, type VersionPolicy, VersionPolicySchema } from './version-policy.js';
import { DTYPES } from '../runtime/index.js';

export const MANIFEST_FILE = 'atenspace.json';
export const TASKS = ['embedding', 'text-generation', 'image-classification', 'object-detection'] as const;
export type Task = (typeof TASKS)[number];

const TensorSpec = Type.Object({
  name: Type.String({ minLength: 1 }),
  dtype: Type.Union(DTYPES.map((d) => Type.Literal(d))),
  shape: Type.Array(Type.Integer({ minimum: -1 })),
  /** Exported bounds of each dimension (a .pt2 export): sizes outside them are refused before the forward. */
  min_shape: Type.Optional(Type.Array(Type.Integer({ minimum: 0 }))),
  max_shape: Type.Optional(Type.Array(Type.Integer({ minimum: 0 }))),
});
export type TensorSpec = Static<typeof TensorSpec>;

const Open = { additionalProperties: true } as const;

/** `embedding`: how the hidden states become one vector. */
export const EmbeddingSection = Type.Object(
  { pooling: Type.Union([Type.Literal('mean'), Type.Literal('cls')]), normalize: Type.Boolean(), dimension: Type.Integer({ minimum: 1 }) },
  Open,
);
export type EmbeddingSection = Static<typeof EmbeddingSection>;

/** `generation.past_key_values`: the incremental-decoding module, when it was exported. */
export const PastKeyValuesSection = Type.Object(
  {
    file: Type.String({ minLength: 1 }),
    file_bytes: Type.Optional(Type.Integer({ minimum: 0 })),
    n_layer: Type.Integer({ minimum: 1 }),
    n_head: Type.Integer({ minimum: 1 }),
    head_dim: Type.Integer({ minimum: 1 }),
    dtype: Type.Optional(Type.String()),
  },
  Open,
);
export type PastKeyValuesSection = Static<typeof PastKeyValuesSection>;

export const GenerationSection = Type.Object(
  {
    vocab_size: Type.Integer({ minimum: 1 }),
    context_length: Type.Integer({ minimum: 2 }),
    bos_token_id: Type.Optional(Type.Union([Type.Integer({ minimum: 0 }), Type.Null()])),
    eos_token_id: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]),
    pad_token_id: Type.Optional(Type.Union([Type.Integer({ minimum: 0 }), Type.Null()])),
    position_ids: Type.Optional(Type.String()),
    past_key_values: Type.Union([Type.Literal(false), PastKeyValuesSection]),
  },
  Open,
);
export type GenerationSection = Static<typeof GenerationSection>;

export const TokenizerSection = Type.Object(
  {
    file: Type.Optional(Type.String({ minLength: 1 })),
    max_length: Type.Optional(Type.Integer({ minimum: 1 })),
    pad_token: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    pad_token_id: Type.Optional(Type.Union([Type.Integer({ minimum: 0 }), Type.Null()])),
    add_special_tokens: Type.Optional(Type.Boolean()),
    /** Jinja chat template (from the tokenizer's config), rendered for chat requests. */
    chat_template: Type.Optional(Type.String({ minLength: 1 })),
    bos_token: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    eos_token: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  },
  Open,
);
export type TokenizerSection = Static<typeof TokenizerSection>;

const Triple = Type.Array(Type.Number(), { minItems: 3, maxItems: 3 });
export const ImageSection = Type.Object(
  {
    resize: Type.Union([Type.Literal('fixed'), Type.Literal('shortest_edge')]),
    height: Type.Optional(Type.Integer({ minimum: 1 })),
    width: Type.Optional(Type.Integer({ minimum: 1 })),
    shortest_edge: Type.Optional(Type.Integer({ minimum: 1 })),
    longest_edge: Type.Optional(Type.Integer({ minimum: 1 })),
    multiple_of: Type.Optional(Type.Integer({ minimum: 1 })),
    resample: Type.Union([Type.Literal('nearest'), Type.Literal('bilinear'), Type.Literal('bicubic')]),
    do_resize: Type.Boolean(),
    do_rescale: Type.Boolean(),
    rescale_factor: Type.Optional(Type.Number()),
    do_normalize: Type.Boolean(),
    image_mean: Type.Optional(Triple),
    image_std: Type.Optional(Triple),
    do_pad: Type.Optional(Type.Boolean()),
  },
  Open,
);
export type ImageSection = Static<typeof ImageSection>;

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
    /** `torchscript` (model.pt; the default when absent) or `pt2` (AOTInductor package, model.pt2). */
    model_format: Type.Optional(Type.Union([Type.Literal('torchscript'), Type.Literal('pt2')])),
    file: Type.String({ minLength: 1 }),
    inputs: Type.Array(TensorSpec, { minItems: 1 }),
    outputs: Type.Array(TensorSpec, { minItems: 1 }),
    max_batch_size: Type.Integer({ minimum: 1 }),
    max_sequence_length: Type.Optional(Type.Integer({ minimum: 1 })),
    file_bytes: Type.Optional(Type.Integer({ minimum: 0 })),
    parameters: Type.Optional(Type.Integer({ minimum: 0 })),
    source: Type.Optional(Type.Unknown()),
    embedding: Type.Optional(Type.Union([EmbeddingSection, Type.Null()])),
    generation: Type.Optional(Type.Union([GenerationSection, Type.Null()])),
    tokenizer: Type.Optional(Type.Union([TokenizerSection, Type.Null()])),
    image: Type.Optional(Type.Union([ImageSection, Type.Null()])),
    labels: Type.Optional(Type.Union([Type.Array(Type.String()), Type.Null()])),
  },
  Open,
);
export type Manifest = Static<typeof ManifestSchema> & Record<string, unknown>;

export class ManifestError extends Error {
  readonly code = 'BAD_MANIFEST';
}

/** The first schema error as `/path: message`. */
function firstError(schema: TSchema, value: unknown): string {
  const first = [...Value.Errors(schema, value)][0];
  return first ? `${first.instancePath || '/'}: ${first.message}` : 'invalid';
}

/** Check a parsed manifest; throws ManifestError naming the field. `where` names the file. */
export function checkManifest(value: unknown, where: string): Manifest {
  if (!Value.Check(ManifestSchema, value)) throw new ManifestError(`${where} is not a valid manifest (${firstError(ManifestSchema, value)})`);
  return value as Manifest;
}

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
  return checkManifest(value, path);
}

/** The model has no section for the task asked of it (raw tensors still work). */
export class MissingSectionError extends Error {
  readonly code = 'BAD_INPUT';
}

/**
 * A task's section (already checked against its schema when the manifest was read). A model
 * exported for raw tensors only may lack it: then the task cannot be served, a 400.
 */
export function sectionOf<K extends 'embedding' | 'generation' | 'tokenizer' | 'image'>(manifest: Manifest, key: K): NonNullable<Manifest[K]> {
  const section = manifest[key];
  if (section === undefined || section === null) throw new MissingSectionError(`model '${manifest.name}' has no ${key} section in its manifest`);
  return section as NonNullable<Manifest[K]>;
}

export const SERVING_FILE = 'serving.json';

const ServingSchema = Type.Object(
  {
    max_batch_size: Type.Optional(Type.Integer({ minimum: 1 })),
    max_queue_delay_ms: Type.Optional(Type.Number({ minimum: 0, maximum: 10000 })),
    instances: Type.Optional(Type.Integer({ minimum: 1, maximum: 64 })),
    max_queue_size: Type.Optional(Type.Integer({ minimum: 1 })),
    version_policy: Type.Optional(VersionPolicySchema),
  },
  { additionalProperties: false },
);

async function readServingFile(folder: string): Promise<Static<typeof ServingSchema>> {
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
    throw new ManifestError(
      `${path}: ${first ? `${first.instancePath || '/'} ${first.message}` : 'invalid'} (fields: max_batch_size, max_queue_delay_ms, instances, max_queue_size, version_policy)`,
    );
  }
  return value as Static<typeof ServingSchema>;
}

/**
 * Per-model serving settings from the model folder's optional serving.json (written by the
 * operator, not the exporter); they override the server-wide settings for this model.
 */
export async function readServingOverrides(folder: string): Promise<{ maxBatchSize?: number; maxQueueDelayMs?: number; instances?: number; maxQueueSize?: number }> {
  const v = await readServingFile(folder);
  return {
    ...(v.max_batch_size !== undefined ? { maxBatchSize: v.max_batch_size } : {}),
    ...(v.max_queue_delay_ms !== undefined ? { maxQueueDelayMs: v.max_queue_delay_ms } : {}),
    ...(v.instances !== undefined ? { instances: v.instances } : {}),
    ...(v.max_queue_size !== undefined ? { maxQueueSize: v.max_queue_size } : {}),
  };
}

/** The model's version policy from its serving.json; the latest version alone by default. */
export async function readVersionPolicy(modelFolder: string): Promise<VersionPolicy> {
  return (await readServingFile(modelFolder)).version_policy ?? DEFAULT_VERSION_POLICY;
}
