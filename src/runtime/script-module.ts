/** A TorchScript module loaded onto a device, with a Promise-returning forward. */
import { nativeAddon, type NativeSchema, type NativeScriptModule } from './addon.js';
import { fromNative } from './errors.js';
import type { TorchArgument, TorchValue } from './tensor.js';

/** "cpu", "cuda", "cuda:N", or "auto" (CUDA when available). */
export type DeviceSpec = 'cpu' | 'cuda' | 'auto' | `cuda:${number}`;

export interface ForwardSchema {
  /** The TorchScript signature, e.g. `forward(__torch__.M self, Tensor x) -> Tensor`. */
  text: string;
  arguments: { name: string; type: string; hasDefault: boolean }[];
  returns: string[];
}

export class TorchScriptModule {
  readonly #native: NativeScriptModule;
  readonly #schema: ForwardSchema;

  private constructor(native: NativeScriptModule) {
    this.#native = native;
    const schema: NativeSchema = native.schema();
    this.#schema = schema;
  }

  /** Load a TorchScript file off the event loop. Rejects with a TorchRuntimeError. */
  static async load(path: string, options: { device?: DeviceSpec | string } = {}): Promise<TorchScriptModule> {
    const addon = nativeAddon();
    try {
      return new TorchScriptModule(await addon.load(path, options.device ?? 'cpu'));
    } catch (error) {
      throw fromNative(error);
    }
  }

  /** The device the module lives on, e.g. "cpu" or "cuda:0". */
  get device(): string {
    return this.#native.device;
  }

  get path(): string {
    return this.#native.path;
  }

  get disposed(): boolean {
    return this.#native.disposed;
  }

  /** The forward method's signature (argument names and types, return types). */
  get schema(): ForwardSchema {
    return this.#schema;
  }

  /**
   * Run forward on a worker thread under InferenceMode. Inputs are positional (an array)
   * or named (an object keyed by argument name). Tensors are copied in once; outputs come
   * back without a copy, as CPU tensors nested in arrays and objects like the module's.
   */
  async forward(inputs: TorchArgument[] | Record<string, TorchArgument>): Promise<TorchValue> {
    try {
      return await this.#native.forward(inputs);
    } catch (error) {
      throw fromNative(error);
    }
  }

  /** Release the module now; forwards already running finish first. */
  dispose(): void {
    this.#native.dispose();
  }
}
