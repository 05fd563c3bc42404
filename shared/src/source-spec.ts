/**
 * The `helm:` and `kustomize:` sections of bundle.yaml, and of its customizations: where a
 * bundle's objects come from when the render engines build them. Paths are relative to
 * the bundle's directory and must stay inside the fleet repo; values are kept as
 * positioned YAML so that variables in them can be reported with file and line.
 */
import type { SourcePos } from './errors.ts';
import type { SpecReader } from './spec-reader.ts';
import type { YNode } from './yaml-source.ts';

/** A repo path and where bundle.yaml names it. */
export interface RepoPathRef {
  /** Normalized repo path, e.g. `bundles/ingress/chart`. */
  readonly path: string;
  readonly pos: SourcePos;
}

/** Where a chart comes from. */
export type ChartLocation =
  | { readonly kind: 'path'; readonly dir: RepoPathRef }
  | { readonly kind: 'repo'; readonly repo: string; readonly chart: string }
  | { readonly kind: 'oci'; readonly url: string };

/** Credentials for a private chart repository: the name of a secret the hub resolves, never the secret itself. */
export interface ChartAuth {
  readonly secretRef: string;
}

/** A bundle's `helm:` section. */
export interface HelmSpec {
  readonly pos: SourcePos;
  readonly chart: ChartLocation;
  /** A version or a semver range; required for repository and OCI charts. */
  readonly version?: string;
  readonly releaseName: string;
  /** The release namespace; the bundle's namespace unless set. */
  readonly namespace?: string;
  /** The `values` mapping as written (positioned, so variables in it report their line). */
  readonly values?: YNode;
  readonly valuesFiles: readonly RepoPathRef[];
  readonly skipCRDs: boolean;
  /** `.Capabilities.KubeVersion` for every cluster, instead of the version its agent reports. */
  readonly kubeVersion?: string;
  readonly apiVersions: readonly string[];
  readonly auth?: ChartAuth;
}

/** A bundle's `kustomize:` section. */
export interface KustomizeSpec {
  readonly pos: SourcePos;
  /** The directory `kustomize build` runs in. */
  readonly dir: RepoPathRef;
}

/** What a customization may change of a Helm bundle. */
export interface HelmCustomization {
  readonly pos: SourcePos;
  readonly values?: YNode;
  readonly valuesFiles?: readonly RepoPathRef[];
  readonly version?: string;
}

/** What a customization may change of a Kustomize bundle. */
export interface KustomizeCustomization {
  readonly pos: SourcePos;
  readonly dir: RepoPathRef;
}

export const HELM_FIELDS = [
  'chart',
  'repo',
  'version',
  'releaseName',
  'namespace',
  'values',
  'valuesFiles',
  'skipCRDs',
  'kubeVersion',
  'apiVersions',
  'auth',
] as const;
const HELM_CUSTOMIZATION_FIELDS = ['values', 'valuesFiles', 'version'] as const;
const KUSTOMIZE_FIELDS = ['dir'] as const;

const KUBE_VERSION = /^v?\d+\.\d+(\.\d+)?([-+][0-9A-Za-z.+-]*)?$/;
const API_VERSION = /^([a-z0-9.-]+\/)?v[0-9]+[a-z0-9]*(\/[A-Za-z0-9]+)?$/;

/**
 * Resolves `rel` against the bundle directory `bundleDir` into a normalized repo path;
 * undefined when it leaves the repo or is absolute.
 */
export function resolveRepoPath(bundleDir: string, rel: string): string | undefined {
  if (rel.startsWith('/') || /^[A-Za-z]:/.test(rel)) return undefined;
  // A team source's bundle (`team-a:bundles/web`) resolves inside its own source: the
  // prefix is that source's root, which `..` cannot leave.
  const source = /^[a-z0-9][-a-z0-9]*:/.exec(bundleDir)?.[0] ?? '';
  const parts = bundleDir
    .slice(source.length)
    .split('/')
    .filter((p) => p !== '');
  for (const seg of rel.replace(/\\/g, '/').split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (parts.length === 0) return undefined;
      parts.pop();
    } else parts.push(seg);
  }
  return source + parts.join('/');
}

function readPath(reader: SpecReader, node: YNode, path: string, bundleDir: string): RepoPathRef | undefined {
  const rel = reader.expectString(node, path);
  if (rel === undefined) return undefined;
  if (rel.includes('://')) {
    reader.error(node.pos, `${path}: "${rel}" is a URL; expected a path in the fleet repo`);
    return undefined;
  }
  const resolved = resolveRepoPath(bundleDir, rel);
  if (resolved === undefined) {
    reader.error(node.pos, `${path}: "${rel}" leaves the fleet repo (paths are relative to ${bundleDir}/)`);
    return undefined;
  }
  return { path: resolved, pos: node.pos };
}

function readPaths(reader: SpecReader, node: YNode, path: string, bundleDir: string): RepoPathRef[] {
  const items = reader.expectList(node, path) ?? [];
  const out: RepoPathRef[] = [];
  items.forEach((item, i) => {
    const p = readPath(reader, item, `${path}[${i}]`, bundleDir);
    if (p) out.push(p);
  });
  return out;
}

function readValuesNode(reader: SpecReader, node: YNode, path: string): YNode | undefined {
  return reader.expectMap(node, path) ? node : undefined;
}

function readVersion(reader: SpecReader, node: YNode, path: string): string | undefined {
  const v = node.kind === 'scalar' && typeof node.value === 'number' ? String(node.value) : undefined;
  const version = v ?? reader.expectString(node, path);
  if (version !== undefined && version.trim() === '') {
    reader.error(node.pos, `${path}: must not be empty (leave it out for the latest version)`);
    return undefined;
  }
  return version;
}

/** Reads a bundle's `helm:` section; `bundleName` is the default release name. */
export function readHelmSpec(
  reader: SpecReader,
  node: YNode,
  bundleName: string,
  bundleDir: string,
): HelmSpec | undefined {
  const map = reader.expectMap(node, 'helm');
  if (!map) return undefined;
  const before = reader.errors.length;
  const f = reader.fields(map, 'helm', HELM_FIELDS);
  const chartNode = f.get('chart');
  const repoNode = f.get('repo');
  let chart: ChartLocation | undefined;
  if (!chartNode) {
    reader.error(
      map.pos,
      'helm.chart: required (a path to the chart in the fleet repo, a chart name with helm.repo, or oci://...)',
    );
  } else {
    const text = reader.expectString(chartNode, 'helm.chart');
    if (text !== undefined) {
      if (repoNode) {
        const repo = reader.expectString(repoNode, 'helm.repo');
        if (repo !== undefined) {
          if (!/^https?:\/\/[^/]/.test(repo))
            reader.error(repoNode.pos, `helm.repo: "${repo}" is not an http(s) URL of a Helm repository`);
          else if (text.includes('/') || text === '')
            reader.error(chartNode.pos, `helm.chart: "${text}" must be a chart name in ${repo}`);
          else chart = { kind: 'repo', repo: repo.replace(/\/+$/, ''), chart: text };
        }
      } else if (text.startsWith('oci://')) {
        if (!/^oci:\/\/[^/]+\/.+[^/]$/.test(text))
          reader.error(
            chartNode.pos,
            `helm.chart: "${text}" is not a chart reference (oci://host/path/name)`,
          );
        else chart = { kind: 'oci', url: text };
      } else if (/^[a-z]+:\/\//.test(text)) {
        reader.error(
          chartNode.pos,
          `helm.chart: "${text}" is a URL; give the repository as helm.repo and the chart's name as helm.chart`,
        );
      } else {
        const dir = readPath(reader, chartNode, 'helm.chart', bundleDir);
        if (dir) chart = { kind: 'path', dir };
      }
    }
  }
  const versionNode = f.get('version');
  const version = versionNode ? readVersion(reader, versionNode, 'helm.version') : undefined;
  if (chart && chart.kind !== 'path' && versionNode === undefined)
    reader.error(
      map.pos,
      `helm.version: required for a chart from a repository (a version such as 1.2.3 or a range such as ^1.2)`,
    );
  if (chart?.kind === 'path' && versionNode)
    reader.error(
      versionNode.pos,
      'helm.version: only for charts from a repository (a chart in the repo has its own version)',
    );
  const str = (key: string): string | undefined => {
    const n = f.get(key);
    return n ? reader.expectString(n, `helm.${key}`) : undefined;
  };
  const releaseNode = f.get('releaseName');
  const releaseName = releaseNode
    ? reader.expectName(releaseNode, 'helm.releaseName', 'release')
    : bundleName.slice(bundleName.indexOf('/') + 1); // a source's bundle `team-a/web` releases as `web`
  const nsNode = f.get('namespace');
  const namespace = nsNode ? reader.expectName(nsNode, 'helm.namespace', 'namespace') : undefined;
  const valuesNode = f.get('values');
  const values = valuesNode ? readValuesNode(reader, valuesNode, 'helm.values') : undefined;
  const valuesFilesNode = f.get('valuesFiles');
  const valuesFiles = valuesFilesNode
    ? readPaths(reader, valuesFilesNode, 'helm.valuesFiles', bundleDir)
    : [];
  const skipNode = f.get('skipCRDs');
  const skipCRDs = skipNode ? (reader.expectBoolean(skipNode, 'helm.skipCRDs') ?? false) : false;
  const kubeVersion = str('kubeVersion');
  if (kubeVersion !== undefined && !KUBE_VERSION.test(kubeVersion))
    reader.error(
      (f.get('kubeVersion') as YNode).pos,
      `helm.kubeVersion: "${kubeVersion}" is not a version such as v1.31.0`,
    );
  const apiVersions: string[] = [];
  const apiNode = f.get('apiVersions');
  if (apiNode) {
    (reader.expectList(apiNode, 'helm.apiVersions') ?? []).forEach((item, i) => {
      const v = reader.expectString(item, `helm.apiVersions[${i}]`);
      if (v === undefined) return;
      if (!API_VERSION.test(v))
        reader.error(
          item.pos,
          `helm.apiVersions[${i}]: "${v}" is not an API version (group/version or group/version/Kind)`,
        );
      else apiVersions.push(v);
    });
  }
  let auth: ChartAuth | undefined;
  const authNode = f.get('auth');
  if (authNode) {
    const authMap = reader.expectMap(authNode, 'helm.auth');
    if (authMap) {
      const af = reader.fields(authMap, 'helm.auth', ['secretRef']);
      const refNode = af.get('secretRef');
      if (!refNode)
        reader.error(
          authMap.pos,
          'helm.auth.secretRef: required (the name of the hub secret with the credentials)',
        );
      else {
        const ref = reader.expectName(refNode, 'helm.auth.secretRef', 'secret');
        if (ref !== undefined) auth = { secretRef: ref };
      }
    }
    if (chart?.kind === 'path') reader.error(authNode.pos, 'helm.auth: only for charts from a repository');
  }
  if (reader.errors.length !== before || !chart || releaseName === undefined) return undefined;
  return {
    pos: map.pos,
    chart,
    ...(version === undefined ? {} : { version }),
    releaseName,
    ...(namespace === undefined ? {} : { namespace }),
    ...(values === undefined ? {} : { values }),
    valuesFiles,
    skipCRDs,
    ...(kubeVersion === undefined ? {} : { kubeVersion }),
    apiVersions,
    ...(auth === undefined ? {} : { auth }),
  };
}

/** Reads a bundle's `kustomize:` section (`dir` defaults to the bundle's directory). */
export function readKustomizeSpec(
  reader: SpecReader,
  node: YNode,
  bundleDir: string,
): KustomizeSpec | undefined {
  if (node.kind === 'scalar' && node.value === null)
    return { pos: node.pos, dir: { path: bundleDir, pos: node.pos } };
  const map = reader.expectMap(node, 'kustomize');
  if (!map) return undefined;
  const f = reader.fields(map, 'kustomize', KUSTOMIZE_FIELDS);
  const dirNode = f.get('dir');
  const dir = dirNode
    ? readPath(reader, dirNode, 'kustomize.dir', bundleDir)
    : { path: bundleDir, pos: map.pos };
  return dir ? { pos: map.pos, dir } : undefined;
}

/** Reads a customization's `helm:` (values, valuesFiles, version). */
export function readHelmCustomization(
  reader: SpecReader,
  node: YNode,
  path: string,
  bundleDir: string,
): HelmCustomization | undefined {
  const map = reader.expectMap(node, path);
  if (!map) return undefined;
  const f = reader.fields(map, path, HELM_CUSTOMIZATION_FIELDS);
  const valuesNode = f.get('values');
  const values = valuesNode ? readValuesNode(reader, valuesNode, `${path}.values`) : undefined;
  const filesNode = f.get('valuesFiles');
  const valuesFiles = filesNode ? readPaths(reader, filesNode, `${path}.valuesFiles`, bundleDir) : undefined;
  const versionNode = f.get('version');
  const version = versionNode ? readVersion(reader, versionNode, `${path}.version`) : undefined;
  if (f.size === 0)
    reader.error(map.pos, `${path}: nothing to customize (set values, valuesFiles or version)`);
  return {
    pos: map.pos,
    ...(values === undefined ? {} : { values }),
    ...(valuesFiles === undefined ? {} : { valuesFiles }),
    ...(version === undefined ? {} : { version }),
  };
}

/** Reads a customization's `kustomize:` (dir). */
export function readKustomizeCustomization(
  reader: SpecReader,
  node: YNode,
  path: string,
  bundleDir: string,
): KustomizeCustomization | undefined {
  const map = reader.expectMap(node, path);
  if (!map) return undefined;
  const f = reader.fields(map, path, KUSTOMIZE_FIELDS);
  const dirNode = f.get('dir');
  if (!dirNode) {
    reader.error(map.pos, `${path}.dir: required (the kustomization directory for these clusters)`);
    return undefined;
  }
  const dir = readPath(reader, dirNode, `${path}.dir`, bundleDir);
  return dir ? { pos: map.pos, dir } : undefined;
}
