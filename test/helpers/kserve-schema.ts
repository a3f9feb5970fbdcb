/**
 * JSON Schemas (draft-07) of the KServe resources deploy/kubernetes/kserve/ uses: there is no npm
 * package of KServe models, and the CRDs' own OpenAPI schemas are 170 KB of generated YAML each.
 *
 * Transcribed from KServe's Go API types (Apache-2.0, https://github.com/kserve/kserve):
 *   pkg/apis/serving/v1alpha1/servingruntime_types.go   ServingRuntimeSpec, SupportedModelFormat
 *   pkg/apis/serving/v1beta1/predictor.go, component.go  PredictorSpec, ComponentExtensionSpec
 *   pkg/apis/serving/v1beta1/predictor_model.go          ModelSpec, ModelFormat
 *   pkg/constants/constants.go                           InferenceServiceProtocol (v1, v2, grpc-v1, grpc-v2)
 * Stricter than the CRDs in one way: fields KServe does not know are errors here (the API server
 * would silently prune them). The Kubernetes types inside (containers, volumes, tolerations,
 * affinity, the model's container fields) are left open here and validated with kubernetes-models
 * by the test.
 */

const stringMap = { type: 'object', additionalProperties: { type: 'string' } };
const dnsSubdomain = { type: 'string', maxLength: 253, pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$' };
const metadata = { type: 'object', required: ['name'], properties: { name: dnsSubdomain, namespace: { type: 'string' }, labels: stringMap, annotations: stringMap } };
export const PROTOCOLS = ['v1', 'v2', 'grpc-v1', 'grpc-v2'];

/** The fields of corev1.Container a ModelSpec inlines (validated as a Container by the test). */
export const CONTAINER_FIELDS = [
  'name', 'image', 'command', 'args', 'workingDir', 'ports', 'envFrom', 'env', 'resources', 'resizePolicy', 'restartPolicy',
  'volumeMounts', 'volumeDevices', 'livenessProbe', 'readinessProbe', 'startupProbe', 'lifecycle', 'terminationMessagePath',
  'terminationMessagePolicy', 'imagePullPolicy', 'securityContext', 'stdin', 'stdinOnce', 'tty',
];

const servingRuntimePodSpec = {
  containers: { type: 'array', minItems: 1, items: { type: 'object' } },
  volumes: { type: 'array', items: { type: 'object' } },
  nodeSelector: stringMap,
  affinity: { type: 'object' },
  tolerations: { type: 'array', items: { type: 'object' } },
  labels: stringMap,
  annotations: stringMap,
  imagePullSecrets: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' } }, additionalProperties: false } },
  hostIPC: { type: 'boolean' },
};

export const clusterServingRuntimeSchema = {
  type: 'object',
  required: ['apiVersion', 'kind', 'metadata', 'spec'],
  additionalProperties: false,
  properties: {
    apiVersion: { const: 'serving.kserve.io/v1alpha1' },
    kind: { const: 'ClusterServingRuntime' },
    metadata,
    spec: {
      type: 'object',
      required: ['containers'],
      additionalProperties: false,
      properties: {
        supportedModelFormats: {
          type: 'array',
          items: {
            type: 'object',
            required: ['name'],
            additionalProperties: false,
            properties: { name: { type: 'string', minLength: 1 }, version: { type: 'string', pattern: '^\\d+(\\.\\d+){0,2}$' }, autoSelect: { type: 'boolean' }, priority: { type: 'integer', minimum: 1 } },
          },
        },
        multiModel: { type: 'boolean' },
        disabled: { type: 'boolean' },
        protocolVersions: { type: 'array', items: { enum: PROTOCOLS } },
        workerSpec: { type: 'object' },
        ...servingRuntimePodSpec,
        grpcEndpoint: { type: 'string' },
        grpcDataEndpoint: { type: 'string' },
        httpDataEndpoint: { type: 'string' },
        replicas: { type: 'integer', minimum: 0, maximum: 65535 },
        storageHelper: { type: 'object', additionalProperties: false, properties: { disabled: { type: 'boolean' } } },
        builtInAdapter: { type: 'object' },
      },
    },
  },
};

const componentExtension = {
  minReplicas: { type: 'integer', minimum: 0 },
  maxReplicas: { type: 'integer', minimum: 0 },
  scaleTarget: { type: 'integer' },
  scaleMetric: { enum: ['cpu', 'memory', 'concurrency', 'rps'] },
  containerConcurrency: { type: 'integer', minimum: 0 },
  timeout: { type: 'integer', minimum: 0 },
  canaryTrafficPercent: { type: 'integer', minimum: 0, maximum: 100 },
  logger: { type: 'object' },
  batcher: { type: 'object' },
  labels: stringMap,
  annotations: stringMap,
  deploymentStrategy: { type: 'object' },
};

const modelSpec = {
  type: 'object',
  required: ['modelFormat'],
  properties: {
    modelFormat: { type: 'object', required: ['name'], additionalProperties: false, properties: { name: { type: 'string', minLength: 1 }, version: { type: 'string' } } },
    runtime: { type: 'string' },
    storageUri: { type: 'string', pattern: '^(gs|s3|pvc|hdfs|webhdfs|hf|oci|https?)://' },
    runtimeVersion: { type: 'string' },
    protocolVersion: { enum: PROTOCOLS },
    storage: { type: 'object' },
  },
  // the rest are corev1.Container fields, validated as a Container by the test
  propertyNames: { enum: ['modelFormat', 'runtime', 'storageUri', 'runtimeVersion', 'protocolVersion', 'storage', ...CONTAINER_FIELDS] },
};

export const inferenceServiceSchema = {
  type: 'object',
  required: ['apiVersion', 'kind', 'metadata', 'spec'],
  additionalProperties: false,
  properties: {
    apiVersion: { const: 'serving.kserve.io/v1beta1' },
    kind: { const: 'InferenceService' },
    metadata,
    spec: {
      type: 'object',
      required: ['predictor'],
      additionalProperties: false,
      properties: {
        predictor: {
          type: 'object',
          // also the pod spec's fields (serviceAccountName, nodeSelector, ...): left open
          properties: { ...componentExtension, model: modelSpec },
        },
        transformer: { type: 'object' },
        explainer: { type: 'object' },
      },
    },
  },
};
