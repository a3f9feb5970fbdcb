/** Runs a model's task for a POST /infer body and shapes the JSON answer. */
import type { SubmitOptions } from '../batching/batcher.js';
import type { Task } from '../models/manifest.js';
import { embed } from '../models/tasks/embedding.js';
import { classify } from '../models/tasks/image-classification.js';
import { detect } from '../models/tasks/object-detection.js';
import type { TaskRuntime } from '../models/tasks/task-runtime.js';
import { generate } from '../models/tasks/text-generation.js';
import { generationOptions, imageOf } from './task-bodies.js';
import type { EmbeddingInfer, GenerationInfer } from './task-schemas.js';

export async function answerTask(tasks: TaskRuntime, task: Task, model: string, body: Record<string, unknown>, submit: SubmitOptions): Promise<unknown> {
  switch (task) {
    case 'embedding': {
      const b = body as EmbeddingInfer;
      const texts = typeof b.text === 'string' ? [b.text] : b.text;
      const result = await embed(tasks, model, texts, { normalize: b.normalize, truncate: b.truncate, dimensions: b.dimensions }, submit);
      return { model, embeddings: result.embeddings.map((v) => Array.from(v)), usage: { tokens: result.tokens } };
    }
    case 'text-generation': {
      const b = body as GenerationInfer;
      const result = await generate(tasks, model, b.text, generationOptions(b), submit);
      return {
        model,
        text: result.text,
        tokens: result.tokenIds.length,
        token_ids: result.tokenIds,
        finish_reason: result.finishReason,
        usage: { prompt_tokens: result.promptTokens, completion_tokens: result.tokenIds.length },
      };
    }
    case 'image-classification': {
      const b = body as { image?: string | Buffer; top_k?: number };
      return { model, ...(await classify(tasks, model, imageOf(b), { ...(b.top_k !== undefined ? { topK: b.top_k } : {}) }, submit)) };
    }
    case 'object-detection': {
      const b = body as { image?: string | Buffer; threshold?: number };
      return { model, ...(await detect(tasks, model, imageOf(b), { ...(b.threshold !== undefined ? { threshold: b.threshold } : {}) }, submit)) };
    }
  }
}
