import { loadFleet } from '@flotilla/shared';
import { evaluatePolicies, loadPolicies } from '@flotilla/shared/policy';
import { describe, expect, it } from 'vitest';
import { examplePlainFiles, readRepoDir } from '../shared/helpers.ts';

const policyFiles = readRepoDir('examples/fleet-repo').filter((f) => f.path.startsWith('policies/'));

describe('examples/fleet-repo/policies', () => {
  it('load without errors', () => {
    const { set, errors } = loadPolicies(policyFiles);
    expect(errors).toEqual([]);
    expect([...set.policies.keys()].sort()).toEqual([
      'no-latest-images',
      'no-privileged-outside-kube-system',
      'required-labels',
      'resource-limits-required',
    ]);
  });

  it('hold none of the example bundles, and report what they would', () => {
    const { set } = loadPolicies(policyFiles);
    const fleet = loadFleet(examplePlainFiles());
    const found: string[] = [];
    const clusters: { name: string; labels: Record<string, string> }[] = [
      { name: 'prod-eu-1', labels: { env: 'prod', region: 'eu', tier: 'gold' } },
      { name: 'staging-eu-1', labels: { env: 'staging', region: 'eu' } },
    ];
    for (const cluster of clusters) {
      for (const b of fleet.planCluster(cluster).bundles) {
        const objects = JSON.parse(b.rendered.canonical).objects;
        for (const v of evaluatePolicies(set, objects, { cluster })) {
          found.push(
            `${cluster.name} ${b.rendered.bundle} ${v.object.kind}/${v.object.name} ${v.action} ${v.policy}: ${v.message}`,
          );
        }
      }
    }
    expect(found.filter((f) => f.includes(' Deny '))).toEqual([]);
    // The Warn bindings report the example's DaemonSets, which have no resource limits.
    expect(found).toEqual([
      'prod-eu-1 log-shipper DaemonSet/fluent-bit Warn required-labels: missing labels: app.kubernetes.io/name',
      'prod-eu-1 log-shipper DaemonSet/fluent-bit Warn resource-limits-required: containers without cpu and memory limits: fluent-bit',
      'prod-eu-1 monitoring-agent DaemonSet/node-exporter Warn resource-limits-required: containers without cpu and memory limits: node-exporter',
      'staging-eu-1 log-shipper DaemonSet/fluent-bit Warn resource-limits-required: containers without cpu and memory limits: fluent-bit',
      'staging-eu-1 monitoring-agent DaemonSet/node-exporter Warn resource-limits-required: containers without cpu and memory limits: node-exporter',
    ]);
  });

  it('deny what they are written to deny', () => {
    const { set } = loadPolicies(policyFiles);
    const deployment = (image: string, privileged = false, namespace = 'apps') => ({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', namespace, labels: { 'app.kubernetes.io/name': 'web' } },
      spec: {
        template: {
          spec: {
            containers: [
              {
                name: 'web',
                image,
                securityContext: { privileged },
                resources: { limits: { cpu: '1', memory: '1Gi' } },
              },
            ],
          },
        },
      },
    });
    const messages = (o: ReturnType<typeof deployment>) =>
      evaluatePolicies(set, [o]).map((v) => `${v.action} ${v.message}`);
    expect(messages(deployment('nginx:1.27'))).toEqual([]);
    expect(messages(deployment('nginx'))).toEqual(['Deny images must be pinned to a version: nginx']);
    expect(messages(deployment('registry:5000/nginx:latest'))).toEqual([
      'Deny images must be pinned to a version: registry:5000/nginx:latest',
    ]);
    expect(messages(deployment('registry:5000/nginx@sha256:abc'))).toEqual([]);
    expect(messages(deployment('nginx:1.27', true))).toEqual([
      'Deny privileged containers are only allowed in kube-system',
    ]);
    expect(messages(deployment('nginx:1.27', true, 'kube-system'))).toEqual([]);
  });
});
