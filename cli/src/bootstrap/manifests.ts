/**
 * The objects `flotilla bootstrap` installs into a spoke cluster, as plain data: the
 * agent's namespace, service account and RBAC, the Secret with its credentials, and the
 * Deployment. Pure and deterministic, so a rerun applies byte-identical objects and the
 * API server sees no change.
 */
import { createHash } from 'node:crypto';
import type { KubeJson } from '@flotilla/shared/agent';

/** A Kubernetes object as plain JSON, the same type the agent applies. */
export type KubeObject = KubeJson;

/** Names of what bootstrap installs; the agent's docs use the same. */
export const agentNames = {
  namespace: 'flotilla-system',
  serviceAccount: 'flotilla-agent',
  secret: 'flotilla-agent',
  deployment: 'flotilla-agent',
  /** The Role and RoleBinding for the agent's leader-election Lease. */
  leaderElectionRole: 'flotilla-agent-leader-election',
  /** The Lease the replicas elect their leader on (agent/src/config.ts, leaderLeaseName). */
  leaderLease: 'flotilla-agent-leader',
  /** Where the Secret is mounted; the agent reads its keys as variables (FLOTILLA_SECRET_DIR). */
  secretDir: '/etc/flotilla/secret',
  fieldManager: 'flotilla-bootstrap',
} as const;

export const defaultAgentImage = 'ghcr.io/flotilla-dev/flotilla-agent:0.1.0';

/** Keys of the agent's Secret: each is the environment variable the agent reads it as (agent/src/config.ts). */
export const secretKeys = {
  hubUrl: 'FLOTILLA_HUB_URL',
  clusterId: 'FLOTILLA_CLUSTER_ID',
  token: 'FLOTILLA_TOKEN',
  hubPublicKey: 'FLOTILLA_HUB_PUBLIC_KEY',
  queueUrl: 'FLOTILLA_SQS_QUEUE_URL',
  sqsRegion: 'FLOTILLA_SQS_REGION',
  sqsEndpoint: 'FLOTILLA_SQS_ENDPOINT',
  accessKeyId: 'AWS_ACCESS_KEY_ID',
  secretAccessKey: 'AWS_SECRET_ACCESS_KEY',
} as const;

/** What the agent needs to know, as it goes into the Secret. */
export interface AgentSecretInput {
  readonly clusterId: string;
  readonly hubUrl: string;
  readonly token: string;
  readonly hubPublicKeyPem: string;
  /** Set when the agent listens on its SQS queue; without it the agent polls the hub. */
  readonly sqs?: {
    readonly queueUrl: string;
    readonly region: string;
    /** ElasticMQ or LocalStack; unset in AWS. */
    readonly endpoint?: string;
    /** Only for local queues that check no credentials; in AWS they come from the platform. */
    readonly localCredentials?: boolean;
  };
}

/** The Secret's data, by key (plain text; the Secret carries it as `stringData`). */
export function agentSecretData(input: AgentSecretInput): Record<string, string> {
  const data: Record<string, string> = {
    [secretKeys.clusterId]: input.clusterId,
    [secretKeys.hubUrl]: input.hubUrl,
    [secretKeys.token]: input.token,
    [secretKeys.hubPublicKey]: input.hubPublicKeyPem,
  };
  if (input.sqs) {
    data[secretKeys.queueUrl] = input.sqs.queueUrl;
    data[secretKeys.sqsRegion] = input.sqs.region;
    if (input.sqs.endpoint) data[secretKeys.sqsEndpoint] = input.sqs.endpoint;
    if (input.sqs.localCredentials) {
      // ElasticMQ and LocalStack take any credentials; these are placeholders, not secrets.
      data[secretKeys.accessKeyId] = 'local';
      data[secretKeys.secretAccessKey] = 'local';
    }
  }
  return data;
}

/** SHA-256 over the Secret's data, sorted: the Deployment carries it, so a changed Secret rolls the agent. */
export function secretChecksum(data: Readonly<Record<string, string>>): string {
  const hash = createHash('sha256');
  for (const key of Object.keys(data).sort()) hash.update(`${key}\0${data[key]}\0`);
  return hash.digest('hex');
}

export interface AgentManifestInput {
  readonly clusterId: string;
  readonly namespace: string;
  readonly image: string;
  readonly secretData: Readonly<Record<string, string>>;
  /** Annotations for the service account, e.g. `eks.amazonaws.com/role-arn` for SQS through IRSA. */
  readonly serviceAccountAnnotations?: Readonly<Record<string, string>>;
  /**
   * The fleet's tenants: the agent writes each one's bundles as the tenant's own service
   * account (see {@link tenantManifests}). None: no tenant objects, and the agent may
   * impersonate no one.
   */
  readonly tenants?: readonly TenantRbacInput[];
}

/** What the spoke's RBAC needs of a tenant (its Tenant declaration, tenants/<name>.yaml). */
export interface TenantRbacInput {
  readonly name: string;
  /** The cluster-scoped kinds it may create (`group` "" is the core group, "*" any; `kind` "*" any). */
  readonly clusterResources: readonly { readonly group: string; readonly kind: string }[];
}

const commonLabels = {
  'app.kubernetes.io/name': 'flotilla-agent',
  'app.kubernetes.io/part-of': 'flotilla',
  'app.kubernetes.io/managed-by': 'flotilla-bootstrap',
} as const;

/** Every object, in the order they are applied: namespace, Secret, service account, RBAC, Deployment. */
export function agentManifests(input: AgentManifestInput): KubeObject[] {
  const { namespace } = input;
  const labels = { ...commonLabels, 'flotilla.dev/cluster': input.clusterId };
  const selector = { 'app.kubernetes.io/name': 'flotilla-agent' };
  const tenants = [...(input.tenants ?? [])].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace, labels } },
    // The Secret right after its namespace: it ties the cluster to its name, so once a
    // registration is written down here, a rerun can repair anything that failed after it.
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: agentNames.secret, namespace, labels },
      type: 'Opaque',
      // `data`, not `stringData`: server-side apply tracks ownership of `data` keys, so a key
      // dropped here (say, the queue URL when switching to polling) is removed from the Secret.
      data: Object.fromEntries(
        Object.keys(input.secretData)
          .sort()
          .map((k) => [k, Buffer.from(input.secretData[k] as string, 'utf8').toString('base64')]),
      ),
    },
    {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: {
        name: agentNames.serviceAccount,
        namespace,
        labels,
        ...(input.serviceAccountAnnotations && Object.keys(input.serviceAccountAnnotations).length > 0
          ? { annotations: input.serviceAccountAnnotations }
          : {}),
      },
    },
    {
      // The agent applies whatever the fleet repo holds (CRDs, RBAC, cluster-scoped objects),
      // so like Fleet's and Argo CD's agents it needs every verb on every resource.
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: clusterRbacName(namespace), labels },
      rules: [
        // The same rules as agent/deploy/rbac.yaml: every kind bundles may ship, but no
        // impersonate/escalate/bind, and of the non-resource URLs only discovery.
        {
          apiGroups: ['*'],
          resources: ['*'],
          verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
        },
        { nonResourceURLs: ['/api', '/api/*', '/apis', '/apis/*', '/version'], verbs: ['get'] },
        ...tenantAgentRules(tenants),
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: clusterRbacName(namespace), labels },
      roleRef: {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'ClusterRole',
        name: clusterRbacName(namespace),
      },
      subjects: [{ kind: 'ServiceAccount', name: agentNames.serviceAccount, namespace }],
    },
    {
      // Leader election among the replicas: the one Lease, by name (create cannot be
      // limited to a name: the API server checks it before the object has one).
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: agentNames.leaderElectionRole, namespace, labels },
      rules: [
        { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
        {
          apiGroups: ['coordination.k8s.io'],
          resources: ['leases'],
          resourceNames: [agentNames.leaderLease],
          verbs: ['get', 'update'],
        },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: agentNames.leaderElectionRole, namespace, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: agentNames.leaderElectionRole },
      subjects: [{ kind: 'ServiceAccount', name: agentNames.serviceAccount, namespace }],
    },
    ...tenantManifests(namespace, tenants, labels),
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: agentNames.deployment, namespace, labels },
      spec: {
        // Two replicas, one leading (a Lease): a standby takes over within the lease's 15 s
        // when the leader's pod or node goes, and a rolling update never leaves none.
        replicas: 2,
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
        selector: { matchLabels: selector },
        template: {
          metadata: {
            labels: { ...labels, ...selector },
            annotations: { 'flotilla.dev/secret-checksum': secretChecksum(input.secretData) },
          },
          spec: {
            serviceAccountName: agentNames.serviceAccount,
            // The standby on another node where there is one: a node lost takes one replica.
            affinity: {
              podAntiAffinity: {
                preferredDuringSchedulingIgnoredDuringExecution: [
                  {
                    weight: 100,
                    podAffinityTerm: {
                      topologyKey: 'kubernetes.io/hostname',
                      labelSelector: { matchLabels: selector },
                    },
                  },
                ],
              },
            },
            securityContext: {
              runAsNonRoot: true,
              runAsUser: 65532,
              // The mounted Secret's files belong to this group, so the non-root agent can read them.
              fsGroup: 65532,
              seccompProfile: { type: 'RuntimeDefault' },
            },
            containers: [
              {
                name: 'agent',
                image: input.image,
                imagePullPolicy: 'IfNotPresent',
                env: [
                  { name: 'FLOTILLA_SECRET_DIR', value: agentNames.secretDir },
                  {
                    name: 'FLOTILLA_NAMESPACE',
                    valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } },
                  },
                  { name: 'FLOTILLA_LEADER_ELECTION', value: 'true' },
                  // The leader-election identity: unique among the replicas.
                  { name: 'FLOTILLA_POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                  { name: 'FLOTILLA_HTTP_ADDR', value: ':8080' },
                ],
                ports: [{ name: 'http', containerPort: 8080 }],
                livenessProbe: {
                  httpGet: { path: '/healthz', port: 'http' },
                  periodSeconds: 20,
                  failureThreshold: 3,
                },
                readinessProbe: { httpGet: { path: '/readyz', port: 'http' }, periodSeconds: 10 },
                resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } },
                securityContext: {
                  allowPrivilegeEscalation: false,
                  readOnlyRootFilesystem: true,
                  capabilities: { drop: ['ALL'] },
                },
                volumeMounts: [{ name: 'credentials', mountPath: agentNames.secretDir, readOnly: true }],
              },
            ],
            volumes: [{ name: 'credentials', secret: { secretName: agentNames.secret, defaultMode: 0o440 } }],
          },
        },
      },
    },
  ];
}

/**
 * The agent's ClusterRole and ClusterRoleBinding are cluster-wide, so their name carries the
 * agent's namespace: two agents in one cluster (two namespaces) never share or remove each
 * other's RBAC.
 */
export function clusterRbacName(namespace: string): string {
  return `flotilla-agent:${namespace}`;
}

/** `Kind/name` or `Kind/namespace/name`, for messages and change lists. */
export function objectRef(o: Pick<KubeObject, 'kind' | 'metadata'>): string {
  return o.metadata.namespace
    ? `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`
    : `${o.kind}/${o.metadata.name}`;
}

/** A tenant's service account in the agent's namespace, and the name of its RBAC objects. */
export function tenantAccountName(tenant: string): string {
  return `flotilla-tenant-${tenant}`;
}

/**
 * What the agent needs to act as the tenants: `impersonate` on their service accounts and
 * `bind` on their namespaced ClusterRoles (it binds them in a tenant's namespaces itself),
 * each limited by name. Nothing without tenants: a rule with no names would cover all.
 */
function tenantAgentRules(tenants: readonly TenantRbacInput[]): Record<string, unknown>[] {
  if (tenants.length === 0) return [];
  return [
    {
      apiGroups: [''],
      resources: ['serviceaccounts'],
      resourceNames: tenants.map((t) => tenantAccountName(t.name)),
      verbs: ['impersonate'],
    },
    {
      apiGroups: ['rbac.authorization.k8s.io'],
      resources: ['clusterroles'],
      resourceNames: tenants.map((t) => `${tenantAccountName(t.name)}-namespaced`),
      verbs: ['bind'],
    },
  ];
}

const TENANT_VERBS = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'];

/**
 * Per tenant: a ServiceAccount `flotilla-tenant-<tenant>` in the agent's namespace; a
 * ClusterRole of the same name (the cluster-scoped kinds it declares, and reading
 * namespaces) bound to it cluster-wide; and a ClusterRole `flotilla-tenant-<tenant>-namespaced`
 * (every kind, which a RoleBinding turns into every namespaced kind of one namespace) that
 * the agent binds in each of the tenant's namespaces as it first writes there.
 */
export function tenantManifests(
  namespace: string,
  tenants: readonly TenantRbacInput[],
  labels: Readonly<Record<string, string>> = commonLabels,
): KubeObject[] {
  return tenants.flatMap((t): KubeObject[] => {
    const name = tenantAccountName(t.name);
    const meta = (n: string) => ({ name: n, labels: { ...labels, 'flotilla.dev/tenant': t.name } });
    return [
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { ...meta(name), namespace } },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        metadata: meta(name),
        rules: [
          { apiGroups: [''], resources: ['namespaces'], verbs: ['get', 'list', 'watch'] },
          ...t.clusterResources.map((r) => ({
            apiGroups: [r.group],
            resources: [resourceOfKind(r.kind)],
            verbs: TENANT_VERBS,
          })),
        ],
      },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: meta(name),
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
        subjects: [{ kind: 'ServiceAccount', name, namespace }],
      },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        metadata: meta(`${name}-namespaced`),
        rules: [{ apiGroups: ['*'], resources: ['*'], verbs: TENANT_VERBS }],
      },
    ];
  });
}

/**
 * The resource (URL plural) of a kind, as Kubernetes names them: lower case, and `s`,
 * `es` after s/x/z/ch/sh, or `ies` after a consonant and `y` (Namespace → namespaces,
 * StorageClass → storageclasses, NetworkPolicy → networkpolicies). `*` stays `*`.
 */
export function resourceOfKind(kind: string): string {
  if (kind === '*') return '*';
  const k = kind.toLowerCase();
  if (/(s|x|z|ch|sh)$/.test(k)) return `${k}es`;
  if (/[^aeiou]y$/.test(k)) return `${k.slice(0, -1)}ies`;
  return `${k}s`;
}
