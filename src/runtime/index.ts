/** Typed facade over the native LibTorch addon. */
export { TorchScriptModule, type DeviceSpec, type ForwardSchema } from './script-module.js';
export { configureRuntime, cudaMemory, runtimeInfo, trimMemory, trimMemoryAsync, trimMemoryEvery, type RuntimeInfo, type RuntimeOptions } from './runtime.js';
export { addonPath } from './addon.js';
export { topK, type TopKRequest, type TopKResult } from './similarity.js';
export * from './errors.js';
export * from './tensor.js';
