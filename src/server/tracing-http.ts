/**
 * Tracing of HTTP requests: a server span per request (health probes and /metrics excepted),
 * continuing the caller's `traceparent`; the span is the request's current trace while its
 * handler runs, and its trace and span ids are in every log line of the request.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';

import { enterTrace } from '../models/request-trace.js';
import { toHttp } from './http-errors.js';
import type { RequestSpan, Tracing } from './tracing.js';

const spans = new WeakMap<FastifyRequest, { span: RequestSpan; error?: { code: string; message: string } }>();

export function registerHttpTracing(app: FastifyInstance, tracing: Tracing): void {
  // Callback hooks: the trace entered here stays current through the rest of the request's
  // hooks and its handler, which Fastify calls from `done`.
  app.addHook('onRequest', (request, reply, done) => {
    const config = request.routeOptions.config;
    if (config.public || config.alwaysServe) return done();
    const route = request.routeOptions.url ?? request.url.split('?')[0]!;
    const span = tracing.startRequest(`${request.method} ${route}`, request.headers, {
      'http.request.method': request.method,
      'url.path': request.url.split('?')[0]!,
      'http.route': route,
    });
    spans.set(request, { span });
    const log = request.log.child(span.logFields);
    request.log = log;
    reply.log = log;
    enterTrace(span);
    done();
  });
  app.addHook('onError', (request, _reply, error, done) => {
    const traced = spans.get(request);
    if (traced) {
      const { body } = toHttp(error);
      traced.error = { code: body.code, message: body.error };
    }
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    const traced = spans.get(request);
    if (traced) traced.span.end({ 'http.response.status_code': reply.statusCode }, traced.error, reply.statusCode >= 500);
    done();
  });
}
