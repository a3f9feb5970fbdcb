/**
 * The gRPC server on GRPC_PORT: the KServe v2 inference service, gRPC's standard health service
 * (grpc.health.v1, what Kubernetes gRPC probes call) and server reflection, over the HTTP
 * server's context. Messages past GRPC_MAX_MESSAGE_BYTES are refused by grpc-js with
 * RESOURCE_EXHAUSTED before they are parsed.
 */
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, type ServingStatus } from 'grpc-health-check';

import type { ServerContext } from '../context.js';
import { InferenceService } from './inference-service.js';
import { INFERENCE_SERVICE_NAME, inferenceService, packageDefinition } from './proto.js';

export interface GrpcOptions {
  port: number;
  host: string;
  maxMessageBytes: number;
}

/**
 * Health service names: '' and the inference service are ready once the start-up models are
 * (as /health/ready); 'liveness' is serving while the process is (as /health/live).
 */
const READINESS_NAMES = ['', INFERENCE_SERVICE_NAME, 'readiness'];

export class GrpcServer {
  readonly #server: Server;
  readonly #health = new HealthImplementation({ liveness: 'SERVING' });
  readonly #ctx: ServerContext;
  #closing: Promise<void> | undefined;

  private constructor(
    ctx: ServerContext,
    server: Server,
    readonly port: number,
  ) {
    this.#ctx = ctx;
    this.#server = server;
  }

  /** Listen on `host:port` (port 0: any free port; `port` says which). */
  static async start(ctx: ServerContext, options: GrpcOptions): Promise<GrpcServer> {
    const server = new Server({
      'grpc.max_receive_message_length': options.maxMessageBytes,
      'grpc.max_send_message_length': -1,
    });
    const inference = new InferenceService(ctx);
    server.addService(inferenceService, inference.handlers((method) => `${INFERENCE_SERVICE_NAME}/${method}`));
    new ReflectionService(packageDefinition).addToServer(server);
    const address = options.host.includes(':') ? `[${options.host}]:${options.port}` : `${options.host}:${options.port}`;
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(address, ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound)));
    });
    const grpc = new GrpcServer(ctx, server, port);
    grpc.#health.addToServer(server);
    grpc.refreshHealth();
    // A model loaded or failed may be the last start-up model.
    ctx.registry.lifecycle.on('ready', () => grpc.refreshHealth());
    ctx.registry.lifecycle.on('failed', () => grpc.refreshHealth());
    return grpc;
  }

  /** Set the readiness names from the server's state (call when start-up has finished). */
  refreshHealth(): void {
    const status: ServingStatus = this.#closing === undefined && this.#ctx.startupDone() && !this.#ctx.registry.closing ? 'SERVING' : 'NOT_SERVING';
    for (const name of READINESS_NAMES) this.#health.setStatus(name, status);
  }

  /**
   * Drain: health says NOT_SERVING, new calls are refused, calls in flight finish; after
   * `graceMs` the rest are cancelled.
   */
  close(graceMs = 30_000): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      for (const name of [...READINESS_NAMES, 'liveness']) this.#health.setStatus(name, 'NOT_SERVING');
      const force = setTimeout(() => this.#server.forceShutdown(), graceMs);
      force.unref();
      this.#server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
    return this.#closing;
  }
}
