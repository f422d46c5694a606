import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The directory holding package.json, found from this file whether it runs from source or from dist/. */
function findProjectRoot(start: string): string {
  let dir = start;
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`package.json not found above ${start}`);
    dir = parent;
  }
  return dir;
}

export const projectRoot = findProjectRoot(__dirname);

/** A path inside the project (spec files, migrations), independent of where the code was compiled to. */
export function projectPath(...parts: string[]): string {
  return join(projectRoot, ...parts);
}
