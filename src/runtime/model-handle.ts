/**
 * A loaded model, whatever its format: a TorchScript module (model.pt) or an AOTInductor
 * package (model.pt2, torch.export compiled ahead of time). One surface for both: a
 * Promise-returning forward on the addon's worker pool, the forward signature, the device,
 * dispose, and the same typed errors.
 */
import { type ForwardOptions, nativeAddon, type NativeModelHandle, type NativeSchema } from './addon.js';
import { fromNative } from './errors.js';
import type { TorchArgument, TorchValue } from './tensor.js';

/** "cpu", "cuda", "cuda:N", or "auto" (CUDA when available; a .pt2 runs where it was compiled for). */
export type DeviceSpec = 'cpu' | 'cuda' | 'auto' | `cuda:${number}`;

/** `torchscript` (torch.jit.save) or `pt2` (torch._inductor.aoti_compile_and_package). */
export const MODEL_FORMATS = ['torchscript', 'pt2'] as const;
export type ModelFormat = (typeof MODEL_FORMATS)[number];

export interface ForwardSchema {
  /** The signature, e.g. `forward(__torch__.M self, Tensor x) -> Tensor` (TorchScript) or `forward(Tensor x) -> Tensor` (.pt2). */
  text: string;
  arguments: { name: string; type: string; hasDefault: boolean }[];
  returns: string[];
}

export interface LoadOptions {
  device?: DeviceSpec | string;
  /** The file's format; by default a path ending in `.pt2` is a package, anything else TorchScript. */
  format?: ModelFormat;
}

export class ModelHandle {
  readonly #native: NativeModelHandle;
  readonly #schema: ForwardSchema;

  private constructor(native: NativeModelHandle) {
    this.#native = native;
    const schema: NativeSchema = native.schema();
    this.#schema = schema;
  }

  /** Load a model file off the event loop. Rejects with a TorchRuntimeError. */
  static async load(path: string, options: LoadOptions = {}): Promise<ModelHandle> {
    const addon = nativeAddon();
    try {
      return new ModelHandle(await addon.load(path, options.device ?? 'cpu', options.format));
    } catch (error) {
      throw fromNative(error);
    }
  }

  /** The device the model lives on, e.g. "cpu" or "cuda:0". */
  get device(): string {
    return this.#native.device;
  }

  get path(): string {
    return this.#native.path;
  }

  get format(): ModelFormat {
    return this.#native.format;
  }

  get disposed(): boolean {
    return this.#native.disposed;
  }

  /** The forward signature (argument names and types, return types). */
  get schema(): ForwardSchema {
    return this.#schema;
  }

  /**
   * Run forward on a worker thread under InferenceMode. Inputs are positional (an array)
   * or named (an object keyed by argument name). Tensors are copied in once; outputs come
   * back without a copy, as CPU tensors nested in arrays and objects like the module's (a
   * .pt2 returns one tensor or an array of them, as its TorchScript export would). A .pt2
   * checks every input's dtype, rank and shape against its exported bounds before it runs:
   * BAD_INPUT naming the bound. `threads` runs this forward on that many intra-op threads.
   */
  async forward(inputs: TorchArgument[] | Record<string, TorchArgument>, options?: ForwardOptions): Promise<TorchValue> {
    try {
      return await (options ? this.#native.forward(inputs, options) : this.#native.forward(inputs));
    } catch (error) {
      throw fromNative(error);
    }
  }

  /** Release the model now; forwards already running finish first. */
  dispose(): void {
    this.#native.dispose();
  }
}

/** The former name, from when every model was TorchScript. */
export { ModelHandle as TorchScriptModule };
