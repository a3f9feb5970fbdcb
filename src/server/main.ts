/** npm start: read settings, configure LibTorch threads, listen, load models, drain on SIGTERM. */
import { configureRuntime, runtimeInfo } from '../runtime/index.js';
import { buildApp } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { GrpcServer } from './grpc/server.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`atenspace-serve: ${error.message}`);
      process.exit(2);
    }
    throw error;
  }
  configureRuntime({
    ...(config.workerThreads ? { workers: config.workerThreads } : {}),
    ...(config.intraOpThreads ? { intraOpThreads: config.intraOpThreads } : {}),
    ...(config.interOpThreads ? { interOpThreads: config.interOpThreads } : {}),
  });
  let built;
  try {
    built = await buildApp(config);
  } catch (error) {
    if (error instanceof ConfigError || (error as { code?: string }).code === 'BAD_ATOM_TYPE') {
      console.error(`atenspace-serve: ${(error as Error).message}`);
      process.exit(2);
    }
    throw error;
  }
  const { app, loadStartupModels } = built;
  const info = runtimeInfo();
  app.log.info({ libtorch: info.libtorch, cuda: info.cudaAvailable, intraOpThreads: info.intraOpThreads, workerThreads: info.workerThreads, repository: config.modelRepository }, 'runtime');

  let grpc: GrpcServer | undefined;
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.log.info({ signal }, 'stopping: no new connections, draining in-flight requests');
    try {
      // gRPC stops taking calls now too; the app's close waits for its calls before unloading models.
      void grpc?.close();
      // Keep-alive connections (a balancer's) close after their current answer, not at their idle timeout.
      const stopSweep = built.startDraining();
      await app.close(); // finishes in-flight requests, then the onClose hook drains and unloads models
      stopSweep();
      app.log.info('stopped');
      process.exit(0);
    } catch (error) {
      app.log.error({ err: error }, 'error while stopping');
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));

  await app.listen({ port: config.port, host: config.host });
  if (config.grpcPort > 0) {
    const server = await GrpcServer.start(built.context, { port: config.grpcPort, host: config.host, maxMessageBytes: config.grpcMaxMessageBytes });
    grpc = server;
    built.closeFirst(() => server.close());
    app.log.info({ port: server.port }, 'gRPC listening (KServe v2, grpc.health.v1, reflection)');
  }
  await loadStartupModels();
  grpc?.refreshHealth();
  if (!stopping) app.log.info('ready');
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
