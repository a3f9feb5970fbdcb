// openapi.yaml is the served spec: this fails when a route changes and the file does not.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { servedSpecYaml } from '../../scripts/write-openapi.js';
import { repoRoot } from '../helpers/python-fixtures.js';
import { testApp } from '../helpers/server.js';

t.test('committed openapi.yaml equals the served spec', async (t) => {
  const committed = readFileSync(join(repoRoot, 'openapi.yaml'), 'utf8');
  const served = await servedSpecYaml();
  t.equal(committed, served, 'openapi.yaml is stale: run `npm run openapi` and commit it');
  for (const path of ['/infer', '/models', '/models/{name}/load', '/v2/models/{name}/infer', '/v2/repository/index', '/metrics', '/health/ready']) {
    t.match(served, new RegExp(`\\n  ${path.replace(/[{}/]/g, (c) => `\\${c}`)}:\\n`), `spec has ${path}`);
  }
});

t.test('Swagger UI is served at /docs, with the same spec', async (t) => {
  const { app } = await testApp({ LOAD_MODELS: 'none' });
  t.teardown(() => app.close());
  const page = await app.inject('/docs/');
  t.equal(page.statusCode, 200);
  t.match(page.body, /swagger/i);
  const json = await app.inject('/docs/json');
  t.equal(json.statusCode, 200);
  t.ok(json.json().paths['/infer'], 'the UI spec has /infer');
});
