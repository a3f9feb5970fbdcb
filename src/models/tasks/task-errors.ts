/** A request that makes sense as JSON but not for this model (empty text, too long, wrong task…). */
export class TaskInputError extends Error {
  readonly code = 'BAD_INPUT';
}

/** "an embedding model", "a text-generation model". */
export function aTask(task: string): string {
  return `${/^[aeiou]/.test(task) ? 'an' : 'a'} ${task}`;
}
