import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import git from 'isomorphic-git';
import http from 'isomorphic-git/http/node';
import { describe, expect, inject, it } from 'vitest';
import { createBareRepo } from '../../bed/src/git-server.ts';

const bed = inject('bed');

function sh(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, {
    cwd,
    encoding: 'utf8',
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: 'Fleet Admin',
      GIT_AUTHOR_EMAIL: 'admin@example.com',
      GIT_COMMITTER_NAME: 'Fleet Admin',
      GIT_COMMITTER_EMAIL: 'admin@example.com',
    },
  }).trim();
}

describe('git smart-HTTP server (smoke)', () => {
  it('serves a clone to isomorphic-git, then a fetch of a commit pushed afterwards', async () => {
    const name = `smoke-${Date.now()}`;
    await createBareRepo(bed.git.reposDir, name);
    const url = `${bed.git.url}/${name}.git`;

    // A fleet admin pushes with the real git client over HTTP.
    const work = mkdtempSync(join(tmpdir(), 'flotilla-admin-'));
    sh(work, 'init', '--quiet', '--initial-branch=main');
    writeFileSync(join(work, 'README.md'), 'fleet\n');
    sh(work, 'add', '.');
    sh(work, 'commit', '--quiet', '-m', 'first');
    sh(work, 'push', '--quiet', url, 'main');
    const first = sh(work, 'rev-parse', 'HEAD');

    // The hub clones with isomorphic-git: shallow, single branch.
    const hubDir = mkdtempSync(join(tmpdir(), 'flotilla-hub-'));
    await git.clone({ fs, http, dir: hubDir, url, ref: 'main', singleBranch: true, depth: 1 });
    expect(await git.resolveRef({ fs, dir: hubDir, ref: 'HEAD' })).toBe(first);

    writeFileSync(join(work, 'README.md'), 'fleet v2\n');
    sh(work, 'commit', '--quiet', '-am', 'second');
    sh(work, 'push', '--quiet', url, 'main');
    const second = sh(work, 'rev-parse', 'HEAD');
    expect(second).not.toBe(first);

    const fetched = await git.fetch({
      fs,
      http,
      dir: hubDir,
      url,
      ref: 'main',
      singleBranch: true,
      depth: 1,
    });
    expect(fetched.fetchHead).toBe(second);
    const { blob } = await git.readBlob({ fs, dir: hubDir, oid: second, filepath: 'README.md' });
    expect(Buffer.from(blob).toString('utf8')).toBe('fleet v2\n');
  });
});
