/**
 * Tenant declarations: `tenants/<name>.yaml` of the platform source, one `kind: Tenant`
 * document or several separated by `---`. A tenant's declaration is the boundary its
 * bundles are checked against (`check.ts`). Every problem is a {@link FleetError} at the
 * line it is about, like any other file of the fleet repo.
 */
import { FLOTILLA_API_VERSION } from '../api-version.ts';
import { type FleetError, normalizeFleetErrors, type SourcePos } from '../errors.ts';
import { compileSelector, type LabelMatcher, type LabelSelector } from '../selector.ts';
import { SpecReader } from '../spec-reader.ts';
import { parseYamlFile, type YNode } from '../yaml-source.ts';
import { compileGlob, type Glob, namespaceGlobProblem, normalizeRepoGlob, repoGlobProblem } from './glob.ts';

/** The folder of the platform source that holds tenant declarations. */
export const TENANTS_FOLDER = 'tenants';

/** The schemes a `helmRepositories` glob may name: Helm HTTP repositories and OCI registries. */
export const HELM_REPO_SCHEMES: readonly string[] = ['https:', 'http:', 'oci:'];
/** The schemes a `sourceRepositories` glob may name: git over HTTP(S) and SSH. */
export const SOURCE_REPO_SCHEMES: readonly string[] = ['https:', 'http:', 'ssh:'];

/** A cluster-scoped kind a tenant may create: `group` is `""` for the core group, `"*"` for any; `kind` `"*"` for any. */
export interface ClusterResourceRule {
  readonly group: string;
  readonly kind: string;
}

/** A tenant's boundary, as declared and compiled. */
export interface Tenant {
  readonly name: string;
  /** The file that declares it, and where its document starts. */
  readonly file: string;
  readonly pos: SourcePos;
  readonly description: string | undefined;
  /** Where its namespaced objects may go (and which Namespace objects it may create). */
  readonly namespaces: readonly Glob[];
  /** The cluster-scoped kinds it may create; empty: none. */
  readonly clusterResources: readonly ClusterResourceRule[];
  /** Where its bundles may go, as written (`{}`: every cluster) and compiled. */
  readonly clusterSelector: LabelSelector;
  readonly clusterMatcher: LabelMatcher;
  /** The Helm repositories its charts may come from, normalised; empty: no charts from repositories. */
  readonly helmRepositories: readonly Glob[];
  /** The git repositories its sources may read; undefined: whatever the platform declares for it. */
  readonly sourceRepositories: readonly Glob[] | undefined;
}

/** A file of the platform source: its repo-relative path and text. */
export interface TenantFile {
  readonly path: string;
  readonly content: string;
}

const TOP_FIELDS = ['apiVersion', 'kind', 'metadata', 'spec'] as const;
const METADATA_FIELDS = ['name'] as const;
const SPEC_FIELDS = [
  'description',
  'namespaces',
  'clusterResources',
  'clusterSelector',
  'helmRepositories',
  'sourceRepositories',
] as const;
const RULE_FIELDS = ['group', 'kind'] as const;

const KIND_NAME = /^[A-Za-z][A-Za-z0-9]*$/;
const GROUP_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/**
 * Reads the tenant declarations of the platform source. A document with any error is left
 * out (so no tenant is enforced from half a declaration: the caller holds that tenant's
 * bundles); two tenants of one name are an error at the second.
 *
 * @example
 * const { tenants, errors } = loadTenants([{ path: 'tenants/team-a.yaml', content }]);
 * tenants.get('team-a')?.namespaces.map((g) => g.pattern); // ['team-a', 'team-a-*']
 */
export function loadTenants(files: readonly TenantFile[]): {
  tenants: ReadonlyMap<string, Tenant>;
  errors: FleetError[];
} {
  const errors: FleetError[] = [];
  const tenants = new Map<string, Tenant>();
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (const file of sorted) {
    const parsed = parseYamlFile(file.path, file.content);
    errors.push(...parsed.errors);
    for (const doc of parsed.documents) {
      if (doc.node === null) continue;
      const reader = new SpecReader(file.path);
      const tenant = readTenant(reader, doc.node);
      errors.push(...reader.errors);
      if (!tenant || reader.errors.length > 0) continue;
      const other = tenants.get(tenant.name);
      if (other) {
        reader.error(
          tenant.pos,
          `metadata.name: tenant "${tenant.name}" is declared twice (also at ${other.file}:${other.pos.line})`,
        );
        errors.push(...reader.errors);
        continue;
      }
      tenants.set(tenant.name, tenant);
    }
  }
  return { tenants, errors: normalizeFleetErrors(errors) };
}

/** Reads one `kind: Tenant` document. */
export function readTenant(reader: SpecReader, node: YNode): Tenant | undefined {
  const map = reader.expectMap(node, '');
  if (!map) return undefined;
  const f = reader.fields(map, '', TOP_FIELDS);
  const apiVersion = f.get('apiVersion');
  if (!apiVersion) reader.error(map.pos, `apiVersion: required (${FLOTILLA_API_VERSION})`);
  else {
    const v = reader.expectString(apiVersion, 'apiVersion');
    if (v !== undefined && v !== FLOTILLA_API_VERSION)
      reader.error(apiVersion.pos, `apiVersion: expected ${FLOTILLA_API_VERSION}, got "${v}"`);
  }
  const kind = f.get('kind');
  if (!kind) reader.error(map.pos, 'kind: required (Tenant)');
  else {
    const v = reader.expectString(kind, 'kind');
    if (v !== undefined && v !== 'Tenant') reader.error(kind.pos, `kind: expected Tenant, got "${v}"`);
  }
  let name: string | undefined;
  const metaNode = f.get('metadata');
  const meta = metaNode ? reader.expectMap(metaNode, 'metadata') : undefined;
  if (!metaNode) reader.error(map.pos, 'metadata.name: required');
  else if (meta) {
    const mf = reader.fields(meta, 'metadata', METADATA_FIELDS);
    const nameNode = mf.get('name');
    if (!nameNode) reader.error(meta.pos, 'metadata.name: required');
    else name = reader.expectName(nameNode, 'metadata.name', 'tenant');
  }
  const specNode = f.get('spec');
  if (!specNode) {
    reader.error(map.pos, 'spec: required (namespaces and clusterSelector at least)');
    return undefined;
  }
  const spec = reader.expectMap(specNode, 'spec');
  if (!spec) return undefined;
  const sf = reader.fields(spec, 'spec', SPEC_FIELDS);

  const descNode = sf.get('description');
  const description = descNode ? reader.expectString(descNode, 'spec.description') : undefined;

  const namespaces: Glob[] = [];
  const nsNode = sf.get('namespaces');
  if (!nsNode)
    reader.error(spec.pos, 'spec.namespaces: required (the namespaces, or globs, its objects may go to)');
  else {
    const items = reader.expectList(nsNode, 'spec.namespaces');
    if (items?.length === 0) reader.error(nsNode.pos, 'spec.namespaces: must not be empty');
    items?.forEach((item, i) => {
      const path = `spec.namespaces[${i}]`;
      const pattern = reader.expectString(item, path);
      if (pattern === undefined) return;
      const problem = namespaceGlobProblem(pattern);
      if (problem) reader.error(item.pos, `${path}: ${problem}`);
      else namespaces.push(compileGlob(pattern));
    });
  }

  const clusterResources: ClusterResourceRule[] = [];
  const crNode = sf.get('clusterResources');
  if (crNode) {
    reader.expectList(crNode, 'spec.clusterResources')?.forEach((item, i) => {
      const rule = readRule(reader, item, `spec.clusterResources[${i}]`);
      if (rule) clusterResources.push(rule);
    });
  }

  let clusterSelector: LabelSelector | undefined;
  const selNode = sf.get('clusterSelector');
  if (!selNode)
    reader.error(spec.pos, 'spec.clusterSelector: required (where its bundles may go; {} for every cluster)');
  else clusterSelector = reader.selector(selNode, 'spec.clusterSelector');

  const helmNode = sf.get('helmRepositories');
  const helmRepositories = helmNode
    ? repoGlobs(reader, helmNode, 'spec.helmRepositories', HELM_REPO_SCHEMES)
    : [];
  const srcNode = sf.get('sourceRepositories');
  const sourceRepositories = srcNode
    ? repoGlobs(reader, srcNode, 'spec.sourceRepositories', SOURCE_REPO_SCHEMES)
    : undefined;

  if (name === undefined || clusterSelector === undefined || reader.errors.length > 0) return undefined;
  return {
    name,
    file: reader.file,
    pos: map.pos,
    description,
    namespaces,
    clusterResources,
    clusterSelector,
    clusterMatcher: compileSelector(clusterSelector),
    helmRepositories,
    sourceRepositories,
  };
}

function readRule(reader: SpecReader, node: YNode, path: string): ClusterResourceRule | undefined {
  const map = reader.expectMap(node, path);
  if (!map) return undefined;
  const f = reader.fields(map, path, RULE_FIELDS);
  const groupNode = f.get('group');
  const kindNode = f.get('kind');
  let group: string | undefined;
  let kind: string | undefined;
  if (!groupNode) reader.error(map.pos, `${path}.group: required ("" for the core group, "*" for any)`);
  else {
    group = reader.expectString(groupNode, `${path}.group`);
    if (group !== undefined && group !== '' && group !== '*' && !GROUP_NAME.test(group)) {
      reader.error(
        groupNode.pos,
        `${path}.group: "${group}" is not an API group ("" for the core group, "*" for any)`,
      );
      group = undefined;
    }
  }
  if (!kindNode) reader.error(map.pos, `${path}.kind: required (a kind such as Namespace, or "*" for any)`);
  else {
    kind = reader.expectString(kindNode, `${path}.kind`);
    if (kind !== undefined && kind !== '*' && !KIND_NAME.test(kind)) {
      reader.error(
        kindNode.pos,
        `${path}.kind: "${kind}" is not a kind (such as ClusterRole), or "*" for any`,
      );
      kind = undefined;
    }
  }
  return group === undefined || kind === undefined ? undefined : { group, kind };
}

function repoGlobs(reader: SpecReader, node: YNode, path: string, schemes: readonly string[]): Glob[] {
  const out: Glob[] = [];
  reader.expectList(node, path)?.forEach((item, i) => {
    const p = `${path}[${i}]`;
    const pattern = reader.expectString(item, p);
    if (pattern === undefined) return;
    const problem = repoGlobProblem(pattern, schemes);
    if (problem) reader.error(item.pos, `${p}: ${problem}`);
    else {
      const g = compileGlob(normalizeRepoGlob(pattern));
      out.push({ pattern, matches: g.matches });
    }
  });
  return out;
}
