/**
 * Imports a stream of atoms larger than one request: items are checked one by one (a bad item
 * is reported with its line and skipped), and the good ones are committed in groups, each one
 * journal group commit: a group is added whole or not at all. The next group is parsed and
 * applied while the previous one is being fsynced (at most two in flight). When the journal
 * cannot be written, the import stops: the failed groups are undone, and the report says how
 * many lines were committed before them. Work is sliced so that the event loop turns every few
 * milliseconds even when the input is already buffered. Knows nothing of HTTP.
 */
import { type AtomSpace, AtomSpaceError, type LinkInput, type NodeInput } from './atomspace.js';

export type ImportItem = { node: NodeInput } | { link: LinkInput };

/** One line of the input: an item, or why it could not be read. The input comes in arrays of lines. */
export type ImportEntry = { line: number; item: ImportItem } | { line: number; error: string; code: string };

export interface ImportError {
  line: number;
  error: string;
  code: string;
}

export interface ImportReport {
  /** Lines read (blank lines included). */
  lines: number;
  created: number;
  /** Items that named an atom already there (it was returned, its tv/vector updated when given). */
  existing: number;
  failed: number;
  /** Durable group commits made. */
  groups: number;
  /** The first MAX_REPORTED_ERRORS bad lines. */
  errors: ImportError[];
  /** With `ids`: the atom id of every line (null for blank or bad lines), in line order. */
  ids?: (number | null)[];
  /** When the journal could not be written: everything before `line` is committed, nothing from it on. */
  stopped?: ImportError;
}

export const MAX_REPORTED_ERRORS = 1000;
/** Longest stretch of parsing and checking between two turns of the event loop (ms). */
const SLICE_MS = 5;

interface Group {
  lines: number[];
  items: ImportItem[];
}

export async function importAtoms(atomspace: AtomSpace, input: AsyncIterable<ImportEntry[]> | Iterable<ImportEntry[]>, options: { groupSize: number; ids?: boolean }): Promise<ImportReport> {
  const report: ImportReport = { lines: 0, created: 0, existing: 0, failed: 0, groups: 0, errors: [], ...(options.ids ? { ids: [] } : {}) };
  const fail = (line: number, error: string, code: string) => {
    report.failed++;
    if (report.errors.length < MAX_REPORTED_ERRORS) report.errors.push({ line, error, code });
  };
  let group: Group = { lines: [], items: [] };
  /** Dimensions of spaces the current group creates: a second vector of another length is refused. */
  let newSpaces = new Map<string, number>();
  let inFlight: Promise<void> | undefined;

  const commit = (g: Group): Promise<void> => {
    const done = atomspace.addBatch(g.items, { checked: true }).then(
      (results) => {
        report.groups++;
        results.forEach((r, i) => {
          if (r.created) report.created++;
          else report.existing++;
          if (report.ids) report.ids[g.lines[i]! - 1] = r.atom.id;
        });
      },
      (error: unknown) => {
        if (error instanceof AtomSpaceError && error.code === 'STORAGE_UNAVAILABLE') {
          const line = g.lines[0]!;
          if (!report.stopped || line < report.stopped.line) report.stopped = { line, error: error.message, code: error.code };
          return;
        }
        // Each item was checked; a group can still fail as a whole (e.g. an atom it links to was removed meanwhile).
        const e = error as { message?: string; code?: string };
        for (const line of g.lines) fail(line, e.message ?? String(error), e.code ?? 'BAD_ATOM');
      },
    );
    return done;
  };

  const flush = async () => {
    if (!group.items.length) return;
    const next = commit(group);
    group = { lines: [], items: [] };
    newSpaces = new Map();
    // Two groups in flight: this one is applied in memory, the previous one may still be syncing.
    if (inFlight) await inFlight;
    inFlight = next;
  };

  let sliceStart = performance.now();
  reading: for await (const entries of input) {
    for (const entry of entries) {
      if (report.stopped) break reading;
      // Lines already buffered come through microtasks only: let the event loop run between slices.
      if (performance.now() - sliceStart > SLICE_MS) {
        await new Promise((resolve) => setImmediate(resolve));
        sliceStart = performance.now();
      }
      report.lines = Math.max(report.lines, entry.line);
      if (report.ids) report.ids[entry.line - 1] = null;
      if ('error' in entry) {
        fail(entry.line, entry.error, entry.code);
        continue;
      }
      try {
        atomspace.check(entry.item);
        if ('node' in entry.item) {
          for (const e of entry.item.node.embeddings ?? []) {
            const dim = atomspace.space(e.space)?.dim ?? newSpaces.get(e.space);
            if (dim !== undefined && dim !== e.vector.length) throw new AtomSpaceError('BAD_ATOM', `space '${e.space}' holds ${dim}-dimensional vectors, got ${e.vector.length}`);
            newSpaces.set(e.space, e.vector.length);
          }
        }
      } catch (error) {
        const e = error as { message?: string; code?: string };
        fail(entry.line, e.message ?? String(error), e.code ?? 'BAD_ATOM');
        continue;
      }
      group.lines.push(entry.line);
      group.items.push(entry.item);
      if (group.items.length >= options.groupSize) await flush();
    }
  }
  if (!report.stopped) await flush();
  await inFlight;
  if (report.ids) {
    const ids = report.ids;
    ids.length = report.stopped ? report.stopped.line - 1 : report.lines;
    for (let i = 0; i < ids.length; i++) ids[i] ??= null; // blank lines
  }
  return report;
}
