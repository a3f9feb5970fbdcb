/**
 * Writes openapi.yaml from the served spec (the routes' TypeBox schemas). The openapi test
 * fails when the committed file differs: run `npm run openapi` after changing a route.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { buildApp } from '../src/server/app.js';
import { loadConfig } from '../src/server/config.js';

export async function servedSpecYaml(): Promise<string> {
  // No models are needed to describe the API: an empty repository keeps it independent of them.
  const dataDir = mkdtempSync(join(tmpdir(), 'atenspace-openapi-'));
  const config = loadConfig({ MODEL_REPOSITORY: '/nonexistent-model-repository', LOAD_MODELS: 'none', LOG_LEVEL: 'silent', DATA_DIR: dataDir }, []);
  const { app } = await buildApp(config, { logger: false });
  await app.ready();
  const yaml = app.swagger({ yaml: true });
  await app.close();
  rmSync(dataDir, { recursive: true, force: true });
  return yaml;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const root = join(fileURLToPath(import.meta.url), '..', '..', '..');
  const out = join(process.argv[2] ?? root, 'openapi.yaml');
  writeFileSync(out, await servedSpecYaml());
  console.log(`wrote ${out}`);
}
