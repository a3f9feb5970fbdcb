/** CUDA caching-allocator memory per device, for /models and /metrics (empty without CUDA). */
import { cudaMemory, runtimeInfo } from '../runtime/index.js';

export interface DeviceMemory {
  device: string;
  allocated: number;
  reserved: number;
}

export function deviceMemory(): DeviceMemory[] {
  const info = runtimeInfo();
  if (!info.cudaAvailable) return [];
  return Array.from({ length: info.cudaDeviceCount }, (_, i) => ({ device: `cuda:${i}`, ...(cudaMemory(i) ?? { allocated: 0, reserved: 0 }) }));
}
