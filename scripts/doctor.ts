/** Prints what the runtime found: LibTorch, CUDA, threads, the addon, the models. */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

import { addonPath, runtimeInfo } from '../src/runtime/index.js';

const info = runtimeInfo();
const lines: [string, string][] = [
  ['addon', addonPath()],
  ['LibTorch', info.libtorch],
  ['CUDA', info.cudaAvailable ? `yes, ${info.cudaDeviceCount} device(s)` : info.cudaBuilt ? 'built with CUDA, no device found' : 'no (CPU-only LibTorch)'],
  ['intra-op threads', String(info.intraOpThreads)],
  ['inter-op threads', String(info.interOpThreads)],
  ['worker threads', String(info.workerThreads)],
];
const repository = process.env.MODEL_REPOSITORY ?? 'models';
if (existsSync(repository)) {
  const models = readdirSync(repository).filter((name) => existsSync(join(repository, name, 'atenspace.json')));
  lines.push(['models', models.length ? models.join(', ') : `none in ${repository}/`]);
}
const width = Math.max(...lines.map(([k]) => k.length));
for (const [key, value] of lines) console.log(`${key.padEnd(width)}  ${value}`);
