/**
 * The fleet of the rollout drill (test/integration/e2e/rollout.test.ts) and of
 * `npm run bench:rollout`: one bundle, `web`, rolled out in four waves (canary, rings 1-3)
 * to spokes that may share a control plane (each cluster's objects in its own namespace).
 * A revision can carry a Deployment that never becomes Ready on one canary (its pods ask
 * for a node type the bed's kwok nodes do not have), to make that canary fail.
 */
export interface RolloutDrillFleet {
  /** The ConfigMap's `data.version`: which revision a spoke holds. */
  readonly version: string;
  /** The label selector of the drill's clusters, e.g. `suite=abc`. */
  readonly selector: string;
  /** The cluster whose Deployment can never be scheduled. */
  readonly badCanary: string;
  /** Whether this revision carries the Deployment (Ready everywhere but on `badCanary`). */
  readonly deployment: boolean;
  /** Bake of the first three waves and the progress deadline, as the fleet repo writes durations (`2s`). */
  readonly bake: string;
  readonly deadline: string;
  /** A label on the ConfigMap, for watchers that find the drill's objects. */
  readonly marker: string;
}

export function rolloutDrillFiles(f: RolloutDrillFleet): Record<string, string> {
  const deployment = f.deployment
    ? `---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: ro-\${cluster.name}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      nodeSelector: {type: "\${values.nodeType}"}
      containers: [{name: web, image: "nginx:1.27"}]
`
    : '';
  return {
    'bundles/web/bundle.yaml': `targets: [{clusterSelector: ${f.selector}}]
values: {version: ${f.version}, nodeType: kwok}
customizations:
  # The bed's nodes are labelled type=kwok: this canary's pods can never be scheduled.
  - {clusterName: ${f.badCanary}, values: {nodeType: gpu}}
rollout:
  waves:
    - {name: canary, clusterSelector: ring=canary, maxParallel: 1, bake: ${f.bake}}
    - {name: ring1, clusterSelector: ring=1, bake: ${f.bake}}
    - {name: ring2, clusterSelector: ring=2, bake: ${f.bake}}
    - {name: ring3, clusterSelector: ring=3}
  progressDeadline: ${f.deadline}
  failure: {maxFailures: 0, action: revert}
`,
    'bundles/web/web.yaml': `apiVersion: v1
kind: Namespace
metadata:
  name: ro-\${cluster.name}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web
  namespace: ro-\${cluster.name}
  labels: {${f.marker}: "true"}
data:
  cluster: \${cluster.name}
  version: \${values.version}
${deployment}`,
  };
}
