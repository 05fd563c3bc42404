import { execFile, execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { createBareRepo } from '../bed/src/git-server.ts';

export const exampleFleetRepo = new URL('../../examples/fleet-repo/', import.meta.url).pathname;

/**
 * A fleet admin's working copy of a repository on the bed's git server: edit files,
 * commit and push with the real git client, as a person would.
 */
export class FleetWorkingCopy {
  readonly url: string;
  readonly dir: string;

  private constructor(url: string, dir: string) {
    this.url = url;
    this.dir = dir;
  }

  /** Creates `name.git` on the bed's server and pushes `from` (a folder) as its first commit. */
  static async create(
    git: { url: string; reposDir: string },
    name: string,
    from = exampleFleetRepo,
  ): Promise<FleetWorkingCopy> {
    await createBareRepo(git.reposDir, name);
    const dir = mkdtempSync(join(tmpdir(), `flotilla-${name}-`));
    cpSync(from, dir, { recursive: true });
    const copy = new FleetWorkingCopy(`${git.url}/${name}.git`, dir);
    copy.git('init', '--quiet', '--initial-branch=main');
    await copy.commitAsync('Initial fleet');
    return copy;
  }

  write(path: string, content: string): this {
    mkdirSync(dirname(join(this.dir, path)), { recursive: true });
    writeFileSync(join(this.dir, path), content);
    return this;
  }

  remove(path: string): this {
    rmSync(join(this.dir, path), { recursive: true, force: true });
    return this;
  }

  /** Commits everything and pushes to main; returns the new commit id. */
  commit(message: string): string {
    this.git('add', '-A');
    this.git('commit', '--quiet', '--allow-empty', '-m', message);
    this.git('push', '--quiet', this.url, 'main');
    return this.git('rev-parse', 'HEAD');
  }

  /**
   * `commit`, with the push run asynchronously: needed when the git server answering it
   * runs in this very process (`npm start`), where a synchronous push would wait forever.
   */
  async commitAsync(message: string): Promise<string> {
    this.git('add', '-A');
    this.git('commit', '--quiet', '--allow-empty', '-m', message);
    await promisify(execFile)('git', ['push', '--quiet', this.url, 'main'], {
      cwd: this.dir,
      env: this.#env(),
    });
    return this.git('rev-parse', 'HEAD');
  }

  git(...args: string[]): string {
    return execFileSync('git', args, {
      cwd: this.dir,
      encoding: 'utf8',
      env: this.#env(),
    }).trim();
  }

  #env(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      GIT_AUTHOR_NAME: 'Fleet Admin',
      GIT_AUTHOR_EMAIL: 'admin@example.com',
      GIT_COMMITTER_NAME: 'Fleet Admin',
      GIT_COMMITTER_EMAIL: 'admin@example.com',
    };
  }

  dispose(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
