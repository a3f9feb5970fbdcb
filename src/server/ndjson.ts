/**
 * Splits a byte stream into NDJSON lines as it arrives: each line (without its `\n` or `\r\n`)
 * with its 1-based number; blank lines are skipped (their numbers still count). A line longer
 * than `maxLineBytes` is not buffered: it comes out as `tooLong` and its bytes are discarded.
 * Lines come out in arrays, one per chunk read (per-line promises would cost more than the lines).
 */
export type NdjsonLine = { line: number; text: string } | { line: number; tooLong: number };

export async function* ndjsonLines(stream: AsyncIterable<Buffer | string>, maxLineBytes: number): AsyncGenerator<NdjsonLine[]> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  /** Bytes of the current line seen while skipping it (too long). */
  let skipping = 0;
  let line = 0;
  const emit = (parts: Buffer[], bytes: number): NdjsonLine | undefined => {
    line++;
    let buf = parts.length === 1 ? parts[0]! : Buffer.concat(parts, bytes);
    if (buf.length && buf[buf.length - 1] === 13) buf = buf.subarray(0, buf.length - 1);
    if (buf.length === 0) return undefined;
    return { line, text: buf.toString('utf8') };
  };
  for await (const raw of stream) {
    const chunk = typeof raw === 'string' ? Buffer.from(raw) : raw;
    const out: NdjsonLine[] = [];
    let at = 0;
    while (at < chunk.length) {
      const nl = chunk.indexOf(10, at);
      const end = nl < 0 ? chunk.length : nl;
      if (skipping) {
        skipping += end - at;
      } else if (pendingBytes + (end - at) > maxLineBytes) {
        skipping = pendingBytes + (end - at);
        pending = [];
        pendingBytes = 0;
      } else if (end > at || nl >= 0) {
        pending.push(chunk.subarray(at, end));
        pendingBytes += end - at;
      }
      if (nl < 0) break;
      if (skipping) {
        out.push({ line: ++line, tooLong: skipping });
        skipping = 0;
      } else {
        const one = emit(pending, pendingBytes);
        pending = [];
        pendingBytes = 0;
        if (one) out.push(one);
      }
      at = nl + 1;
    }
    if (out.length) yield out;
  }
  if (skipping) yield [{ line: ++line, tooLong: skipping }];
  else if (pendingBytes) {
    const one = emit(pending, pendingBytes);
    if (one) yield [one];
  }
}
