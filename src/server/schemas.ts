/** TypeBox schemas shared by the routes; they validate requests and generate the OpenAPI spec. */
import { Type, type Static } from 'typebox';

import { DATATYPES } from './kserve-tensors.js';

export const ErrorResponse = Type.Object(
  {
    error: Type.String({ description: 'what went wrong' }),
    code: Type.String({ description: 'machine-readable code, e.g. BAD_INPUT, LIMIT_EXCEEDED' }),
    limit: Type.Optional(Type.String({ description: 'with LIMIT_EXCEEDED: the setting that was exceeded, e.g. MAX_TEXTS_PER_REQUEST' })),
  },
  { description: 'Error' },
);

const Datatype = Type.Union(DATATYPES.map((d) => Type.Literal(d)), { description: 'KServe v2 datatype' });

export const InferInputTensor = Type.Object(
  {
    name: Type.String({ minLength: 1 }),
    shape: Type.Array(Type.Integer({ minimum: 0 }), { maxItems: 8 }),
    datatype: Type.String({ description: `one of ${DATATYPES.join(', ')}` }),
    data: Type.Optional(Type.Array(Type.Unknown(), { description: 'row-major values, flat or nested; absent when the tensor travels as binary data' })),
    parameters: Type.Optional(
      Type.Object(
        { binary_data_size: Type.Optional(Type.Integer({ minimum: 0, description: 'binary tensor data extension: the tensor is this many raw bytes in the body after the JSON header' })) },
        { additionalProperties: true },
      ),
    ),
  },
  {},
);

export const InferOutputTensor = Type.Object(
  {
    name: Type.String(),
    shape: Type.Array(Type.Integer()),
    datatype: Datatype,
    data: Type.Optional(Type.Array(Type.Union([Type.Number(), Type.Boolean()]), { description: 'absent when the output travels as binary data' })),
    parameters: Type.Optional(Type.Object({ binary_data_size: Type.Optional(Type.Integer({ description: 'the output is this many raw bytes after the JSON header' })) })),
  },
  {},
);

export const InferParameters = Type.Object(
  {
    timeout: Type.Optional(Type.Integer({ minimum: 1, description: 'deadline in microseconds, as in Triton: past it the request is dropped (504)' })),
    binary_data_output: Type.Optional(Type.Boolean({ description: 'binary tensor data extension: send every output as raw bytes unless the output says otherwise' })),
  },
  { additionalProperties: true },
);

const RequestedOutput = Type.Object({
  name: Type.String(),
  parameters: Type.Optional(
    Type.Object({ binary_data: Type.Optional(Type.Boolean({ description: 'send this output as raw bytes after the JSON header' })) }, { additionalProperties: true }),
  ),
});

const kserveRequestFields = {
  id: Type.Optional(Type.String()),
  parameters: Type.Optional(InferParameters),
  inputs: Type.Array(InferInputTensor, { minItems: 1 }),
  outputs: Type.Optional(Type.Array(RequestedOutput)),
};

const exampleInputs = [
  { name: 'input_ids', shape: [1, 4], datatype: 'INT64', data: [2, 45, 67, 3] },
  { name: 'attention_mask', shape: [1, 4], datatype: 'INT64', data: [1, 1, 1, 1] },
  { name: 'token_type_ids', shape: [1, 4], datatype: 'INT64', data: [0, 0, 0, 0] },
];

/** KServe v2 inference request (the model is in the path). */
export const KServeInferRequest = Type.Object(kserveRequestFields, { examples: [{ inputs: exampleInputs }] });
export type KServeInferRequest = Static<typeof KServeInferRequest>;

/** The same with the model named in the body, for POST /infer. */
export const InferRequest = Type.Object(
  {
    model: Type.String({ minLength: 1, description: 'model name' }),
    version: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,17}$', description: "a version of the model; its newest ready version when absent" })),
    ...kserveRequestFields,
  },
  { title: 'raw-tensor request', examples: [{ model: 'demo-embedder', inputs: exampleInputs }] },
);
export type InferRequest = Static<typeof InferRequest>;

export const InferResponse = Type.Object(
  {
    model_name: Type.String(),
    model_version: Type.Optional(Type.String()),
    id: Type.Optional(Type.String()),
    outputs: Type.Array(InferOutputTensor),
  },
  {},
);

const TensorMetadata = Type.Object({ name: Type.String(), datatype: Datatype, shape: Type.Array(Type.Integer()) });

export const ModelDescription = Type.Object(
  {
    name: Type.String(),
    task: Type.Union([Type.String(), Type.Null()]),
    state: Type.Union(['unloaded', 'loading', 'ready', 'failed'].map((s) => Type.Literal(s))),
    error: Type.Optional(Type.String({ description: 'why the model failed to load' })),
    version: Type.String({ description: 'the default version: where requests without a version go' }),
    version_policy: Type.String({ description: "which versions are served, in Triton's words: latest N, all, specific" }),
    versions: Type.Array(
      Type.Object({
        version: Type.String(),
        state: Type.Union(['unloaded', 'loading', 'ready', 'failed'].map((s) => Type.Literal(s))),
        served: Type.Boolean({ description: 'named by the version policy' }),
        error: Type.Optional(Type.String()),
      }),
    ),
    device: Type.String(),
    weights: Type.Union([Type.String(), Type.Null()], { description: 'pretrained or random-init' }),
    dtype: Type.Union([Type.String(), Type.Null()]),
    quantization: Type.Union([Type.String(), Type.Null()]),
    inputs: Type.Array(TensorMetadata),
    outputs: Type.Array(TensorMetadata),
    max_batch_size: Type.Union([Type.Integer(), Type.Null()]),
    serving: Type.Union([
      Type.Object({ max_batch_size: Type.Integer(), max_queue_delay_ms: Type.Number(), instances: Type.Integer(), max_queue_size: Type.Integer() }),
      Type.Null(),
    ]),
    stats: Type.Object({
      requests: Type.Integer(),
      failures: Type.Integer(),
      inferences: Type.Integer(),
      executions: Type.Integer(),
      queue_depth: Type.Integer(),
      last_used: Type.Union([Type.String(), Type.Null()]),
      load_seconds: Type.Union([Type.Number(), Type.Null()]),
    }),
  },
  {},
);

export const ModelName = Type.Object({ name: Type.String({ minLength: 1, maxLength: 128 }) });
export const ModelVersion = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 128 }),
  version: Type.String({ pattern: '^[1-9][0-9]{0,17}$', description: 'a version number' }),
});
