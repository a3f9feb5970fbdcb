/**
 * The gRPC services' definitions, loaded at run time from the .proto files: the KServe v2
 * inference service (proto/grpc_predict_v2.proto, kept in this repository) and gRPC's standard
 * health service (shipped by grpc-health-check). Both are also what reflection describes.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { type GrpcObject, loadPackageDefinition, type ServiceClientConstructor } from '@grpc/grpc-js';
import { loadSync, type Options, type PackageDefinition } from '@grpc/proto-loader';

const require = createRequire(import.meta.url);

/** proto/ at the repository root (from src/server/grpc, or dist/src/server/grpc once built). */
function protoDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    dir = dirname(dir);
    if (existsSync(join(dir, 'proto', 'grpc_predict_v2.proto'))) return join(dir, 'proto');
  }
  throw new Error('proto/grpc_predict_v2.proto not found above ' + fileURLToPath(import.meta.url));
}

export const PREDICT_PROTO = join(protoDir(), 'grpc_predict_v2.proto');
export const HEALTH_PROTO: string = (require('grpc-health-check') as { protoPath: string }).protoPath;

/**
 * Field names as in the .proto (snake_case); int64 as JS numbers (values past 2^53 are refused
 * as in JSON); every field present with its default; oneofs name the field that is set.
 */
export const LOADER_OPTIONS: Options = { keepCase: true, longs: Number, enums: String, defaults: true, arrays: true, oneofs: true };

export const packageDefinition: PackageDefinition = loadSync([PREDICT_PROTO, HEALTH_PROTO], LOADER_OPTIONS);

const loaded = loadPackageDefinition(packageDefinition) as GrpcObject & { inference: { GRPCInferenceService: ServiceClientConstructor } };

export const inferenceService = loaded.inference.GRPCInferenceService.service;
export const INFERENCE_SERVICE_NAME = 'inference.GRPCInferenceService';
