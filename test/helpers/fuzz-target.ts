/**
 * What the spec-driven fuzzer (openapi-fuzz.ts) attacks, for the CI slice and the benchmark:
 * the server over the four demo models only (the 'broken' and 'slow' fixtures have their own
 * tests), listening on 127.0.0.1, and the world its requests are drawn from.
 */
import { cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { App } from '../../src/server/app.js';
import { fuzzImages } from './images.js';
import { type FuzzWorld, httpSender } from './openapi-fuzz.js';
import { serverFixtures, testApp } from './server.js';

export const FUZZ_MODELS = ['demo-embedder', 'demo-gpt2', 'demo-vit', 'demo-yolos'];

export interface FuzzTarget {
  app: App['app'];
  http: ReturnType<typeof httpSender>;
  spec: { paths: Record<string, Record<string, unknown>> };
  world: FuzzWorld;
  /** Stop the client and the server. */
  close(): Promise<void>;
}

/** Start the server; `sockets` is how many requests the client keeps in flight. */
export async function startFuzzTarget(sockets: number): Promise<FuzzTarget> {
  const repo = mkdtempSync(join(tmpdir(), 'atenspace-fuzz-'));
  for (const m of FUZZ_MODELS) cpSync(join(serverFixtures(), 'models', m), join(repo, m), { recursive: true });
  const { app } = await testApp({ MODEL_REPOSITORY: repo, LOAD_MODELS: 'all' });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const http = httpSender((app.server.address() as { port: number }).port, sockets);
  const world: FuzzWorld = {
    models: FUZZ_MODELS,
    images: await fuzzImages(),
    atomTypes: ['ConceptNode', 'PredicateNode', 'InheritanceLink', 'ListLink', 'SimilarityLink', 'EvaluationLink', 'Node', 'Link', 'Atom', 'NoSuchType', ''],
    maxAtomId: 40,
    modelFor: { 'embedding request': 'demo-embedder', 'text-generation request': 'demo-gpt2', 'image-classification request': 'demo-vit', 'object-detection request': 'demo-yolos', 'raw-tensor request': 'demo-embedder', 'TGI generate request': 'demo-gpt2', 'TEI embed request': 'demo-embedder' },
    defaultModel: 'demo-embedder',
  };
  const spec = app.swagger() as unknown as FuzzTarget['spec'];
  return {
    app,
    http,
    spec,
    world,
    close: async () => {
      http.close();
      await app.close();
    },
  };
}
