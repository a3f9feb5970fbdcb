/**
 * Finds and loads the compiled addon (native/build/Release/atenspace.node). This is the
 * only file that touches the addon's untyped surface.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { AddonNotBuiltError } from './errors.js';
import type { Tensor, TorchArgument, TorchValue } from './tensor.js';

export interface NativeSchema {
  text: string;
  arguments: { name: string; type: string; hasDefault: boolean }[];
  returns: string[];
}

export interface NativeModelHandle {
  readonly device: string;
  readonly path: string;
  readonly format: 'torchscript' | 'pt2';
  readonly disposed: boolean;
  forward(inputs: TorchArgument[] | Record<string, TorchArgument>, options?: ForwardOptions): Promise<TorchValue>;
  schema(): NativeSchema;
  dispose(): void;
}

export interface NativeInfo {
  libtorch: string;
  cudaBuilt: boolean;
  cudaAvailable: boolean;
  cudaDeviceCount: number;
  intraOpThreads: number;
  interOpThreads: number;
  /** Whether forward's `threads` option takes effect (LibTorch's intra-op backend is OpenMP). */
  threadsPerCall: boolean;
  workerThreads: number;
  started: boolean;
  liveModules: number;
  liveTensors: number;
  liveTensorBytes: number;
  liveInputTensors: number;
  liveInputTensorBytes: number;
  parallelInfo: string;
}

/** Per-call settings of a forward. */
export interface ForwardOptions {
  /** Intra-op threads for this forward only (on its worker thread); default: INTRA_OP_THREADS. */
  threads?: number;
}

export interface NativeAddon {
  load(path: string, device: string, format?: 'torchscript' | 'pt2'): Promise<NativeModelHandle>;
  info(): NativeInfo;
  configure(options: { workers?: number; intraOpThreads?: number; interOpThreads?: number }): NativeInfo;
  cudaMemory(device: number): { allocated: number; reserved: number } | null;
  trimMemory(): boolean;
  trimMemoryAsync(): Promise<boolean>;
  topK(request: import('./similarity.js').TopKRequest): Promise<import('./similarity.js').TopKResult[]>;
}

const ADDON_RELATIVE = join('native', 'build', 'Release', 'atenspace.node');

/** Where the addon is: $ATENSPACE_ADDON, else native/build under the package root. */
export function addonPath(): string {
  if (process.env.ATENSPACE_ADDON) return resolve(process.env.ATENSPACE_ADDON);
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'native'))) return join(dir, ADDON_RELATIVE);
    const parent = dirname(dir);
    if (parent === dir) return resolve(ADDON_RELATIVE);
    dir = parent;
  }
}

let cached: NativeAddon | undefined;

export function nativeAddon(): NativeAddon {
  if (cached) return cached;
  const path = addonPath();
  if (!existsSync(path)) {
    throw new AddonNotBuiltError(
      'ADDON_NOT_BUILT',
      `the native LibTorch addon is not built (no ${path}). Run \`npm run setup\` once, or \`npm run build:native\` after installing torch for python3 (or set LIBTORCH to a LibTorch directory).`,
    );
  }
  try {
    cached = createRequire(import.meta.url)(path) as NativeAddon;
  } catch (error) {
    throw new AddonNotBuiltError(
      'ADDON_NOT_BUILT',
      `the native addon at ${path} failed to load (${(error as Error).message}). It must be rebuilt against the LibTorch that is installed now: \`npm run build:native\`.`,
    );
  }
  return cached;
}

export type { Tensor };
