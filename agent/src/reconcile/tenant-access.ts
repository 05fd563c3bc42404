/**
 * The spoke's second line for tenants: a tenant's bundles are written as the tenant's own
 * service account, so the API server itself refuses what the tenant's RBAC does not allow,
 * whatever the hub signed.
 *
 * The objects (the bootstrap installs them, see docs/tenants.md "In the spoke"):
 * - ServiceAccount `flotilla-tenant-<tenant>` in the agent's namespace, which the agent may
 *   `impersonate` (by name);
 * - ClusterRole `flotilla-tenant-<tenant>` (its cluster-scoped kinds) bound cluster-wide;
 * - ClusterRole `flotilla-tenant-<tenant>-namespaced` (every namespaced kind), bound by a
 *   RoleBinding `flotilla-tenant-<tenant>` in each of its namespaces. RBAC has no namespace
 *   globs, so the agent creates that RoleBinding, as itself, in a namespace just before it
 *   writes a tenant's objects there, and only when the name matches one of the tenant's
 *   namespace globs in the signed desired state.
 */
import { compileGlob, type DesiredTenant, type ObjectRef, objectId } from '@flotilla/shared/agent';
import { KubeApiError } from '../kube/client.ts';
import { errorFields, type Logger } from '../log.ts';
import type { ObjectFailure, ResourceManager } from '../ssa/resource-manager.ts';

/** The tenant's service account in the agent's namespace (and the RoleBindings' name). */
export function tenantServiceAccount(tenant: string): string {
  return `flotilla-tenant-${tenant}`;
}

/** The ClusterRole a tenant's RoleBindings refer to: every namespaced kind, within the namespace bound. */
export function tenantNamespacedRole(tenant: string): string {
  return `flotilla-tenant-${tenant}-namespaced`;
}

/** Whether `namespace` matches one of the tenant's namespace globs (`*` and `?` within a name). */
export function tenantNamespaceAllowed(globs: readonly string[], namespace: string): boolean {
  return globs.some((g) => compileGlob(g).matches(namespace));
}

/** The namespace globs of `tenant` in a desired state's `tenants` section, or undefined when it has none. */
export function tenantNamespaces(
  tenants: readonly DesiredTenant[] | undefined,
  tenant: string,
): readonly string[] | undefined {
  return tenants?.find((t) => t.name === tenant)?.namespaces;
}

export interface TenantAccessOptions {
  /** The agent's own manager: its client reads, creates the RoleBindings, and is impersonated from. */
  readonly manager: ResourceManager;
  /** The agent's namespace, where the tenants' service accounts are. */
  readonly namespace: string;
  readonly log: Logger;
}

/**
 * Per tenant: a resource manager writing as the tenant's service account, and the
 * RoleBindings that give that account its rights in the tenant's namespaces.
 */
export class TenantAccess {
  readonly #opts: TenantAccessOptions;
  readonly #managers = new Map<string, ResourceManager>();
  /** `<tenant>\0<namespace>` of the RoleBindings made (or found) since the agent started. */
  readonly #granted = new Set<string>();

  constructor(opts: TenantAccessOptions) {
    this.#opts = opts;
  }

  /** `system:serviceaccount:<agent namespace>:flotilla-tenant-<tenant>`. */
  user(tenant: string): string {
    return `system:serviceaccount:${this.#opts.namespace}:${tenantServiceAccount(tenant)}`;
  }

  /** The manager whose writes impersonate the tenant's service account (reads stay the agent's). */
  manager(tenant: string): ResourceManager {
    let m = this.#managers.get(tenant);
    if (!m) {
      const { manager } = this.#opts;
      m = manager.forTenant(tenant, manager.client.impersonating(this.user(tenant)));
      this.#managers.set(tenant, m);
    }
    return m;
  }

  /**
   * Makes sure the tenant's service account is bound to its namespaced role in each of
   * `namespaces` that matches `globs`. A namespace that does not match gets nothing: the
   * tenant's writes there are refused by the API server. Returns what could not be bound.
   */
  async grant(
    tenant: string,
    globs: readonly string[],
    namespaces: Iterable<string>,
  ): Promise<ObjectFailure[]> {
    const failures: ObjectFailure[] = [];
    const todo = [...new Set(namespaces)].filter(
      (ns) => !this.#granted.has(`${tenant}\0${ns}`) && tenantNamespaceAllowed(globs, ns),
    );
    await Promise.all(
      todo.map(async (ns) => {
        const ref = roleBindingRef(tenant, ns);
        try {
          await this.#applyRoleBinding(tenant, ns);
          this.#granted.add(`${tenant}\0${ns}`);
        } catch (e) {
          const message = e instanceof Error ? e.message : String(e);
          this.#opts.log.warn('cannot bind a tenant in its namespace', {
            tenant,
            namespace: ns,
            ...errorFields(e),
          });
          failures.push({
            id: objectId(ref),
            ref,
            message: `cannot give tenant "${tenant}" its rights in namespace "${ns}" (RoleBinding ${ref.name}): ${message}`,
            ...(e instanceof KubeApiError ? { status: e.status } : {}),
          });
        }
      }),
    );
    return failures;
  }

  /** Forgets the RoleBindings made for `tenant`, so the next reconcile makes sure of them again (after a refusal). */
  forget(tenant: string): void {
    for (const key of this.#granted) if (key.startsWith(`${tenant}\0`)) this.#granted.delete(key);
  }

  async #applyRoleBinding(tenant: string, namespace: string): Promise<void> {
    const { manager } = this.#opts;
    const name = tenantServiceAccount(tenant);
    const q = `?fieldManager=${encodeURIComponent(manager.owner.field)}&force=true`;
    await manager.client.request(
      'PATCH',
      `/apis/rbac.authorization.k8s.io/v1/namespaces/${namespace}/rolebindings/${name}${q}`,
      {
        body: {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'RoleBinding',
          metadata: {
            name,
            namespace,
            labels: {
              'app.kubernetes.io/managed-by': manager.owner.field,
              [manager.label('tenant')]: tenant,
            },
          },
          roleRef: {
            apiGroup: 'rbac.authorization.k8s.io',
            kind: 'ClusterRole',
            name: tenantNamespacedRole(tenant),
          },
          subjects: [{ kind: 'ServiceAccount', name, namespace: this.#opts.namespace }],
        },
        contentType: 'application/apply-patch+yaml',
      },
    );
  }
}

function roleBindingRef(tenant: string, namespace: string): ObjectRef {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    namespace,
    name: tenantServiceAccount(tenant),
  };
}
