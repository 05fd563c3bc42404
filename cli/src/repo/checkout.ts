/**
 * A local checkout of the fleet repo, read as the hub reads a commit: the files of the
 * fleet repo's folders and root files (`isFleetRepoPath`), hidden entries skipped.
 * Working-tree files, so a change can be previewed before it is committed and pushed.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { FLEET_REPO_FOLDERS, FLEET_REPO_ROOT_FILES, repoFileContent } from '@flotilla/shared';
import { CliError } from '../core/errors.ts';
import { ExitCode } from '../core/exit-codes.ts';

export interface RepoFile {
  readonly path: string;
  readonly content: string;
}

export function readCheckout(dir: string, cwd: string): RepoFile[] {
  const root = resolve(cwd, dir);
  let isDir = false;
  try {
    isDir = statSync(root).isDirectory();
  } catch {
    isDir = false;
  }
  if (!isDir) throw new CliError(ExitCode.Usage, `--repo ${dir}: no such directory`);
  const files: RepoFile[] = [];
  const walk = (abs: string, rel: string) => {
    for (const entry of readdirSync(abs, { withFileTypes: true }).sort((a, b) =>
      a.name < b.name ? -1 : 1,
    )) {
      if (entry.name.startsWith('.')) continue;
      const childAbs = join(abs, entry.name);
      const childRel = `${rel}/${entry.name}`;
      if (entry.isDirectory()) walk(childAbs, childRel);
      else if (entry.isFile())
        files.push({ path: childRel, content: repoFileContent(readFileSync(childAbs)) });
    }
  };
  for (const file of FLEET_REPO_ROOT_FILES) {
    const abs = join(root, file);
    try {
      if (statSync(abs).isFile()) files.push({ path: file, content: repoFileContent(readFileSync(abs)) });
    } catch {
      // absent: the defaults
    }
  }
  for (const folder of FLEET_REPO_FOLDERS) {
    const abs = join(root, folder);
    try {
      if (!statSync(abs).isDirectory()) continue;
    } catch {
      continue;
    }
    walk(abs, folder);
  }
  if (!files.some((f) => f.path.startsWith('bundles/'))) {
    throw new CliError(
      ExitCode.Usage,
      `--repo ${dir}: no bundles/ folder there; is it a fleet repo checkout?`,
    );
  }
  return files;
}
