/**
 * The model repository: a folder whose subfolders are models. A model folder either holds an
 * atenspace.json itself (one version, "1"), or numbered version folders that do
 * (`<name>/<N>/atenspace.json`, as Triton lays out versions). Names are folder names; nothing
 * outside the repository can be addressed.
 */
import { existsSync, readdirSync, realpathSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { isAbsolute, join, resolve, sep } from 'node:path';

import { MANIFEST_FILE } from './manifest.js';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const VERSION = /^[1-9][0-9]{0,17}$/;

/** One version of a model: its number (as text, e.g. "3") and the folder its files are in. */
export interface ModelVersionFolder {
  version: string;
  folder: string;
}

export class ModelRepository {
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  static isValidName(name: string): boolean {
    return NAME.test(name) && !name.includes('..');
  }

  static isValidVersion(version: string): boolean {
    return VERSION.test(version);
  }

  /** The model's folder, or undefined when the name is not a model inside the repository. */
  folderOf(name: string): string | undefined {
    if (!ModelRepository.isValidName(name)) return undefined;
    const folder = join(this.root, name);
    if (!existsSync(folder) || !this.#inside(folder)) return undefined;
    if (existsSync(join(folder, MANIFEST_FILE))) return folder;
    return this.#numbered(folder).length > 0 ? folder : undefined;
  }

  /**
   * The model's versions, oldest first: its numbered folders that hold a manifest, or, for a
   * flat model folder, the folder itself as version "1".
   */
  versionsOf(name: string): ModelVersionFolder[] {
    const folder = this.folderOf(name);
    if (!folder) return [];
    const numbered = this.#numbered(folder);
    if (numbered.length > 0) return numbered.map((version) => ({ version, folder: join(folder, version) }));
    return [{ version: '1', folder }];
  }

  #numbered(folder: string): string[] {
    let entries: string[];
    try {
      entries = readdirSync(folder);
    } catch {
      return [];
    }
    return entries
      .filter((e) => ModelRepository.isValidVersion(e) && existsSync(join(folder, e, MANIFEST_FILE)) && this.#inside(join(folder, e)))
      .sort((a, b) => Number(a) - Number(b));
  }

  /** A symlink may not lead out of the repository. */
  #inside(path: string): boolean {
    const real = realpathSync(path);
    const realRoot = realpathSync(this.root);
    return real === realRoot || real.startsWith(realRoot + sep);
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
