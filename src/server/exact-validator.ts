/**
 * A Fastify body validator that checks a route's TypeBox schema as it is, never coercing types
 * (the app's Ajv coerces, which would turn token ids into strings or a one-element array into
 * its element). A failure is a 400 naming the first field that is wrong.
 */
import type { TSchema } from 'typebox';
import { Compile } from 'typebox/compile';

/** The first error of `check` on `data`, as "body.field message". */
export function firstError(check: ReturnType<typeof Compile>, data: unknown): string {
  const first = [...check.Errors(data)][0];
  const path = (first?.instancePath ?? '').split('/').slice(1);
  if (first?.keyword === 'boolean' && first.schemaPath.endsWith('/additionalProperties')) {
    // TypeBox says "schema is false" of a field the object does not allow.
    return `unknown field '${path[path.length - 1]}' in ${['body', ...path.slice(0, -1)].join('.')}`;
  }
  return `${['body', ...path].join('.')} ${first?.message ?? 'is invalid'}`;
}

export function badRequest(message: string): Error {
  return Object.assign(new Error(message), { code: 'BAD_REQUEST', statusCode: 400 });
}

/** For a route's `validatorCompiler`. */
export function exactValidator({ schema }: { schema: unknown }) {
  const check = Compile(schema as TSchema);
  return (data: unknown) => (check.Check(data) ? { value: data } : { error: badRequest(firstError(check, data)) });
}
