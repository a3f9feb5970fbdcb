/**
 * How to take back changes already applied in memory. The AtomSpace applies a change before
 * its journal record is on disk; when the record cannot be written, the change is undone.
 * Each step undoes one applied record and assumes the state right after that record, so the
 * steps run newest first (the journal runs the logs of several failed batches newest first too).
 */
export class UndoLog {
  readonly #steps: (() => void)[] = [];

  add(step: () => void): void {
    this.#steps.push(step);
  }

  /** Undo every step, newest first; the log is empty after. */
  rollback(): void {
    while (this.#steps.length) this.#steps.pop()!();
  }
}
