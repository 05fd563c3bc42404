/**
 * Tenants: the boundaries of the teams that own fleet sources. A tenant is declared in the
 * platform source (`tenants/<name>.yaml`, read by {@link loadTenants}) and limits what its
 * bundles may do: the namespaces they write into, the cluster-scoped kinds they create,
 * the clusters they reach and the Helm repositories they pull from. The hub runs the
 * checks ({@link checkTenantObjects}, {@link checkTenantTargets}, {@link checkTenantChart})
 * on every bundle of a tenant before anything is signed; a violation holds the bundle.
 */

export {
  checkTenantChart,
  checkTenantObjects,
  checkTenantRender,
  checkTenantSource,
  checkTenantTargets,
  type IsClusterScoped,
  type TenantBundleContext,
  type TenantObjectsContext,
  tenantAllowsCluster,
} from './check.ts';
export { compileGlob, type Glob, normalizeRepoUrl } from './glob.ts';
export {
  type ClusterResourceRule,
  HELM_REPO_SCHEMES,
  loadTenants,
  readTenant,
  SOURCE_REPO_SCHEMES,
  TENANTS_FOLDER,
  type Tenant,
  type TenantFile,
} from './spec.ts';
