/**
 * npm run atomspace -- <command>: tools for the AtomSpace's stores.
 *
 *   migrate --from journal --to postgres [--data-dir DIR] [--database-url URL] [--atom-types FILE]
 *   migrate --from postgres --to journal [--data-dir DIR] [--database-url URL]
 *
 * DIR defaults to DATA_DIR (else ./data), URL to DATABASE_URL. Exits 0 and prints a JSON
 * report when done, 2 on a usage error, 1 when the migration failed (nothing is half-written
 * into PostgreSQL: it is one transaction).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import pg from 'pg';

import { journalToPostgres, postgresToJournal } from '../src/atomspace/store/migrate.js';
import type { TypeDefinition } from '../src/atomspace/types.js';

const USAGE = `usage: npm run atomspace -- migrate --from journal|postgres --to postgres|journal [--data-dir DIR] [--database-url URL] [--atom-types FILE]`;

function fail(message: string, code: number): never {
  console.error(`atomspace: ${message}`);
  process.exit(code);
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args: process.argv.slice(2),
      allowPositionals: true,
      options: { from: { type: 'string' }, to: { type: 'string' }, 'data-dir': { type: 'string' }, 'database-url': { type: 'string' }, 'atom-types': { type: 'string' } },
    });
  } catch (error) {
    fail(`${(error as Error).message}\n${USAGE}`, 2);
  }
  const { values, positionals } = parsed;
  if (positionals[0] !== 'migrate' || positionals.length !== 1) fail(USAGE, 2);
  const direction = `${values.from}->${values.to}`;
  if (direction !== 'journal->postgres' && direction !== 'postgres->journal') fail(`cannot migrate --from ${values.from} --to ${values.to}\n${USAGE}`, 2);
  const dataDir = values['data-dir'] ?? process.env.DATA_DIR ?? './data';
  const url = values['database-url'] ?? process.env.DATABASE_URL;
  if (!url) fail('give --database-url or set DATABASE_URL (postgres://user:password@host:5432/db)', 2);
  const typesFile = values['atom-types'] ?? process.env.ATOM_TYPES;
  const types = typesFile ? (JSON.parse(readFileSync(typesFile, 'utf8')) as TypeDefinition[]) : [];
  const pool = new pg.Pool({ connectionString: url, max: 2, connectionTimeoutMillis: 10_000 });
  pool.on('error', () => undefined);
  try {
    const started = performance.now();
    const report = direction === 'journal->postgres' ? await journalToPostgres(dataDir, pool, types) : await postgresToJournal(pool, dataDir);
    console.log(JSON.stringify({ from: values.from, to: values.to, dataDir, ...report, seconds: Number(((performance.now() - started) / 1000).toFixed(2)) }));
  } catch (error) {
    fail(`migration failed: ${(error as Error).message}`, 1);
  } finally {
    await pool.end();
  }
}

void main();
