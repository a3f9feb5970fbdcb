/**
 * Errors raised by the runtime. Every native failure arrives as a `TorchRuntimeError`
 * subclass whose `code` says what went wrong; the message is LibTorch's, without a C++
 * backtrace (a TorchScript traceback, when there is one, is in `detail`).
 */
export type RuntimeErrorCode =
  | 'BAD_INPUT'
  | 'MODEL_FILE_NOT_FOUND'
  | 'MODEL_LOAD_FAILED'
  | 'FORWARD_FAILED'
  | 'CUDA_UNAVAILABLE'
  | 'OUT_OF_MEMORY'
  | 'MODEL_DISPOSED'
  | 'RUNTIME_STARTED'
  | 'ADDON_NOT_BUILT'
  | 'INTERNAL';

export class TorchRuntimeError extends Error {
  readonly code: RuntimeErrorCode;
  readonly detail: string | undefined;

  constructor(code: RuntimeErrorCode, message: string, detail?: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.detail = detail;
  }
}

/** The caller passed something malformed: wrong dtype, shape, arity, names or device. */
export class BadInputError extends TorchRuntimeError {}
/** No model file at the path (the addon says MODEL_NOT_FOUND; a model missing from the repository is the model layer's MODEL_NOT_FOUND). */
export class ModelFileNotFoundError extends TorchRuntimeError {}
/** LibTorch could not load the file. */
export class ModelLoadError extends TorchRuntimeError {}
/** LibTorch raised while running forward. */
export class ForwardError extends TorchRuntimeError {}
/** A CUDA device was requested and is not available. */
export class CudaUnavailableError extends TorchRuntimeError {}
/** The device (or host) allocator gave up. */
export class OutOfMemoryError extends TorchRuntimeError {}
/** forward() after dispose(). */
export class ModelDisposedError extends TorchRuntimeError {}
/** configureRuntime() after the runtime started. */
export class RuntimeStartedError extends TorchRuntimeError {}
/** The native addon has not been built. */
export class AddonNotBuiltError extends TorchRuntimeError {}

const classes: Record<RuntimeErrorCode, new (code: RuntimeErrorCode, message: string, detail?: string) => TorchRuntimeError> = {
  BAD_INPUT: BadInputError,
  MODEL_FILE_NOT_FOUND: ModelFileNotFoundError,
  MODEL_LOAD_FAILED: ModelLoadError,
  FORWARD_FAILED: ForwardError,
  CUDA_UNAVAILABLE: CudaUnavailableError,
  OUT_OF_MEMORY: OutOfMemoryError,
  MODEL_DISPOSED: ModelDisposedError,
  RUNTIME_STARTED: RuntimeStartedError,
  ADDON_NOT_BUILT: AddonNotBuiltError,
  INTERNAL: TorchRuntimeError,
};

/** Turn whatever the addon threw into the typed error for its code. */
export function fromNative(error: unknown): TorchRuntimeError {
  if (error instanceof TorchRuntimeError) return error;
  if (error instanceof Error) {
    const raw = error as Error & { code?: unknown; detail?: unknown };
    // The addon's MODEL_NOT_FOUND is about a file, not a model of the repository.
    const given = raw.code === 'MODEL_NOT_FOUND' ? 'MODEL_FILE_NOT_FOUND' : raw.code;
    const code = typeof given === 'string' && given in classes ? (given as RuntimeErrorCode) : 'INTERNAL';
    const ErrorClass = classes[code];
    const typed = new ErrorClass(code, error.message, typeof raw.detail === 'string' ? raw.detail : undefined);
    return typed;
  }
  return new TorchRuntimeError('INTERNAL', String(error));
}
