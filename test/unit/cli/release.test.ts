import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { AGENT_VERSION } from '../../../agent/src/version.ts';
import { defaultAgentImage } from '../../../cli/src/bootstrap/manifests.ts';
import { cliVersion } from '../../../cli/src/version.ts';

const root = new URL('../../../', import.meta.url);
const workflowText = readFileSync(new URL('.github/workflows/release.yaml', root), 'utf8');

interface Step {
  readonly id?: string;
  readonly uses?: string;
  readonly run?: string;
  readonly with?: Record<string, string>;
}
const workflow = parse(workflowText) as {
  on: { push: { tags: string[] } };
  env: { IMAGE: string };
  permissions: Record<string, string>;
  jobs: Record<string, { steps: Step[] }>;
};
const steps = Object.values(workflow.jobs).flatMap((j) => j.steps);

describe('the release workflow and the image the CLI installs', () => {
  it('publishes the repository and version that `flotilla bootstrap` installs by default', () => {
    const [repository, tag] = [
      defaultAgentImage.slice(0, defaultAgentImage.lastIndexOf(':')),
      defaultAgentImage.slice(defaultAgentImage.lastIndexOf(':') + 1),
    ];
    expect(workflow.env.IMAGE).toBe(repository);
    expect(tag).toBe(cliVersion);
    expect(tag).toBe(AGENT_VERSION);
    const build = steps.find((s) => s.uses?.startsWith('docker/build-push-action@'));
    expect(build?.with).toMatchObject({
      file: 'agent/Dockerfile',
      platforms: 'linux/amd64,linux/arm64',
      push: true,
      tags: '${{ env.IMAGE }}:${{ steps.version.outputs.version }}',
    });
    expect(workflow.on.push.tags).toEqual(['v*']);
    expect(workflow.permissions.packages).toBe('write');
  });

  it('takes the version from the CLI and refuses a tag that is not it', () => {
    const step = steps.find((s) => s.id === 'version');
    const script = step?.run ?? '';
    const run = (env: Record<string, string>) => {
      const dir = mkdtempSync(join(tmpdir(), 'flotilla-release-'));
      const output = join(dir, 'output');
      writeFileSync(output, '');
      try {
        const out = execFileSync('sh', ['-c', script], {
          cwd: root.pathname,
          env: { PATH: process.env.PATH ?? '', IMAGE: workflow.env.IMAGE, GITHUB_OUTPUT: output, ...env },
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        return { code: 0, out: out + readFileSync(output, 'utf8') };
      } catch (e) {
        const err = e as { status: number; stdout: string; stderr: string };
        return { code: err.status, out: err.stdout + err.stderr };
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    };
    expect(run({ GITHUB_REF_TYPE: 'tag', GITHUB_REF_NAME: `v${cliVersion}` })).toEqual({
      code: 0,
      out: `version=${cliVersion}\n`,
    });
    const wrong = run({ GITHUB_REF_TYPE: 'tag', GITHUB_REF_NAME: 'v9.9.9' });
    expect(wrong.code).toBe(1);
    expect(wrong.out).toContain(`tag v9.9.9 is not v${cliVersion}`);
    expect(
      run({ GITHUB_REF_TYPE: 'tag', GITHUB_REF_NAME: `v${cliVersion}`, IMAGE: 'ghcr.io/x/y' }).code,
    ).toBe(1);
  });
});
