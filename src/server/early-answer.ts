/**
 * Answers sent before the request body has arrived (503 from load shedding, 401, 413 past a
 * limit, an import stopped early) still reach the client. Many clients send the whole body
 * before they read anything; if the server closes the socket while body bytes are still coming,
 * the kernel answers them with a reset, which also throws away the answer the client has not
 * read yet, and the client sees a broken pipe instead of the status and its Retry-After.
 *
 * So such an answer carries `Connection: close`, and after it is written the server half-closes
 * (FIN, no reset) and keeps reading and discarding the rest of the body, up to `drainBytes` and
 * for at most `drainMs`, like nginx's lingering close. Only a client that sends more than that
 * before reading loses the answer (`Expect: 100-continue` avoids even that).
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';

import type { FastifyInstance } from 'fastify';

export interface EarlyAnswerOptions {
  /** Body bytes still read (and discarded) after an early answer. */
  drainBytes: number;
  /** How long the rest of the body may take to arrive. */
  drainMs: number;
}

export function registerEarlyAnswers(app: FastifyInstance, options: EarlyAnswerOptions): void {
  app.addHook('onSend', async (request, reply) => {
    const raw = request.raw;
    if (raw.complete || !raw.socket || raw.socket.destroyed) return;
    // The client must not send its next request on this connection: the rest of this body comes first.
    void reply.header('connection', 'close');
    lingerAfterAnswer(raw.socket, raw, options);
  });
}

/**
 * Read the rest of the body from now on (counting it, dropping it), and replace Node's
 * socket.destroySoon() for a `Connection: close` answer, which would close for reading too,
 * with a half-close that waits for the body (up to the limits) before closing.
 */
function lingerAfterAnswer(socket: Socket, request: IncomingMessage, options: EarlyAnswerOptions): void {
  const own = socket as Socket & { destroySoon(): void; earlyAnswer?: true };
  if (own.earlyAnswer) return;
  own.earlyAnswer = true;
  let drained = 0;
  let answered = false;
  let deadline: NodeJS.Timeout | undefined;
  const stop = () => {
    clearTimeout(deadline);
    if (socket.destroyed) return;
    // What is still buffered of the answer goes out first.
    if (socket.writableFinished) socket.destroy();
    else socket.once('finish', () => socket.destroy());
  };
  // A reader of our own keeps Node from dumping the body (dumped bytes are dropped uncounted).
  request.on('data', (chunk: Buffer) => {
    drained += chunk.length;
    if (answered && drained > options.drainBytes) stop();
  });
  request.resume();
  const destroySoon = own.destroySoon;
  own.destroySoon = function lingeringClose() {
    own.destroySoon = destroySoon;
    answered = true;
    if (socket.writable) socket.end();
    if (request.complete || drained > options.drainBytes) return stop();
    request.once('end', stop);
    request.once('error', stop);
    socket.once('close', stop);
    deadline = setTimeout(stop, options.drainMs);
    deadline.unref();
  };
}
