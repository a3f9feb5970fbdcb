/** Typed facade over the native LibTorch addon. */
export { MODEL_FORMATS, ModelHandle, TorchScriptModule, type DeviceSpec, type ForwardSchema, type LoadOptions, type ModelFormat } from './model-handle.js';
export { configureRuntime, cudaMemory, runtimeInfo, trimMemory, trimMemoryAsync, trimMemoryEvery, type RuntimeInfo, type RuntimeOptions } from './runtime.js';
export { addonPath, type ForwardOptions } from './addon.js';
export { topK, type TopKRequest, type TopKResult } from './similarity.js';
export * from './errors.js';
export * from './tensor.js';
