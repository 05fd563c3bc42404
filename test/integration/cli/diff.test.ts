/**
 * `flotilla diff` end to end: a local hub on the bed's DynamoDB Local, ElasticMQ and git
 * server holds the desired state of four registered clusters; the command, run in-process
 * as `npx flotilla` runs it, compares a fleet admin's working copy with it (and, with
 * --base, with an earlier commit of the same real git repository, no hub).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type CliRun, runFlotilla } from '../../support/cli-run.ts';
import { FleetWorkingCopy } from '../../support/fleet-git.ts';
import { type ApiHub, startApiHub } from '../api/local-hub.ts';

const bed = inject('bed');
const id = `${process.pid % 1000}${Date.now().toString(36).slice(-5)}`;
const eu = ['diff-eu-1', 'diff-eu-2', 'diff-eu-3'].map((n) => `${n}-${id}`);
const us = `diff-us-1-${id}`;
const secretValue = 'hunter2-do-not-print';
const newSecretValue = 'correct-horse-battery';

let repo: FleetWorkingCopy;
let api: ApiHub;
let stateDir: string;

function webFiles(image: string, greeting: string, password: string): Record<string, string> {
  return {
    'bundles/web/bundle.yaml': `namespace: web\ntargets:\n  - clusterSelector: suite=${id}\n`,
    'bundles/web/deployment.yaml': [
      'apiVersion: apps/v1',
      'kind: Deployment',
      'metadata:',
      '  name: web',
      'spec:',
      '  replicas: 2',
      '  selector: { matchLabels: { app: web } }',
      '  template:',
      '    metadata: { labels: { app: web } }',
      '    spec:',
      `      containers: [{ name: web, image: "${image}" }]`,
      '',
    ].join('\n'),
    'bundles/web/config.yaml': `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: greeting\ndata:\n  text: "${greeting} \${cluster.labels.region}"\n`,
    'bundles/web/secret.yaml': `apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: "${password}"\n`,
  };
}

function writeAll(files: Record<string, string>) {
  for (const [path, content] of Object.entries(files)) repo.write(path, content);
}

type Run = CliRun;

function flotilla(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  return runFlotilla({ hubUrl: api.url, adminKey: api.adminKey, stateDir, cwd: repo.dir }, args, env);
}

beforeAll(async () => {
  stateDir = mkdtempSync(join(tmpdir(), 'flotilla-diff-state-'));
  const seed = mkdtempSync(join(tmpdir(), 'flotilla-diff-seed-'));
  repo = await FleetWorkingCopy.create(bed.git, `diff-${id}`, seed);
  rmSync(seed, { recursive: true, force: true });
  writeAll(webFiles('nginx:1.27.3', 'hello', secretValue));
  await repo.commitAsync('web 1.27.3');
  api = await startApiHub(bed, repo.url);
  for (const name of eu) {
    const res = await api.admin('/v1/admin/clusters', {
      method: 'POST',
      json: { name, labels: { suite: id, region: 'eu' } },
    });
    expect(res.status).toBe(201);
  }
  const res = await api.admin('/v1/admin/clusters', {
    method: 'POST',
    json: { name: us, labels: { suite: id, region: 'us' } },
  });
  expect(res.status).toBe(201);
  const sync = await flotilla(['sync']);
  expect(sync.code, sync.stderr).toBe(0);
});

afterAll(async () => {
  await api?.stop();
  repo?.dispose();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

describe('flotilla diff against the hub', () => {
  it('exits 0 and says so when the checkout renders what the hub holds', async () => {
    const run = await flotilla(['diff', '--repo', '.', '-q']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('no changes on 4 clusters\n');
  });

  it('exits 1 on a change, groups clusters that share it, and never prints a Secret value', async () => {
    writeAll(webFiles('nginx:1.27.4', 'hi', newSecretValue));
    const run = await flotilla(['diff', '--repo', '.', '-q']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(1);
    const summary =
      'greeting ConfigMap 1 field changed; db Secret key password changed; web Deployment image nginx 1.27.3 -> 1.27.4';
    expect(run.stdout).toMatch(/^4 clusters changed, 0 unchanged, 2 distinct change sets\n/);
    expect(run.stdout).toContain(`\n=== 3 clusters: ${summary}\nclusters: ${eu.join(', ')}\n`);
    expect(run.stdout).toContain(`\n=== 1 cluster: ${summary}\nclusters: ${us}\n`);
    expect(run.stdout).toContain('-  text: hello eu\n+  text: hi eu\n');
    expect(run.stdout).toContain('-  text: hello us\n+  text: hi us\n');
    expect(run.stdout).toContain('-        - image: nginx:1.27.3\n+        - image: nginx:1.27.4\n');
    expect(run.stdout).toContain(
      '-  password: "(redacted: old value)"\n+  password: "(redacted: new value)"\n',
    );
    expect(run.stdout).not.toContain(secretValue);
    expect(run.stdout).not.toContain(newSecretValue);
  });

  it('takes clusters by name or selector, and gives Markdown for a pull request', async () => {
    const one = await flotilla(['diff', '--repo', '.', '-q', '--cluster', us]);
    expect(one.code).toBe(1);
    expect(one.stdout).toMatch(/^1 cluster changed, 0 unchanged, 1 distinct change set\n/);
    const md = await flotilla(['diff', '--repo', '.', '-q', '-l', 'region=eu', '-o', 'markdown']);
    expect(md.code).toBe(1);
    expect(md.stdout).toContain('| Clusters | Change |\n| --- | --- |\n');
    expect(md.stdout).toContain(`| 3: ${eu.join(', ')} |`);
    expect(md.stdout).toContain('<details><summary>3 clusters: ');
    expect(md.stdout).not.toContain(newSecretValue);
    const wrong = await flotilla(['diff', '--repo', '.', '--cluster', 'no-such-cluster']);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('error: no registered cluster "no-such-cluster"');
  });

  it('exits 2 with file and line when the checkout is broken, and when the hub cannot be reached', async () => {
    repo.write('bundles/web/broken.yaml', 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [oops\n');
    const run = await flotilla(['diff', '--repo', '.', '-q']);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(
      /error: 1 problem in the checkout:\n {2}bundles\/web\/broken\.yaml:\d+(:\d+)?: /,
    );
    repo.remove('bundles/web/broken.yaml');
    const offline = await flotilla(['diff', '--repo', '.'], { FLOTILLA_HUB_URL: 'http://127.0.0.1:9' });
    expect(offline.code).toBe(2);
    expect(offline.stderr).toContain('cannot reach the hub');
  });

  it('shows nothing once the change is pushed and synced', async () => {
    await repo.commitAsync('web 1.27.4');
    expect((await flotilla(['sync'])).code).toBe(0);
    const run = await flotilla(['diff', '--repo', '.', '-q']);
    expect(run.code, run.stdout).toBe(0);
  });
});

describe('flotilla diff --base (no hub)', () => {
  const noHub = { FLOTILLA_HUB_URL: undefined, FLOTILLA_ADMIN_KEY: undefined };

  it('compares the checkout with an earlier commit for clusters declared in git or given with labels', async () => {
    repo.write('clusters/lab-1.yaml', `labels:\n  suite: "${id}"\n  region: lab\n`);
    await repo.commitAsync('declare lab-1');
    // HEAD~1 is "web 1.27.4" (no lab-1); HEAD~2 is "web 1.27.3".
    const run = await flotilla(
      [
        'diff',
        '--repo',
        repo.dir,
        '-q',
        '--base',
        'HEAD~2',
        '--cluster',
        'lab-1',
        '--cluster',
        `x=suite=${id},region=eu`,
      ],
      noHub,
    );
    expect(run.stderr).toBe('');
    expect(run.code).toBe(1);
    expect(run.stdout).toContain(
      '=== 1 cluster: greeting ConfigMap 1 field changed; db Secret key password changed;',
    );
    expect(run.stdout).toContain('clusters: x\n');
    // lab-1 is declared only at HEAD: everything is new to it.
    expect(run.stdout).toMatch(/=== 1 cluster: bundle web added; .*\nclusters: lab-1\n/);
    expect(run.stdout).not.toContain(secretValue);

    const same = await flotilla(['diff', '--repo', repo.dir, '-q', '--base', 'main'], noHub);
    expect(same.stderr).toBe('');
    expect(same.code).toBe(0);
    expect(same.stdout).toBe('no changes on 1 cluster\n');
  });

  it('reads a linked worktree (`git worktree add`), whose .git is a file', async () => {
    const linked = join(mkdtempSync(join(tmpdir(), 'flotilla-diff-wt-')), 'wt');
    repo.git('worktree', 'add', '--quiet', '-b', `review-${id}`, linked, 'HEAD~1');
    try {
      // The worktree is at "web 1.27.4", without lab-1; HEAD~1 of it is "web 1.27.3".
      const run = await flotilla(
        ['diff', '--repo', linked, '-q', '--base', 'HEAD~1', '--cluster', `y=suite=${id},region=us`],
        noHub,
      );
      expect(run.stderr).toBe('');
      expect(run.code).toBe(1);
      expect(run.stdout).toContain('-  text: hello us\n+  text: hi us\n');
      const same = await flotilla(
        ['diff', '--repo', linked, '-q', '--base', 'HEAD', '--cluster', `y=suite=${id},region=us`],
        noHub,
      );
      expect(same.code, same.stdout + same.stderr).toBe(0);
    } finally {
      repo.git('worktree', 'remove', '--force', linked);
    }
  });

  it('exits 2 for a ref that names no commit, and for a folder outside git', async () => {
    const bad = await flotilla(['diff', '--repo', '.', '--base', 'no-such-branch'], noHub);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('error: --base no-such-branch: no such commit, branch or tag');
    const outside = mkdtempSync(join(tmpdir(), 'flotilla-diff-nogit-'));
    try {
      repo.git('archive', '--format=tar', '-o', join(outside, 'fleet.tar'), 'HEAD');
      const { execFileSync } = await import('node:child_process');
      execFileSync('tar', ['-xf', 'fleet.tar'], { cwd: outside });
      const run = await flotilla(['diff', '--repo', outside, '--base', 'HEAD'], noHub);
      expect(run.code).toBe(2);
      expect(run.stderr).toContain('not inside a git repository');
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });
});
