/** What the task pipelines share: the registry, the observer, and per-model tokenizers. */
import type { SubmitOptions } from '../../batching/batcher.js';
import type { Tensor } from '../../runtime/index.js';
import { DEFAULT_LIMITS, type RequestLimits } from '../limits.js';
import type { Task } from '../manifest.js';
import type { ModelObserver } from '../observer.js';
import type { ModelEntry, ModelRegistry } from '../registry.js';
import { aTask, TaskInputError } from './task-errors.js';
import { TextTokenizer } from './text-tokenizer.js';

export class TaskRuntime {
  readonly #tokenizers = new WeakMap<object, TextTokenizer>();

  constructor(
    readonly registry: ModelRegistry,
    readonly observer: ModelObserver & { tokensPerRequest?(model: string, count: number): void },
    readonly limits: RequestLimits = DEFAULT_LIMITS,
  ) {}

  /** A ready entry whose manifest is for `task`; a 400 naming both tasks otherwise. */
  async entryForTask(model: string, task: Task): Promise<ModelEntry> {
    const entry = await this.registry.find(model);
    const actual = entry.manifest?.task;
    if (actual && actual !== task) {
      throw new TaskInputError(`model '${model}' is ${aTask(actual)} model; this request is for ${task}`);
    }
    return this.registry.acquire(model);
  }

  /** Raw tensors for a model by name (its default version, or `version`): acquire it (loading it lazily), then run them through its engine. */
  async inferRaw(model: string, inputs: Map<string, Tensor>, submit: SubmitOptions & { version?: string } = {}): Promise<{ version: string; outputs: Map<string, Tensor> }> {
    const { version, ...rest } = submit;
    const entry = await this.registry.acquire(model, version);
    return this.registry.withEngine(entry, async (engine, used) => ({ version: used.version, outputs: await engine.infer(inputs, rest) }), version);
  }

  /** One request of named tensors through the model's engine (reloading it if it was unloaded meanwhile). */
  infer(entry: ModelEntry, inputs: Map<string, Tensor>, submit: SubmitOptions = {}): Promise<Map<string, Tensor>> {
    return this.registry.withEngine(entry, (engine) => engine.infer(inputs, submit));
  }

  /** The model's tokenizer, read once per load. */
  tokenizer(entry: ModelEntry): TextTokenizer {
    const key = entry.engine ?? entry;
    let tokenizer = this.#tokenizers.get(key);
    if (!tokenizer) {
      tokenizer = TextTokenizer.load(entry.folder, entry.manifest!, this.limits.maxTokensPerText);
      this.#tokenizers.set(key, tokenizer);
    }
    return tokenizer;
  }

  tokensPerRequest(model: string, count: number): void {
    this.observer.tokensPerRequest?.(model, count);
  }
}
