/** The model layer's own errors; each carries the `code` the server maps to a status. */

/** No such model in the repository. */
export class ModelNotFoundError extends Error {
  readonly code = 'MODEL_NOT_FOUND';
  constructor(name: string, message = `model '${name}' is not in the repository`) {
    super(message);
  }
}

/** The model exists but is not loaded, failed, or the server is stopping. */
export class ModelNotReadyError extends Error {
  readonly code = 'MODEL_NOT_READY';
}

/** Loading the model would pass MODEL_MEMORY_LIMIT and nothing idle can be evicted. */
export class MemoryLimitError extends Error {
  readonly code = 'MODEL_MEMORY_LIMIT';
}
