import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { isFleetRepoPath, repoFileContent } from '@flotilla/shared';
import git from 'isomorphic-git';
import http from 'isomorphic-git/http/node';

/** A file of the fleet repo at one commit. */
export interface FleetFile {
  readonly path: string;
  readonly content: string;
}

export interface FleetSnapshot {
  readonly commit: string;
  readonly files: FleetFile[];
}

/**
 * Reads the fleet repo over smart HTTP with isomorphic-git: a shallow, single-branch
 * fetch into a cache directory that warm invocations reuse, so a sync after the
 * first one transfers only what changed. Files are read from the commit's tree,
 * never checked out.
 */
export class GitFleetSource {
  readonly #url: string;
  readonly #ref: string;
  readonly #dir: string;
  readonly #auth: { username: string; password: string } | undefined;
  // isomorphic-git's pack cache; kept across calls in one process.
  readonly #cache: object = {};

  constructor(opts: {
    url: string;
    ref: string;
    cacheDir: string;
    auth?: { username: string; password: string };
  }) {
    this.#url = opts.url;
    this.#ref = opts.ref;
    this.#auth = opts.auth;
    this.#dir = join(
      opts.cacheDir,
      createHash('sha256').update(`${opts.url}#${opts.ref}`).digest('hex').slice(0, 16),
    );
  }

  /** Fetches the branch tip and returns its commit and fleet files. */
  async fetch(): Promise<FleetSnapshot> {
    const onAuth = this.#auth ? () => this.#auth : undefined;
    if (!fs.existsSync(join(this.#dir, '.git'))) {
      fs.mkdirSync(this.#dir, { recursive: true });
      await git.init({ fs, dir: this.#dir, defaultBranch: this.#ref });
      await git.addRemote({ fs, dir: this.#dir, remote: 'origin', url: this.#url, force: true });
    }
    const res = await git.fetch({
      fs,
      http,
      dir: this.#dir,
      cache: this.#cache,
      url: this.#url,
      ref: this.#ref,
      remoteRef: this.#ref,
      singleBranch: true,
      depth: 1,
      tags: false,
      prune: true,
      ...(onAuth ? { onAuth } : {}),
    });
    if (!res.fetchHead) throw new Error(`branch "${this.#ref}" not found in ${this.#url}`);
    return { commit: res.fetchHead, files: await this.read(res.fetchHead) };
  }

  /** The fleet files of a commit already fetched. */
  async read(commit: string): Promise<FleetFile[]> {
    const paths = await git.listFiles({ fs, dir: this.#dir, ref: commit, cache: this.#cache });
    const wanted = paths.filter(isFleetRepoPath).sort();
    return Promise.all(
      wanted.map(async (path) => {
        const { blob } = await git.readBlob({
          fs,
          dir: this.#dir,
          oid: commit,
          filepath: path,
          cache: this.#cache,
        });
        return { path, content: repoFileContent(blob) };
      }),
    );
  }
}
