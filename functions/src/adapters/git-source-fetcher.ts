/**
 * Reads the fleet sources the platform declares (`sources/<name>.yaml`) over smart HTTP
 * with isomorphic-git, like {@link GitFleetSource} reads the platform source: a shallow
 * fetch of one ref into a cache directory per repository and ref, files read from the
 * commit's tree. A `semver` ref lists the repository's tags and takes the highest that
 * satisfies the range. Credentials come by the declaration's `secretRef`, resolved by
 * the hub (a Secrets Manager secret in AWS, the local credentials file otherwise).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { isFleetRepoPath, repoFileContent } from '@flotilla/shared';
import type { SourceFetcher } from '@flotilla/shared/hub';
import type { FleetSourceSpec, SourceSnapshot } from '@flotilla/shared/sources';
import git, { type GitAuth } from 'isomorphic-git';
import http from 'isomorphic-git/http/node';
import semver from 'semver';

/** HTTP credentials of a git repository: a user name and password (or token), or a bearer token. */
export type GitCredentials =
  | { readonly username: string; readonly password: string }
  | { readonly token: string };

/** Resolves a source's `credentials.secretRef` to what it names; undefined when there is no such secret. */
export interface GitCredentialResolver {
  resolve(secretRef: string): Promise<GitCredentials | undefined>;
}

/** Reads fleet sources from their git repositories. */
export class GitSourceFetcher implements SourceFetcher {
  readonly #cacheDir: string;
  readonly #credentials: GitCredentialResolver | undefined;
  // isomorphic-git's pack cache; kept across calls in one process.
  readonly #cache: object = {};

  constructor(opts: { cacheDir: string; credentials?: GitCredentialResolver }) {
    this.#cacheDir = opts.cacheDir;
    this.#credentials = opts.credentials;
  }

  /** The files of `source` at its ref, under its path and relative to it. */
  async fetch(source: FleetSourceSpec): Promise<SourceSnapshot> {
    const url = source.repo;
    const onAuth = await this.#auth(source);
    const auth = onAuth ? { onAuth } : {};
    let ref: string;
    if ('branch' in source.ref) ref = source.ref.branch;
    else if ('tag' in source.ref) ref = `refs/tags/${source.ref.tag}`;
    else ref = `refs/tags/${await this.#highestTag(url, source.ref.semver, auth)}`;

    const refKey = 'semver' in source.ref ? 'semver' : ref;
    const dir = join(
      this.#cacheDir,
      createHash('sha256').update(`${url}#${refKey}`).digest('hex').slice(0, 16),
    );
    if (!fs.existsSync(join(dir, '.git'))) {
      fs.mkdirSync(dir, { recursive: true });
      await git.init({ fs, dir });
      await git.addRemote({ fs, dir, remote: 'origin', url, force: true });
    }
    let fetchHead: string | null;
    try {
      const res = await git.fetch({
        fs,
        http,
        dir,
        cache: this.#cache,
        url,
        ref,
        remoteRef: ref,
        singleBranch: true,
        depth: 1,
        tags: false,
        prune: true,
        ...auth,
      });
      fetchHead = res.fetchHead;
    } catch (err) {
      throw new Error(`git fetch ${url} (${describeRef(source)}): ${(err as Error).message}`, { cause: err });
    }
    if (!fetchHead) throw new Error(`${describeRef(source)} not found in ${url}`);
    const commit = await this.#peel(dir, fetchHead);
    return { commit, files: await this.#read(dir, commit, source.path) };
  }

  async #auth(source: FleetSourceSpec): Promise<(() => GitAuth) | undefined> {
    if (source.secretRef === undefined) return undefined;
    if (!this.#credentials)
      throw new Error(`this hub resolves no credentials (secretRef "${source.secretRef}")`);
    const found = await this.#credentials.resolve(source.secretRef);
    if (!found) throw new Error(`credentials secret "${source.secretRef}" not found`);
    const auth: GitAuth =
      'token' in found
        ? { headers: { Authorization: `Bearer ${found.token}` } }
        : { username: found.username, password: found.password };
    return () => auth;
  }

  /** The highest tag of the repository (a version, with or without a leading `v`) in `range`. */
  async #highestTag(url: string, range: string, auth: { onAuth?: () => GitAuth }): Promise<string> {
    if (semver.validRange(range) === null) throw new Error(`"${range}" is not a semver range`);
    let refs: { ref: string }[];
    try {
      refs = await git.listServerRefs({ http, url, prefix: 'refs/tags/', ...auth });
    } catch (err) {
      throw new Error(`git ls-remote ${url}: ${(err as Error).message}`, { cause: err });
    }
    const byVersion = new Map<string, string>();
    for (const { ref } of refs) {
      if (ref.endsWith('^{}')) continue;
      const tag = ref.slice('refs/tags/'.length);
      const version = semver.valid(tag.replace(/^v/, ''));
      if (version && !byVersion.has(version)) byVersion.set(version, tag);
    }
    const best = semver.maxSatisfying([...byVersion.keys()], range);
    if (best === null)
      throw new Error(
        `no tag of ${url} satisfies "${range}" (versions: ${[...byVersion.keys()].sort(semver.compare).join(', ') || 'none'})`,
      );
    return byVersion.get(best) as string;
  }

  /** The commit an annotated tag points at (a commit's own id when it is one). */
  async #peel(dir: string, oid: string): Promise<string> {
    let current = oid;
    for (let i = 0; i < 5; i++) {
      const { type } = await git.readObject({ fs, dir, oid: current, format: 'parsed', cache: this.#cache });
      if (type !== 'tag') return current;
      current = (await git.readTag({ fs, dir, oid: current, cache: this.#cache })).tag.object;
    }
    return current;
  }

  async #read(dir: string, commit: string, path: string): Promise<{ path: string; content: string }[]> {
    const prefix = path === '' ? '' : `${path}/`;
    const paths = await git.listFiles({ fs, dir, ref: commit, cache: this.#cache });
    const wanted = paths
      .filter((p) => p.startsWith(prefix))
      .map((p) => p.slice(prefix.length))
      .filter((p) => isFleetRepoPath(p) && !p.split('/').some((s) => s.startsWith('.')))
      .sort();
    return Promise.all(
      wanted.map(async (rel) => {
        const { blob } = await git.readBlob({
          fs,
          dir,
          oid: commit,
          filepath: prefix + rel,
          cache: this.#cache,
        });
        return { path: rel, content: repoFileContent(blob) };
      }),
    );
  }
}

function describeRef(source: FleetSourceSpec): string {
  if ('branch' in source.ref) return `branch "${source.ref.branch}"`;
  if ('tag' in source.ref) return `tag "${source.ref.tag}"`;
  return `semver "${source.ref.semver}"`;
}

/**
 * Credentials by secret name from Secrets Manager (or any {@link readSecret}): a secret
 * holds `{"username": "...", "password": "..."}` or `{"token": "..."}`, as the fleet repo's
 * own credentials secret does. Read once per name per process.
 */
export function secretCredentialResolver(
  readSecret: (secretId: string) => Promise<string>,
): GitCredentialResolver {
  const memo = new Map<string, Promise<GitCredentials | undefined>>();
  return {
    resolve(secretRef) {
      let got = memo.get(secretRef);
      if (!got) {
        got = readSecret(secretRef).then(
          (text) => parseGitCredentials(text, `secret ${secretRef}`),
          (err: unknown) => {
            memo.delete(secretRef);
            if ((err as { name?: string }).name === 'ResourceNotFoundException') return undefined;
            throw new Error(`secret ${secretRef}: ${(err as Error).message}`, { cause: err });
          },
        );
        memo.set(secretRef, got);
      }
      return got;
    },
  };
}

/** Reads a credentials secret's text; the error names the secret, never its value. */
export function parseGitCredentials(text: string, where: string): GitCredentials {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const v = parsed as { username?: unknown; password?: unknown; token?: unknown } | undefined;
  if (typeof v?.username === 'string' && typeof v.password === 'string')
    return { username: v.username, password: v.password };
  if (typeof v?.token === 'string') return { token: v.token };
  throw new Error(`${where}: expected JSON {"username": "...", "password": "..."} or {"token": "..."}`);
}
