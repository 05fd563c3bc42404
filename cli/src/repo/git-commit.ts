/**
 * The fleet repo at one commit of a local git repository, read with isomorphic-git as the
 * hub reads the fleet repo (files from the commit's tree, nothing checked out), so that
 * `flotilla diff --base <ref>` needs neither the hub nor a `git` binary.
 */
import * as fs from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { isFleetRepoPath } from '@flotilla/shared';
import git from 'isomorphic-git';
import { CliError } from '../core/errors.ts';
import { ExitCode } from '../core/exit-codes.ts';
import type { RepoFile } from './checkout.ts';

export interface CommitFiles {
  readonly commit: string;
  readonly files: RepoFile[];
}

async function gitRoot(dir: string): Promise<string> {
  try {
    return await git.findRoot({ fs, filepath: dir });
  } catch (err) {
    throw new CliError(
      ExitCode.Usage,
      `--repo ${dir}: not inside a git repository, so --base cannot be read`,
      {
        cause: err,
      },
    );
  }
}

/** Where git keeps a repository's objects and refs, and, in a linked worktree, its own HEAD. */
interface GitDirs {
  readonly gitdir: string;
  /** The worktree's HEAD (`ref: refs/heads/x` or a commit id) when it is not the repository's. */
  readonly head: string | undefined;
}

/**
 * `.git` is a folder in a plain clone, and a file (`gitdir: <path>`) in a linked worktree
 * (`git worktree add`) or a submodule. isomorphic-git reads folders only, so a worktree's
 * HEAD is read here and everything else from the common folder it points to.
 */
function gitDirs(root: string): GitDirs {
  const dotGit = join(root, '.git');
  if (fs.statSync(dotGit).isDirectory()) return { gitdir: dotGit, head: undefined };
  const pointer = /^gitdir:\s*(.+?)\s*$/m.exec(fs.readFileSync(dotGit, 'utf8'))?.[1];
  if (!pointer) throw new CliError(ExitCode.Usage, `${dotGit}: not a git folder or a "gitdir:" file`);
  const own = resolve(root, pointer);
  let common = own;
  try {
    common = resolve(own, fs.readFileSync(join(own, 'commondir'), 'utf8').trim());
  } catch {
    // a submodule: its folder is the whole repository
  }
  const head = fs.readFileSync(join(own, 'HEAD'), 'utf8').trim();
  return { gitdir: common, head: common === own ? undefined : head };
}

/**
 * Resolves `ref` as git does for the common forms: a full or abbreviated commit id, a
 * branch, tag or remote-tracking branch (`main`, `v1.2`, `origin/main`, `HEAD`), each
 * optionally followed by `~N` or `^` steps to ancestors.
 */
async function resolveCommit(dirs: GitDirs, ref: string): Promise<string> {
  const { gitdir } = dirs;
  const m = /^(.+?)((?:~\d*|\^1?)*)$/.exec(ref);
  let base = m?.[1] ?? ref;
  if (base === 'HEAD' && dirs.head !== undefined) {
    base = dirs.head.startsWith('ref: ') ? dirs.head.slice('ref: '.length) : dirs.head;
  }
  const steps = m?.[2] ?? '';
  const cache = {};
  let oid: string | undefined;
  for (const candidate of [base, `refs/heads/${base}`, `refs/tags/${base}`, `refs/remotes/${base}`]) {
    try {
      oid = await git.resolveRef({ fs, gitdir, ref: candidate });
      break;
    } catch {
      // try the next form
    }
  }
  if (oid === undefined && /^[0-9a-f]{4,40}$/.test(base)) {
    try {
      oid = await git.expandOid({ fs, gitdir, oid: base, cache });
    } catch {
      oid = undefined;
    }
  }
  if (oid === undefined) {
    throw new CliError(ExitCode.Usage, `--base ${ref}: no such commit, branch or tag in ${gitdir}`);
  }
  // Annotated tags point at a tag object: follow it to the commit.
  let read = await git.readObject({ fs, gitdir, oid, cache });
  while (read.type === 'tag') {
    oid = (read.object as { object: string }).object;
    read = await git.readObject({ fs, gitdir, oid, cache });
  }
  for (const step of steps.match(/~\d*|\^1?/g) ?? []) {
    const n = step.startsWith('~') ? Number(step.slice(1) || '1') : 1;
    for (let i = 0; i < n; i++) {
      const { commit } = await git.readCommit({ fs, gitdir, oid, cache });
      const parent = commit.parent[0];
      if (!parent) throw new CliError(ExitCode.Usage, `--base ${ref}: ${oid.slice(0, 12)} has no parent`);
      oid = parent;
    }
  }
  return oid;
}

/**
 * The fleet files (`isFleetRepoPath`: bundles/, groups/, ..., tenants/, sources/) of `ref` in the git repository holding
 * `dir`, with paths relative to `dir` (the fleet repo may be a folder of a larger repo).
 */
export async function readCommit(dir: string, cwd: string, ref: string): Promise<CommitFiles> {
  const abs = resolve(cwd, dir);
  const root = await gitRoot(abs);
  const prefix = relative(root, abs).split(sep).filter(Boolean).join('/');
  const dirs = gitDirs(root);
  const { gitdir } = dirs;
  const commit = await resolveCommit(dirs, ref);
  const cache = {};
  const paths = await git.listFiles({ fs, gitdir, ref: commit, cache });
  const files: RepoFile[] = [];
  for (const full of paths.sort()) {
    if (prefix && !full.startsWith(`${prefix}/`)) continue;
    const path = prefix ? full.slice(prefix.length + 1) : full;
    if (!isFleetRepoPath(path)) continue;
    if (path.split('/').some((part) => part.startsWith('.'))) continue;
    const { blob } = await git.readBlob({ fs, gitdir, oid: commit, filepath: full, cache });
    files.push({ path, content: Buffer.from(blob).toString('utf8') });
  }
  return { commit, files };
}
