/**
 * The model repository: a folder whose subfolders holding an atenspace.json are models.
 * Names are folder names; nothing outside the repository can be addressed.
 */
import { existsSync, realpathSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { isAbsolute, join, resolve, sep } from 'node:path';

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

  /**
   * A file a model's manifest names, as a path: it must stay inside the repository (no
   * absolute path, no '..', no symlink leading out). Throws naming the file otherwise.
   */
  fileIn(folder: string, relative: string): string {
    if (isAbsolute(relative) || relative.split(/[\\/]/).includes('..')) throw new Error(`the manifest names '${relative}', which is outside the model's folder`);
    const path = join(folder, relative);
    if (existsSync(path)) {
      const real = realpathSync(path);
      if (!real.startsWith(realpathSync(this.root) + sep)) throw new Error(`'${relative}' is a link to ${real}, outside the model repository`);
    }
    return path;
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
