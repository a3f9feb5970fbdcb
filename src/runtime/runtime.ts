/** Runtime-wide facts and settings: versions, devices, thread counts. */
import { nativeAddon, type NativeInfo } from './addon.js';
import { fromNative } from './errors.js';

/**
 * What the runtime reports: the LibTorch version the addon was built against, whether it was
 * compiled with CUDA and sees devices, LibTorch's intra/inter-op threads, the addon's worker
 * threads, whether it has started (thread counts are fixed from then on), how many
 * models (TorchScript or .pt2) are alive (loaded, not yet freed), and the tensors alive at the JS
 * boundary, process-wide: `liveTensors` / `liveTensorBytes` are forward outputs whose
 * ArrayBuffers JS still holds (freed when the GC collects them; empty tensors are not counted),
 * `liveInputTensors` / `liveInputTensorBytes` are inputs copied in from JS and not yet freed
 * (normally only those of forwards in flight). For leak checks and metrics.
 */
export type RuntimeInfo = NativeInfo;

export interface RuntimeOptions {
  /** Threads in the addon's pool, i.e. forwards that can run at once. */
  workers?: number;
  /** LibTorch intra-op (OpenMP) threads per forward. */
  intraOpThreads?: number;
  /** LibTorch inter-op threads. */
  interOpThreads?: number;
}

export function runtimeInfo(): RuntimeInfo {
  const info: NativeInfo = nativeAddon().info();
  return { ...info };
}

/** Set thread counts once, before the first model is loaded. */
export function configureRuntime(options: RuntimeOptions): RuntimeInfo {
  try {
    return { ...nativeAddon().configure(options) };
  } catch (error) {
    throw fromNative(error);
  }
}

/** CUDA caching-allocator usage of one device in bytes, or null without CUDA. */
export function cudaMemory(device = 0): { allocated: number; reserved: number } | null {
  try {
    return nativeAddon().cudaMemory(device);
  } catch (error) {
    throw fromNative(error);
  }
}

/** Return free heap pages to the OS (glibc malloc_trim); the registry calls it after unloading. */
export function trimMemory(): boolean {
  return nativeAddon().trimMemory();
}

/** trimMemory() on a libuv pool thread: malloc_trim takes milliseconds on a large heap. */
export function trimMemoryAsync(): Promise<boolean> {
  return nativeAddon().trimMemoryAsync();
}

/**
 * Trim every `intervalMs` on a pool thread. With glibc, LibTorch's freed activations stay in
 * malloc's arenas and RSS creeps up under varied shapes (the soak benchmark: +7% over 100k
 * requests); trimming keeps it flat. Returns a function that stops it. A no-op under jemalloc.
 */
export function trimMemoryEvery(intervalMs: number): () => void {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    trimMemoryAsync()
      .catch(() => false)
      .finally(() => (running = false));
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
