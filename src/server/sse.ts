/**
 * Server-Sent Events over a Fastify reply: the stream opens (200, text/event-stream) with the
 * first event, so an error before anything was sent is still an ordinary JSON error answer;
 * an error after that ends the stream with an `error` event.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';

import { toHttp } from './http-errors.js';

export class EventStream {
  #started = false;

  constructor(
    private readonly request: FastifyRequest,
    private readonly reply: FastifyReply,
    /** The body of the `error` event that ends a stream that fails once started. */
    private readonly errorBody: (error: unknown) => unknown = (error) => toHttp(error).body,
  ) {}

  get started(): boolean {
    return this.#started;
  }

  /** One `data:` event with this JSON. */
  send(data: unknown): void {
    this.#open();
    this.reply.raw.write(`data: ${JSON.stringify(data)}\n\n`);
  }

  /** End with a last raw `data:` line (e.g. `[DONE]`). */
  end(last?: string): void {
    this.#open();
    this.reply.raw.end(last === undefined ? undefined : `data: ${last}\n\n`);
  }

  /**
   * Run `produce` (which sends events); a failure before the first event is rethrown for the
   * route's error handler, after it the stream ends with `event: error`.
   */
  async run(produce: () => Promise<void>): Promise<void> {
    try {
      await produce();
    } catch (error) {
      if (!this.#started) throw error;
      this.reply.raw.end(`event: error\ndata: ${JSON.stringify(this.errorBody(error))}\n\n`);
    }
  }

  #open(): void {
    if (this.#started) return;
    this.#started = true;
    this.reply.hijack();
    this.reply.raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-request-id': this.request.id });
  }
}
