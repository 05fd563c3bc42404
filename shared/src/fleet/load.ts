/**
 * The load step: the repo's files, classified by where they sit (groups/, clusters/,
 * bundles/<name>/ with its bundle.yaml, source files and overlays/), parsed and validated
 * once. Each bundle comes out as a {@link BundleState} with its spec, its compiled
 * targeting, its source's objects and its overlays' patches, and every problem recorded
 * on it with file and line; nothing here throws on bad repo content.
 */
import { type BundleSpec, readBundleSpec } from '../bundle-spec.ts';
import {
  type FleetError,
  FleetInputError,
  fleetError,
  normalizeFleetErrors,
  type SourcePos,
} from '../errors.ts';
import { nameProblem } from '../labels.ts';
import { loadNotifications } from '../notify/config.ts';
import { loadPolicies, type PolicyFile, type PolicySet } from '../policy/index.ts';
import { type RolloutContext, type RolloutSpec, readRolloutStrategy } from '../rollout-spec.ts';
import { compileSelector, type LabelMatcher } from '../selector.ts';
import {
  API_SOURCES_PREFIX,
  type FleetSourceSpec,
  loadSourceSpecs,
  SOURCES_FOLDER,
  type SourceFile,
  sourceOfBundle,
  sourceOfPath,
} from '../sources/spec.ts';
import {
  type DeclaredClusterSpec,
  type GroupSpec,
  readDeclaredCluster,
  readGroup,
  SpecReader,
} from '../spec-reader.ts';
import { checkTenantChart, checkTenantSource } from '../tenants/check.ts';
import { loadTenants, TENANTS_FOLDER, type Tenant, type TenantFile } from '../tenants/spec.ts';
import { parseYamlFile, type YDocument, type YNode } from '../yaml-source.ts';
import type { BundleSource, BundleState, ManifestDoc, RepoFile, RepoFiles } from './model.ts';
import { readManifests } from './objects.ts';
import {
  DEFAULT_FLEET_SETTINGS,
  FLEET_SETTINGS_FILE,
  type FleetSettings,
  plaintextSecrets,
  readFleetSettings,
} from './settings.ts';
import { readSource, sourceProblems } from './source.ts';
import { compileEntry } from './targeting.ts';

/** The repo as loaded: bundles by name (not yet ordered or compiled), groups, clusters declared in git. */
export interface LoadedRepo {
  /** Problems of the repo's layout, groups and cluster files; each bundle keeps its own. */
  readonly errors: readonly FleetError[];
  readonly groups: ReadonlyMap<string, GroupSpec>;
  /** The valid strategies of `rollouts/<name>.yaml`, by name. */
  readonly rollouts: ReadonlyMap<string, RolloutSpec>;
  readonly declaredClusters: ReadonlyMap<string, DeclaredClusterSpec>;
  /** The errors of each broken `clusters/<name>.yaml`, by cluster name. */
  readonly clusterFileErrors: ReadonlyMap<string, readonly FleetError[]>;
  /** Sorted by name. */
  readonly bundles: BundleState[];
  /** `fleet.yaml`, defaults where unset. */
  readonly settings: FleetSettings;
  /** `policies/`, compiled; undefined when the repo has none. */
  readonly policies: PolicySet | undefined;
  /** Problems that hold nothing (a plain Secret, unless `fleet.yaml` refuses them). */
  readonly warnings: readonly FleetError[];
  /** `tenants/`: the valid tenant declarations, by name. */
  readonly tenants: ReadonlyMap<string, Tenant>;
  /** `sources/`: the valid source declarations, by name. */
  readonly sources: ReadonlyMap<string, FleetSourceSpec>;
}

const YAML_FILE = /\.ya?ml$/;
const JSON_FILE = /\.json$/;

function normalizePath(path: string): string {
  const p = path
    .replace(/\\/g, '/')
    .replace(/^(\.\/)+/, '')
    .replace(/^\/+/, '');
  if (p.split('/').some((s) => s === '..'))
    throw new FleetInputError(`repo file path "${path}" leaves the repo`);
  return p;
}

/**
 * The files as one map from normalized path to content, sorted by path.
 *
 * @throws {FleetInputError} when a path leaves the repo or is given twice.
 */
export function collectFiles(files: RepoFiles): Map<string, string> {
  const entries: [string, string][] = [];
  if (files instanceof Map) for (const [p, c] of files as ReadonlyMap<string, string>) entries.push([p, c]);
  else for (const f of files as Iterable<RepoFile>) entries.push([f.path, f.content]);
  const out = new Map<string, string>();
  for (const [path, content] of entries) {
    const p = normalizePath(path);
    if (out.has(p)) throw new FleetInputError(`repo file "${p}" is given twice`);
    out.set(p, content);
  }
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function baseName(path: string): string {
  const slash = path.lastIndexOf('/');
  return path.slice(slash + 1).replace(YAML_FILE, '');
}

const line1 = (file: string): SourcePos => ({ file, line: 1, column: 1 });

/** Loads the repo's files (as from {@link collectFiles}) into bundle states, groups and declared clusters. */
export function loadRepo(files: ReadonlyMap<string, string>): LoadedRepo {
  const repoErrors: FleetError[] = [];
  const groupFiles = new Map<string, string>();
  const clusterFiles = new Map<string, string>();
  const rolloutFiles = new Map<string, string>();
  const policyFiles: PolicyFile[] = [];
  const tenantFiles: TenantFile[] = [];
  const sourceFiles: SourceFile[] = [];
  const bundleDirs = new Map<
    string,
    { path: string; dirName: string; spec?: string; manifests: string[]; overlays: Map<string, string[]> }
  >();

  for (const path of files.keys()) {
    // A team source's files enter the combined tree as `<source>:bundles/...` (sources/combine.ts).
    const source = sourceOfPath(path);
    const prefix = source === undefined ? '' : `${source}:`;
    const parts = path.slice(prefix.length).split('/');
    if (parts.some((p) => p.startsWith('.'))) continue;
    const yaml = YAML_FILE.test(path);
    const top = parts[0];
    // The sources declared through the admin API, as the sync adds them (`api:sources/<name>`).
    if (path.startsWith(API_SOURCES_PREFIX)) {
      sourceFiles.push({ path, content: files.get(path) ?? '' });
      continue;
    }
    if (source !== undefined && top !== 'bundles') continue;
    if (top === TENANTS_FOLDER || top === SOURCES_FOLDER) {
      if (yaml)
        (top === TENANTS_FOLDER ? tenantFiles : sourceFiles).push({ path, content: files.get(path) ?? '' });
    } else if (top === 'policies') {
      if (yaml) policyFiles.push({ path, content: files.get(path) ?? '' });
    } else if (top === 'groups' || top === 'clusters' || top === 'rollouts') {
      if (!yaml) continue;
      if (parts.length !== 2) {
        repoErrors.push(fleetError(line1(path), `${top} files go directly in ${top}/ (${top}/<name>.yaml)`));
        continue;
      }
      const name = baseName(path);
      const target = top === 'groups' ? groupFiles : top === 'clusters' ? clusterFiles : rolloutFiles;
      const other = target.get(name);
      if (other !== undefined) {
        const what = top === 'groups' ? 'group' : top === 'clusters' ? 'cluster' : 'rollout strategy';
        repoErrors.push(fleetError(line1(path), `${what} "${name}" is also defined in ${other}`));
        continue;
      }
      target.set(name, path);
    } else if (top === 'bundles') {
      if (parts.length === 2) {
        if (yaml) {
          repoErrors.push(
            fleetError(line1(path), 'bundle files go in a directory per bundle: bundles/<name>/bundle.yaml'),
          );
        }
        continue;
      }
      const dirName = parts[1] as string;
      const name = source === undefined ? dirName : `${source}/${dirName}`;
      let dir = bundleDirs.get(name);
      if (!dir) {
        dir = { path: `${prefix}bundles/${dirName}`, dirName, manifests: [], overlays: new Map() };
        bundleDirs.set(name, dir);
      }
      const rest = parts.slice(2);
      if (rest.length === 1 && rest[0] === 'bundle.yaml') dir.spec = path;
      else if (rest.length === 1 && rest[0] === 'bundle.yml') {
        repoErrors.push(fleetError(line1(path), `rename ${path} to ${dir.path}/bundle.yaml`, name));
      } else if (rest[0] === 'overlays') {
        if (!yaml) continue;
        if (rest.length < 3) {
          repoErrors.push(
            fleetError(line1(path), 'overlay files go in a directory per overlay: overlays/<name>/', name),
          );
          continue;
        }
        const overlay = rest[1] as string;
        const list = dir.overlays.get(overlay) ?? [];
        list.push(path);
        dir.overlays.set(overlay, list);
      } else if (yaml || (JSON_FILE.test(path) && looksLikeSops(path, files.get(path) ?? '')))
        dir.manifests.push(path);
    }
  }

  // Fleet-wide settings.
  let settings = DEFAULT_FLEET_SETTINGS;
  if (files.has(FLEET_SETTINGS_FILE)) {
    const reader = new SpecReader(FLEET_SETTINGS_FILE);
    const root = singleDocument(FLEET_SETTINGS_FILE, files.get(FLEET_SETTINGS_FILE) ?? '', reader);
    if (root !== false) settings = readFleetSettings(reader, root.node);
    repoErrors.push(...reader.errors);
  }
  const warnings: FleetError[] = [];

  // Notifications: read by the notifier; checked here so that their errors show in previews and syncs.
  repoErrors.push(...loadNotifications(files).errors);

  // Policies: ValidatingAdmissionPolicy documents, their bindings and params.
  let policies: PolicySet | undefined;
  if (policyFiles.length > 0) {
    const loaded = loadPolicies(policyFiles);
    policies = loaded.set;
    repoErrors.push(...loaded.errors);
  }

  // Tenants and the other fleet sources: the platform source's to declare.
  const loadedTenants = loadTenants(tenantFiles);
  repoErrors.push(...loadedTenants.errors);
  const loadedSources = loadSourceSpecs(sourceFiles);
  repoErrors.push(...loadedSources.errors);
  const sourceTenants = resolveSourceTenants(loadedSources.sources, loadedTenants.tenants, repoErrors);

  // Groups.
  const groups = new Map<string, GroupSpec>();
  const groupMatchers = new Map<string, LabelMatcher>();
  const brokenGroups = new Set<string>();
  for (const [name, path] of groupFiles) {
    const reader = new SpecReader(path);
    const problem = nameProblem(name);
    if (problem) reader.error(line1(path), `invalid group name: ${problem}`);
    const root = singleDocument(path, files.get(path) ?? '', reader);
    if (root !== false && reader.errors.length === 0) {
      const group = readGroup(reader, name, root.node, root.pos);
      if (group) {
        groups.set(name, group);
        groupMatchers.set(name, compileSelector(group.selector));
      }
    }
    if (reader.errors.length > 0) brokenGroups.add(name);
    repoErrors.push(...reader.errors);
  }

  // Rollout strategies: read after groups, since waves may name them.
  const rollouts = new Map<string, RolloutSpec>();
  const brokenRollouts = new Set<string>();
  const rolloutContext: RolloutContext = {
    groupStatus: (g) => (groups.has(g) ? 'ok' : brokenGroups.has(g) ? 'broken' : 'missing'),
    groupFile: (g) => groupFiles.get(g) ?? `groups/${g}.yaml`,
    strategy: (r) => rollouts.get(r) ?? (brokenRollouts.has(r) ? 'broken' : 'missing'),
    strategyFile: (r) => rolloutFiles.get(r) ?? `rollouts/${r}.yaml`,
  };
  for (const [name, path] of rolloutFiles) {
    const reader = new SpecReader(path);
    const problem = nameProblem(name);
    if (problem) reader.error(line1(path), `invalid rollout strategy name: ${problem}`);
    const root = singleDocument(path, files.get(path) ?? '', reader);
    if (root !== false && reader.errors.length === 0) {
      const spec = readRolloutStrategy(reader, name, root.node, root.pos, rolloutContext);
      if (spec && reader.errors.length === 0) rollouts.set(name, spec);
    }
    if (reader.errors.length > 0) brokenRollouts.add(name);
    repoErrors.push(...reader.errors);
  }

  // Clusters declared in git.
  const declared = new Map<string, DeclaredClusterSpec>();
  const clusterFileErrors = new Map<string, FleetError[]>();
  for (const [name, path] of clusterFiles) {
    const reader = new SpecReader(path);
    const problem = nameProblem(name);
    if (problem) reader.error(line1(path), `invalid cluster name: ${problem}`);
    const root = singleDocument(path, files.get(path) ?? '', reader);
    if (root !== false && reader.errors.length === 0) {
      const spec = readDeclaredCluster(reader, name, root.node);
      if (spec) declared.set(name, spec);
    }
    if (reader.errors.length > 0) clusterFileErrors.set(name, reader.errors);
    repoErrors.push(...reader.errors);
  }

  // Bundles: bundle.yaml, base manifests, overlays.
  const states: BundleState[] = [];
  for (const [name, dir] of [...bundleDirs].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const file = `${dir.path}/bundle.yaml`;
    const state: BundleState = {
      name,
      file,
      spec: undefined,
      errors: [],
      targets: undefined,
      exclude: undefined,
      customizations: [],
      variants: [],
      base: [],
      source: { kind: 'plain', files: dir.manifests },
      overlays: new Map(),
      dependsOn: [],
    };
    const reader = new SpecReader(file, name);
    if (dir.spec === undefined) {
      const first = dir.manifests[0] ?? [...dir.overlays.values()][0]?.[0];
      if (first === undefined) continue; // a directory without YAML (a README, say) is not a bundle
      state.errors.push(
        fleetError(line1(first), `bundle "${name}" has no bundle.yaml (expected ${file})`, name),
      );
      states.push(state);
      continue;
    }
    const problem = nameProblem(dir.dirName);
    if (problem) reader.error(line1(file), `invalid bundle name (the directory name): ${problem}`);
    const root = singleDocument(file, files.get(file) ?? '', reader);
    const engine = root !== false ? engineKinds(root.node) : undefined;
    if (engine) (state as { source: BundleSource }).source = { kind: 'engine', ...engine };
    if (root !== false) {
      const result = readBundleSpec(reader, name, root.node, root.pos, {
        ...rolloutContext,
        overlayExists: (o) => dir.overlays.has(o),
        overlayDir: (o) => `${dir.path}/overlays/${o}/`,
      });
      if (result.targeting) {
        state.targets = result.targeting.targets.map((e) => compileEntry(e, groupMatchers));
        state.exclude = result.targeting.exclude.map((e) => compileEntry(e, groupMatchers));
      }
      if (reader.errors.length === 0 && result.spec) {
        (state as { spec: BundleSpec | undefined }).spec = result.spec;
        state.customizations = result.spec.customizations.map((e) => compileEntry(e, groupMatchers));
      }
    }
    state.errors.push(...reader.errors);
    const owner = sourceOfBundle(name);
    if (owner !== undefined) {
      const boundary = sourceTenants.get(owner) ?? {
        problem: fleetError(
          line1(`${SOURCES_FOLDER}/${owner}.yaml`),
          `source "${owner}" is not declared, or its declaration has errors: its bundles are held`,
        ),
      };
      if ('problem' in boundary) state.errors.push({ ...boundary.problem, bundle: name });
      else if (boundary.tenant) {
        state.tenant = boundary.tenant;
        const chart = state.spec?.helm?.chart;
        if (chart && chart.kind !== 'path') {
          const refused = checkTenantChart(boundary.tenant, chart, {
            bundle: name,
            file,
            line: state.spec?.helm?.pos.line ?? 1,
          });
          if (refused) state.errors.push(refused);
        }
      }
    }
    let kustomizations: FleetError[] = [];
    if (state.source.kind === 'plain') {
      kustomizations = kustomizationsIn(state.source.files, file, name);
      state.errors.push(...kustomizations);
      (state as { source: BundleSource }).source = {
        kind: 'plain',
        files: state.source.files.filter((f) => !KUSTOMIZATION_FILE.test(f)),
      };
    }
    state.base =
      state.source.kind === 'engine'
        ? engineSealedFiles(dir.manifests, files, state.spec, name, state.errors)
        : readSource(state.source, files, name, state.errors);
    // In a Helm or Kustomize bundle, overlays/ is the kustomizations' own business.
    if (state.source.kind === 'plain') {
      for (const [overlay, paths] of dir.overlays) {
        state.overlays.set(overlay, readManifests(paths, files, name, state.errors, true));
      }
    }
    const plainSecrets = plaintextSecrets([...state.base, ...[...state.overlays.values()].flat()], name);
    if (settings.secrets.plaintext === 'refuse')
      state.errors.push(
        ...plainSecrets.map((e) => ({
          ...e,
          message: `${e.message}; fleet.yaml refuses plain Secrets (secrets.plaintext: refuse)`,
        })),
      );
    else warnings.push(...plainSecrets);
    // After the files' own errors and the overlays', the order a held bundle lists them in.
    if (kustomizations.length === 0) state.errors.push(...sourceProblems(state.source, name, file));
    states.push(state);
  }
  return {
    errors: repoErrors,
    groups,
    rollouts,
    declaredClusters: declared,
    clusterFileErrors,
    bundles: states,
    settings,
    policies,
    warnings: normalizeFleetErrors(warnings),
    tenants: loadedTenants.tenants,
    sources: loadedSources.sources,
  };
}

/**
 * Each declared source's tenant, or the problem that holds all its bundles: a tenant that
 * is not declared (or whose declaration has errors), or a repository the tenant may not
 * read. Each problem is also a repo error, once, at the source's file.
 */
function resolveSourceTenants(
  sources: ReadonlyMap<string, FleetSourceSpec>,
  tenants: ReadonlyMap<string, Tenant>,
  repoErrors: FleetError[],
): Map<string, { tenant: Tenant | undefined } | { problem: FleetError }> {
  const out = new Map<string, { tenant: Tenant | undefined } | { problem: FleetError }>();
  for (const [name, source] of sources) {
    if (source.tenant === undefined) {
      out.set(name, { tenant: undefined });
      continue;
    }
    const tenant = tenants.get(source.tenant);
    const problem = tenant
      ? checkTenantSource(tenant, source.repo, source.pos)
      : fleetError(
          source.tenantPos,
          `spec.tenant: unknown tenant "${source.tenant}" (no valid ${TENANTS_FOLDER}/${source.tenant}.yaml): the source's bundles are held`,
        );
    if (problem) {
      repoErrors.push(problem);
      out.set(name, { problem });
    } else out.set(name, { tenant });
  }
  return out;
}

const KUSTOMIZATION_FILE = /(^|\/)kustomization\.ya?ml$/;

/** A cheap look before parsing: a SOPS file has `sops` at the top level. */
function looksLikeSops(path: string, content: string): boolean {
  return JSON_FILE.test(path) ? /"sops"\s*:/.test(content) : /^sops:/m.test(content);
}

/**
 * A Helm or Kustomize bundle's SOPS files: the encrypted files next to its bundle.yaml (a
 * Secret the chart reads, say) travel with the engine's output as committed. Values files,
 * and files in the chart's or a kustomization's directory, are the engine's inputs, not
 * objects (an encrypted one there is an error of its own, when the engine outputs it).
 */
function engineSealedFiles(
  paths: readonly string[],
  files: ReadonlyMap<string, string>,
  spec: BundleSpec | undefined,
  bundle: string,
  errors: FleetError[],
): ManifestDoc[] {
  const values = new Set<string>();
  for (const f of spec?.helm?.valuesFiles ?? []) values.add(f.path);
  for (const c of spec?.customizations ?? []) for (const f of c.helm?.valuesFiles ?? []) values.add(f.path);
  // The chart's and the kustomizations' own directories are the engine's: what is there is its input.
  const engineDirs: string[] = [];
  if (spec?.helm?.chart.kind === 'path') engineDirs.push(`${spec.helm.chart.dir.path}/`);
  if (spec?.kustomize) engineDirs.push(`${spec.kustomize.dir.path}/`);
  for (const c of spec?.customizations ?? []) if (c.kustomize) engineDirs.push(`${c.kustomize.dir.path}/`);
  for (const p of paths) if (KUSTOMIZATION_FILE.test(p)) engineDirs.push(p.slice(0, p.lastIndexOf('/') + 1));
  const sops = paths.filter(
    (p) => !values.has(p) && !engineDirs.some((d) => p.startsWith(d)) && looksLikeSops(p, files.get(p) ?? ''),
  );
  return sops.length === 0 ? [] : readManifests(sops, files, bundle, errors, false).filter((d) => d.sealed);
}

/** Which engines a bundle.yaml asks for, read from its top-level keys even when the rest has errors. */
function engineKinds(root: YNode | null): { helm: boolean; kustomize: boolean } | undefined {
  if (root?.kind !== 'map') return undefined;
  const helm = root.entries.some((e) => e.key === 'helm');
  const kustomize = root.entries.some((e) => e.key === 'kustomize');
  return helm || kustomize ? { helm, kustomize } : undefined;
}

/** A kustomization among a plain bundle's files: never shipped as an object, and the error says what to write instead. */
function kustomizationsIn(paths: readonly string[], bundleFile: string, bundle: string): FleetError[] {
  const bundleDir = bundleFile.slice(0, bundleFile.lastIndexOf('/'));
  return paths
    .filter((p) => KUSTOMIZATION_FILE.test(p))
    .map((p) => {
      const dir = p.slice(0, p.lastIndexOf('/'));
      const rel = dir === bundleDir ? '' : dir.slice(bundleDir.length + 1);
      const fix = rel === '' ? 'kustomize: {}' : `kustomize: {dir: ${rel}}`;
      return fleetError(
        line1(p),
        `${p} is a kustomization, not a Kubernetes object: add "${fix}" to ${bundleFile} to build it with kustomize`,
        bundle,
      );
    });
}

function singleDocument(file: string, content: string, reader: SpecReader): YDocument | false {
  const parsed = parseYamlFile(file, content, reader.bundle);
  if (parsed.errors.length > 0) {
    reader.errors.push(...parsed.errors);
    return false;
  }
  const docs = parsed.documents.filter((d) => d.node !== null);
  if (docs.length > 1) {
    reader.error((docs[1] as YDocument).pos, `${file} must hold one YAML document, found ${docs.length}`);
    return false;
  }
  return docs[0] ?? { file, index: 0, pos: line1(file), node: null };
}
