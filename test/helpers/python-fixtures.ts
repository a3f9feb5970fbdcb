/**
 * Runs a Python fixture script once per content hash and returns its output folder.
 * Test files share the result through test/.artifacts, so the (slow) Python side runs
 * once per change of the script, not once per test file.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const artifactsDir = join(repoRoot, 'test', '.artifacts');

/** Files under `dir` (recursively) whose contents feed the fixture hash. */
function sourceFiles(dir: string): string[] {
  const full = join(repoRoot, dir);
  if (!existsSync(full)) return [];
  if (statSync(full).isFile()) return [full];
  return readdirSync(full, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.py') && !f.includes('__pycache__') && !f.startsWith('tests'))
    .sort()
    .map((f) => join(full, f));
}

/** Run `script OUT_DIR` unless its output for the current script (and `dependsOn` sources) exists. */
export function pythonFixtures(script: string, dependsOn: string[] = []): string {
  const scriptPath = join(repoRoot, script);
  const digest = createHash('sha256').update(readFileSync(scriptPath));
  for (const file of dependsOn.flatMap(sourceFiles)) digest.update(file).update(readFileSync(file));
  const hash = digest.digest('hex').slice(0, 12);
  const name = script.replace(/[^a-z0-9]+/gi, '-').replace(/-py$/, '');
  const out = join(artifactsDir, `${name}-${hash}`);
  if (existsSync(join(out, '.done'))) return out;
  const tmp = `${out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  execFileSync('python3', [scriptPath, tmp], { stdio: ['ignore', 'ignore', 'pipe'] });
  execFileSync('touch', [join(tmp, '.done')]);
  rmSync(out, { recursive: true, force: true });
  renameSync(tmp, out);
  return out;
}

export function readJson<T = unknown>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}
