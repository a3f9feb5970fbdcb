/**
 * The model repository: a folder whose subfolders holding an atenspace.json are models.
 * Names are folder names; nothing outside the repository can be addressed.
 */
import { existsSync, realpathSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';

import { MANIFEST_FILE } from './manifest.js';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export class ModelRepository {
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  static isValidName(name: string): boolean {
    return NAME.test(name) && !name.includes('..');
  }

  /** The model's folder, or undefined when the name is not a model inside the repository. */
  folderOf(name: string): string | undefined {
    if (!ModelRepository.isValidName(name)) return undefined;
    const folder = join(this.root, name);
    if (!existsSync(join(folder, MANIFEST_FILE))) return undefined;
    // A symlink may not lead out of the repository.
    const real = realpathSync(folder);
    const realRoot = realpathSync(this.root);
    if (real !== realRoot && !real.startsWith(realRoot + sep)) return undefined;
    return folder;
  }

  /** Names of the models in the repository, sorted. */
  async scan(): Promise<string[]> {
    if (!existsSync(this.root)) return [];
    const names: string[] = [];
    for (const entry of await readdir(this.root)) {
      if (!ModelRepository.isValidName(entry)) continue;
      const folder = join(this.root, entry);
      try {
        if ((await stat(folder)).isDirectory() && this.folderOf(entry)) names.push(entry);
      } catch {
        // vanished while scanning
      }
    }
    return names.sort();
  }
}
