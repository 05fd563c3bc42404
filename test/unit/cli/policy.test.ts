/**
 * `flotilla policy check` on a checkout, offline: the clusters from --cluster, else from the
 * repo's clusters/ files. Exit 10 on a Deny (or a policy that does not compile), 0 otherwise.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../cli/src/cli.ts';
import { ExitCode } from '../../../cli/src/core/exit-codes.ts';
import { captureIo } from './fakes.ts';

const policy = (actions: string, selector?: string) => `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: no-latest-images}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: [v1], resources: [deployments], operations: [CREATE, UPDATE]}]
  validations:
    - expression: "object.spec.template.spec.containers.all(c, !c.image.endsWith(':latest'))"
      message: images must be pinned to a version
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: no-latest-images
${selector ? `  annotations: {flotilla.dev/cluster-selector: "${selector}"}\n` : ''}spec: {policyName: no-latest-images, validationActions: [${actions}]}
`;

let repo: string;
function write(path: string, content: string): void {
  mkdirSync(dirname(join(repo, path)), { recursive: true });
  writeFileSync(join(repo, path), content);
}

beforeAll(() => {
  repo = mkdtempSync(join(tmpdir(), 'flotilla-policy-cli-'));
  write('bundles/web/bundle.yaml', 'namespace: web\ntargets: [{ clusterSelector: {} }]\n');
  write(
    'bundles/web/app.yaml',
    'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      containers: [{name: web, image: "nginx:latest"}]\n',
  );
  write('clusters/prod-eu-1.yaml', 'labels: {env: prod}\n');
  write('clusters/dev-1.yaml', 'labels: {env: dev}\n');
});
afterAll(() => rmSync(repo, { recursive: true, force: true }));

async function check(args: string[] = []) {
  const io = captureIo({});
  const code = await runCli(['policy', 'check', '--repo', repo, ...args], io);
  return { code, out: io.stdoutText(), err: io.stderrText() };
}

const TEXT =
  'policies/no-latest.yaml:8: policy no-latest-images (binding no-latest-images) denies Deployment.apps "web/web" (bundles/web/app.yaml:1): images must be pinned to a version';

describe('flotilla policy check', () => {
  it("fails with exit 10 on a Deny, naming the policy's file:line, the bundle, the clusters and the object", async () => {
    write('policies/no-latest.yaml', policy('Deny'));
    const r = await check(['-o', 'json']);
    expect(r.code, r.err).toBe(ExitCode.FleetErrors);
    expect(JSON.parse(r.out)).toEqual({
      clusters: 2,
      violations: [
        {
          action: 'Deny',
          file: 'policies/no-latest.yaml',
          line: 8,
          bundle: 'web',
          clusters: ['dev-1', 'prod-eu-1'],
          text: TEXT,
        },
      ],
    });
    const table = await check();
    expect(table.out).toContain(TEXT);
    expect(table.out).toContain('1 denied, 0 warned, on 2 clusters');
  });

  it('passes with warnings under Warn, and takes the clusters from --cluster', async () => {
    write('policies/no-latest.yaml', policy('Warn', 'env=prod'));
    const r = await check(['--cluster', 'edge-1=env=prod', '--cluster', 'lab-1=env=lab', '-o', 'json']);
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out).violations).toEqual([
      expect.objectContaining({
        action: 'Warn',
        clusters: ['edge-1'],
        text: TEXT.replace('denies', 'warns about'),
      }),
    ]);
  });

  it('passes clean when nothing is violated', async () => {
    write('policies/no-latest.yaml', policy('Deny', 'env=staging'));
    const r = await check();
    expect(r.code, r.err).toBe(0);
    expect(r.out).toBe('no policy violation on 2 clusters\n');
  });

  it('fails on a policy that does not compile, with its file:line', async () => {
    write('policies/no-latest.yaml', policy('Deny').replace("endsWith(':latest')", 'endsWith('));
    const r = await check();
    expect(r.code).toBe(ExitCode.FleetErrors);
    expect(r.err).toMatch(/policies\/no-latest\.yaml:8: spec\.validations\[0\]\.expression: /);
  });
});
