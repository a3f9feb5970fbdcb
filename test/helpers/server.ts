/** Build the app over the test model repository, in-process (inject) or on a real socket. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { type App, buildApp } from '../../src/server/app.js';
import { loadConfig } from '../../src/server/config.js';
import { pythonFixtures, readJson } from './python-fixtures.js';

export const serverFixtures = () => pythonFixtures('test/fixtures/make_server_fixtures.py', ['exporter']);

export interface EmbedderCase {
  input_ids: number[];
  expected: number[];
  shape: number[];
}

export function embedderCases(): EmbedderCase[] {
  return readJson<{ embedder: EmbedderCase[] }>(join(serverFixtures(), 'cases.json')).embedder;
}

/** An app over the fixture repository; `env` overrides settings (LOAD_MODELS defaults to the embedder). */
export async function testApp(env: Record<string, string> = {}): Promise<App> {
  const config = loadConfig(
    {
      MODEL_REPOSITORY: join(serverFixtures(), 'models'),
      LOAD_MODELS: 'demo-embedder',
      DEVICE: 'cpu',
      LOG_LEVEL: 'silent',
      DATA_DIR: mkdtempSync(join(tmpdir(), 'atenspace-data-')),
      ...env,
    },
    [],
  );
  // TEST_LOG=1: the server's error logs (to stdout), e.g. to see the stack behind a fuzzer's 500.
  const built = await buildApp(config, process.env.TEST_LOG ? { logger: { level: 'error' } } : { logger: false });
  await built.loadStartupModels();
  return built;
}

export function embedderRequest(ids: number[], model = 'demo-embedder') {
  const n = ids.length;
  return {
    model,
    inputs: [
      { name: 'input_ids', shape: [1, n], datatype: 'INT64', data: ids },
      { name: 'attention_mask', shape: [1, n], datatype: 'INT64', data: new Array(n).fill(1) },
      { name: 'token_type_ids', shape: [1, n], datatype: 'INT64', data: new Array(n).fill(0) },
    ],
  };
}

export function maxDiff(a: number[], b: number[]): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

export function metricValue(text: string, name: string, labels: Record<string, string>): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue;
    const labelPart = line.slice(name.length, line.lastIndexOf(' '));
    if (want.every((w) => labelPart.includes(w))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}
