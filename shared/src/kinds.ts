/** The API group of an apiVersion: `apps/v1` → `apps`, `v1` → `` (the core group). */
export function apiGroup(apiVersion: string): string {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}

/** `group/Kind` as used in scope tables; the core group is written as an empty prefix: `/Namespace`. */
export function groupKind(group: string, kind: string): string {
  return `${group}/${kind}`;
}

// Cluster-scoped kinds of Kubernetes itself and of a few add-ons that fleets commonly ship
// without their CRDs. Kinds whose CRD is in the fleet repo are learnt from the CRD's spec.scope.
const CLUSTER_SCOPED: readonly string[] = [
  '/Namespace',
  '/Node',
  '/PersistentVolume',
  '/ComponentStatus',
  'rbac.authorization.k8s.io/ClusterRole',
  'rbac.authorization.k8s.io/ClusterRoleBinding',
  'apiextensions.k8s.io/CustomResourceDefinition',
  'apiregistration.k8s.io/APIService',
  'admissionregistration.k8s.io/ValidatingWebhookConfiguration',
  'admissionregistration.k8s.io/MutatingWebhookConfiguration',
  'admissionregistration.k8s.io/ValidatingAdmissionPolicy',
  'admissionregistration.k8s.io/ValidatingAdmissionPolicyBinding',
  'admissionregistration.k8s.io/MutatingAdmissionPolicy',
  'admissionregistration.k8s.io/MutatingAdmissionPolicyBinding',
  'storage.k8s.io/StorageClass',
  'storage.k8s.io/CSIDriver',
  'storage.k8s.io/CSINode',
  'storage.k8s.io/VolumeAttachment',
  'storage.k8s.io/VolumeAttributesClass',
  'scheduling.k8s.io/PriorityClass',
  'node.k8s.io/RuntimeClass',
  'networking.k8s.io/IngressClass',
  'networking.k8s.io/IPAddress',
  'networking.k8s.io/ServiceCIDR',
  'policy/PodSecurityPolicy',
  'certificates.k8s.io/CertificateSigningRequest',
  'certificates.k8s.io/ClusterTrustBundle',
  'flowcontrol.apiserver.k8s.io/FlowSchema',
  'flowcontrol.apiserver.k8s.io/PriorityLevelConfiguration',
  'resource.k8s.io/DeviceClass',
  'resource.k8s.io/ResourceSlice',
  'storagemigration.k8s.io/StorageVersionMigration',
  'cert-manager.io/ClusterIssuer',
  'kyverno.io/ClusterPolicy',
  'templates.gatekeeper.sh/ConstraintTemplate',
  'karpenter.sh/NodePool',
  'karpenter.k8s.aws/EC2NodeClass',
  'gateway.networking.k8s.io/GatewayClass',
];

/** The built-in table of cluster-scoped kinds, keyed by {@link groupKind}. */
export const CLUSTER_SCOPED_KINDS: ReadonlySet<string> = new Set(CLUSTER_SCOPED);

/** What a CustomResourceDefinition says of the kind it defines. */
export interface CrdKind {
  /** The defined kind, as {@link groupKind}: `example.com/Widget`. */
  readonly groupKind: string;
  readonly clusterScoped: boolean;
  /** `spec.names.plural`, when the CRD gives it. */
  readonly plural: string | undefined;
}

/**
 * The kind a CustomResourceDefinition object defines, with its scope and plural; undefined
 * for any other object or a CRD without `spec.group` and `spec.names.kind`. Renders learn
 * the scope of custom resources from it (the policy step and the tenant checks).
 */
export function crdKind(object: {
  readonly apiVersion: string;
  readonly kind: string;
  readonly [key: string]: unknown;
}): CrdKind | undefined {
  if (object.kind !== 'CustomResourceDefinition' || apiGroup(object.apiVersion) !== 'apiextensions.k8s.io')
    return undefined;
  const spec = object.spec as
    | { group?: unknown; names?: { kind?: unknown; plural?: unknown }; scope?: unknown }
    | undefined;
  if (typeof spec?.group !== 'string' || typeof spec.names?.kind !== 'string') return undefined;
  return {
    groupKind: groupKind(spec.group, spec.names.kind),
    clusterScoped: spec.scope === 'Cluster',
    plural: typeof spec.names.plural === 'string' ? spec.names.plural : undefined,
  };
}

// Apply order, as Helm installs: namespaces and cluster-wide definitions before what uses them.
const APPLY_ORDER: readonly string[] = [
  'Namespace',
  'NetworkPolicy',
  'ResourceQuota',
  'LimitRange',
  'PodSecurityPolicy',
  'PodDisruptionBudget',
  'ServiceAccount',
  'Secret',
  'ConfigMap',
  'StorageClass',
  'PriorityClass',
  'PersistentVolume',
  'PersistentVolumeClaim',
  'CustomResourceDefinition',
  'ClusterRole',
  'ClusterRoleBinding',
  'Role',
  'RoleBinding',
  'Service',
  'DaemonSet',
  'Pod',
  'ReplicationController',
  'ReplicaSet',
  'Deployment',
  'HorizontalPodAutoscaler',
  'StatefulSet',
  'Job',
  'CronJob',
  'IngressClass',
  'Ingress',
  'APIService',
  'MutatingWebhookConfiguration',
  'ValidatingWebhookConfiguration',
];
const APPLY_RANK = new Map(APPLY_ORDER.map((kind, i) => [kind, i]));

/** Where a kind goes in apply order: built-in kinds by Helm's install order, all other kinds (custom resources) last. */
export function applyRank(kind: string): number {
  return APPLY_RANK.get(kind) ?? APPLY_ORDER.length;
}
