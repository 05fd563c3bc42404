/**
 * The engine source step: bundles whose objects Helm or kustomize build.
 *
 * At load (`compileEngineVariants`), each customization becomes an {@link EngineVariant}:
 * the chart and its merged values with holes for cluster variables, or the kustomization
 * directory. When the clusters are known (`prepareEngineBundles`, behind
 * `Fleet.prepare`), every cluster picks its variant and fills the holes; clusters that
 * agree on variant, values and Kubernetes version share one render, so a fleet of
 * 100,000 clusters in ten regions costs ten renders. Each render's output becomes a
 * variant like a plain bundle's (`compileVariant`, strings taken literally), so
 * everything after this step is the same for every kind of bundle.
 */

import { type BundleSpec, type CustomizationEntry, mergeValues } from '../bundle-spec.ts';
import { type FleetError, fleetError, type SourcePos } from '../errors.ts';
import { groupKind } from '../kinds.ts';
import type { Labels } from '../labels.ts';
import { contentBase64 } from '../repo-content.ts';
import type { ChartLocation } from '../source-spec.ts';
import { sourceOfPath } from '../sources/spec.ts';
import { parseYamlFile, type YMap } from '../yaml-source.ts';
import type {
  ChartFetcher,
  ChartFetchResult,
  EncodedFiles,
  EnginePorts,
  EngineResult,
  RenderEngine,
  ResolvedChart,
} from './engine.ts';
import {
  compileHelmValues,
  fillHelmValues,
  type HelmMap,
  helmValueOf,
  mergeHelmValues,
} from './helm-values.ts';
import type { BundleState, ClusterInput, EngineOutcome, EngineVariant, ManifestDoc } from './model.ts';
import { fileSizeProblem } from './objects.ts';
import { compileVariant, type RenderCacheBudget } from './render.ts';
import { isSopsDocument } from './sealed.ts';
import { firstEntry } from './targeting.ts';
import { crdScopes, type IsClusterScoped } from './variant.ts';

/** The file a kustomization lists to take a chart's output (Helm first, then kustomize over it). */
export const HELM_OUTPUT_FILE = 'manifests.yaml';

/**
 * Compiles an engine bundle's variants (defaults, then one per customization) into
 * `state.engine`; problems of values files and variables go to `state.errors`.
 */
export function compileEngineVariants(state: BundleState, files: ReadonlyMap<string, string>): void {
  const spec = state.spec as BundleSpec;
  const errors: FleetError[] = [];
  const valuesFile = (path: string, pos: SourcePos, where: string): HelmMap => {
    const content = files.get(path);
    if (content === undefined) {
      errors.push(fleetError(pos, `${where}: no file ${path} in the fleet repo`, state.name));
      return new Map();
    }
    const tooBig = fileSizeProblem(path, content, state.name);
    if (tooBig) {
      errors.push(tooBig);
      return new Map();
    }
    const parsed = parseYamlFile(path, content, state.name);
    errors.push(...parsed.errors);
    const docs = parsed.documents.filter((d) => d.node !== null);
    if (docs.length > 1) {
      errors.push(
        fleetError(
          (docs[1] as { pos: SourcePos }).pos,
          `${path}: a values file holds one YAML document`,
          state.name,
        ),
      );
      return new Map();
    }
    const node = docs[0]?.node;
    if (!node) return new Map();
    if (isSopsDocument(node)) {
      errors.push(
        fleetError(
          node.pos,
          `${path} is SOPS-encrypted: Helm values are rendered at the hub, which never decrypts. Put the secret in a SOPS-encrypted Secret next to bundle.yaml and have the chart read it (an existingSecret value)`,
          state.name,
        ),
      );
      return new Map();
    }
    if (node.kind !== 'map') {
      errors.push(fleetError(node.pos, `${path}: a values file is a mapping of values`, state.name));
      return new Map();
    }
    return helmValueOf(node) as HelmMap;
  };

  const helmValues = (c: CustomizationEntry | undefined): HelmMap => {
    const helm = spec.helm;
    if (!helm) return new Map();
    let merged: HelmMap = new Map();
    const layer = (
      files: readonly { path: string; pos: SourcePos }[],
      values: YMap | undefined,
      where: string,
    ) => {
      files.forEach((f, i) => {
        merged = mergeHelmValues(merged, valuesFile(f.path, f.pos, `${where}.valuesFiles[${i}]`));
      });
      if (values) merged = mergeHelmValues(merged, helmValueOf(values) as HelmMap);
    };
    layer(helm.valuesFiles, helm.values as YMap | undefined, 'helm');
    if (c?.helm)
      layer(c.helm.valuesFiles ?? [], c.helm.values as YMap | undefined, `customizations[${c.index}].helm`);
    return merged;
  };

  const variantOf = (index: number, c: CustomizationEntry | undefined): EngineVariant => {
    const origin = c
      ? `values of ${state.file} and customizations[${c.index}]${c.name === undefined ? '' : ` "${c.name}"`}`
      : `values of ${state.file}`;
    const flotillaValues = mergeValues(spec.values, c?.values);
    const kustomizeDir = c?.kustomize?.dir ?? spec.kustomize?.dir;
    return {
      index,
      origin,
      ...(spec.helm
        ? {
            helm: {
              chart: spec.helm.chart,
              ...((c?.helm?.version ?? spec.helm.version)
                ? { version: (c?.helm?.version ?? spec.helm.version) as string }
                : {}),
              values: compileHelmValues(helmValues(c), flotillaValues, origin, state.name, errors),
            },
          }
        : {}),
      ...(kustomizeDir ? { kustomizeDir } : {}),
      ignoreDifferences: [...spec.ignoreDifferences, ...(c?.ignoreDifferences ?? [])],
      healthChecks: [...(c?.healthChecks ?? []), ...spec.healthChecks],
    };
  };

  const variants = [variantOf(0, undefined), ...spec.customizations.map((c, i) => variantOf(i + 1, c))];
  state.errors.push(...errors);
  state.engine = { variants, byCluster: new Map() };
}

/** What prepare needs of the fleet around the engine bundles. */
export interface PrepareContext {
  readonly files: ReadonlyMap<string, string>;
  readonly isClusterScoped: IsClusterScoped;
  readonly budget: RenderCacheBudget;
  readonly labelsOf: (cluster: ClusterInput) => Labels;
  readonly ports: EnginePorts;
}

/**
 * Renders the engine bundles for `clusters`: per bundle, one render per distinct
 * variant, values and Kubernetes version, shared by every cluster that has them. Fills
 * `state.engine.byCluster`; returns the chart versions it resolved.
 */
export async function prepareEngineBundles(
  states: readonly BundleState[],
  clusters: readonly ClusterInput[],
  ctx: PrepareContext,
): Promise<ResolvedChart[]> {
  const resolved: ResolvedChart[] = [];
  // What a kustomization may read: its own bundle's directory and lib/ (shared bases), so
  // that a change elsewhere in the repo leaves its render's inputs, and cache key, alone.
  const encoded = new Map<string, EncodedFiles>();
  const encodedFor = (bundleDir: string): EncodedFiles => {
    let out = encoded.get(bundleDir);
    if (!out) {
      // A team source's bundle sees its own directory only, under its source-relative path.
      const prefix = sourcePrefixOf(bundleDir);
      const files: Record<string, string> = {};
      for (const [path, content] of ctx.files) {
        if (path.startsWith(`${bundleDir}/`) || (prefix === '' && path.startsWith('lib/')))
          files[path.slice(prefix.length)] = contentBase64(content);
      }
      out = files;
      encoded.set(bundleDir, out);
    }
    return out;
  };
  const charts = new Map<string, Promise<ChartFetchResult>>();
  const work: Promise<void>[] = [];
  for (const state of states) {
    const engine = state.engine;
    if (!engine || !state.spec || state.errors.length > 0 || !state.targets || !state.exclude) continue;
    const renders = new Map<string, { readonly members: string[] }>();
    for (const cluster of clusters) {
      const labels = ctx.labelsOf(cluster);
      if (!firstEntry(state.targets, cluster.name, labels)) continue;
      if (state.exclude.length > 0 && firstEntry(state.exclude, cluster.name, labels)) continue;
      const custom = firstEntry(state.customizations, cluster.name, labels);
      const variant = engine.variants[custom ? custom.ref.index + 1 : 0] as EngineVariant;
      const kubeVersion = state.spec.helm?.kubeVersion ?? cluster.kubeVersion ?? '';
      let valuesJson = '';
      if (variant.helm) {
        const filled = fillHelmValues(variant.helm.values, cluster.name, labels);
        if (!filled.ok) {
          engine.byCluster.set(cluster.name, {
            ok: false,
            errors: filled.missing.map((v) =>
              fleetError(
                v.pos,
                `undefined variable \${${v.ref.text}}: cluster "${cluster.name}" has no label "${v.ref.kind === 'cluster.labels' ? v.ref.key : ''}"`,
                state.name,
              ),
            ),
          });
          continue;
        }
        valuesJson = filled.json;
      }
      const key = `${variant.index}\u0000${variant.helm ? kubeVersion : ''}\u0000${valuesJson}`;
      let render = renders.get(key);
      if (!render) {
        const members: string[] = [];
        const pending = renderEngineVariant(state, variant, valuesJson, kubeVersion, {
          ...ctx,
          encodedRepo: () => encodedFor(state.file.slice(0, state.file.lastIndexOf('/'))),
          chart: (loc, version) => fetchChartOnce(charts, ctx.ports.charts, loc, version, state, resolved),
        });
        render = { members };
        renders.set(key, render);
        // One continuation per render, not per cluster: 100,000 clusters share a handful.
        work.push(
          pending.then((outcome) => {
            for (const member of members) engine.byCluster.set(member, outcome);
          }),
        );
      }
      render.members.push(cluster.name);
    }
  }
  await Promise.all(work);
  return resolved;
}

interface RenderContext extends PrepareContext {
  encodedRepo(): EncodedFiles;
  chart(loc: ChartLocation, version: string | undefined): Promise<ChartFetchResult>;
}

function chartKey(loc: ChartLocation): string {
  return loc.kind === 'repo' ? `${loc.repo}/${loc.chart}` : loc.kind === 'oci' ? loc.url : loc.dir.path;
}

function fetchChartOnce(
  memo: Map<string, Promise<ChartFetchResult>>,
  fetcher: ChartFetcher | undefined,
  loc: ChartLocation,
  version: string | undefined,
  state: BundleState,
  resolved: ResolvedChart[],
): Promise<ChartFetchResult> {
  const key = `${chartKey(loc)}\u0000${version ?? ''}`;
  let got = memo.get(key);
  if (!got) {
    if (!fetcher) {
      got = Promise.resolve({
        ok: false,
        reason: 'invalid',
        error: 'this hub has no chart fetcher configured, so charts from repositories cannot be used',
      } as const);
    } else {
      const request =
        loc.kind === 'repo'
          ? { repo: loc.repo, chart: loc.chart }
          : { chart: loc.kind === 'oci' ? loc.url : loc.dir.path };
      const auth = state.spec?.helm?.auth;
      got = fetcher.fetchChart({
        ...request,
        ...(version === undefined ? {} : { version }),
        ...(auth ? { auth } : {}),
      });
    }
    memo.set(key, got);
  }
  return got.then((r) => {
    if (r.ok && !resolved.some((x) => x.bundle === state.name && x.digest === r.chart.digest)) {
      resolved.push({
        bundle: state.name,
        chart: chartKey(loc),
        constraint: version ?? '',
        version: r.chart.version,
        digest: r.chart.digest,
      });
    }
    return r;
  });
}

async function renderEngineVariant(
  state: BundleState,
  variant: EngineVariant,
  valuesJson: string,
  kubeVersion: string,
  ctx: RenderContext,
): Promise<EngineOutcome> {
  const spec = state.spec as BundleSpec;
  const fail = (pos: SourcePos, message: string): EngineOutcome => ({
    ok: false,
    errors: [fleetError(pos, message, state.name)],
  });
  const engine: RenderEngine | undefined = ctx.ports.engine;
  if (!engine) {
    return fail(
      (spec.helm ?? spec.kustomize)?.pos as SourcePos,
      `bundle "${state.name}" needs the render engine (Helm and Kustomize bundles), which this hub runs without`,
    );
  }
  const namespace = spec.helm?.namespace ?? spec.namespace;
  let manifests = '';
  let sourceFile: (source: string | undefined) => string = () => state.file;
  try {
    if (variant.helm && spec.helm) {
      const helm = spec.helm;
      const chart = variant.helm.chart;
      let chartInput: { files: EncodedFiles } | { archive: string };
      let chartLabel: string;
      if (chart.kind === 'path') {
        const dir = chart.dir.path;
        const files: Record<string, string> = {};
        for (const [path, content] of ctx.files) {
          if (path.startsWith(`${dir}/`)) files[path.slice(dir.length + 1)] = contentBase64(content);
        }
        if (!Object.hasOwn(files, 'Chart.yaml'))
          return fail(chart.dir.pos, `helm.chart: no chart at ${dir} (${dir}/Chart.yaml is missing)`);
        chartInput = { files };
        chartLabel = dir;
        // "# Source: web/templates/x.yaml" is the chart's own path: the repo's is under `dir`.
        sourceFile = (source) => (source ? `${dir}/${source.split('/').slice(1).join('/')}` : state.file);
      } else {
        const fetched = await ctx.chart(chart, variant.helm.version);
        if (!fetched.ok) return fail(helm.pos, `helm.chart: ${fetched.error}`);
        chartInput = { archive: Buffer.from(fetched.chart.archive).toString('base64') };
        chartLabel = `${fetched.chart.name}-${fetched.chart.version}`;
        sourceFile = (source) =>
          source ? `${chartLabel}/${source.split('/').slice(1).join('/')}` : state.file;
      }
      const result: EngineResult = await engine.render({
        kind: 'helm',
        ...chartInput,
        releaseName: helm.releaseName,
        namespace,
        values: JSON.parse(valuesJson) as Record<string, unknown>,
        ...(kubeVersion ? { kubeVersion } : {}),
        ...(helm.apiVersions.length > 0 ? { apiVersions: helm.apiVersions } : {}),
        ...(helm.skipCRDs ? { skipCRDs: true } : {}),
      });
      if (!result.ok) {
        const e = result.error;
        if (chart.kind === 'path' && e.file) {
          return fail(
            { file: sourceFile(e.file), line: e.line ?? 1, column: 1 },
            `helm template (${state.file}): ${e.message}`,
          );
        }
        return fail(
          helm.pos,
          `helm template of ${chartLabel}: ${e.message}${e.file ? ` (at ${e.file}${e.line ? `:${e.line}` : ''})` : ''}`,
        );
      }
      manifests = result.manifests;
    }
    if (variant.kustomizeDir) {
      const dir = variant.kustomizeDir;
      const prefix = sourcePrefixOf(dir.path);
      const engineDir = dir.path.slice(prefix.length);
      let files = ctx.encodedRepo();
      if (variant.helm) {
        const out = `${engineDir}/${HELM_OUTPUT_FILE}`;
        if (Object.hasOwn(files, out))
          return fail(
            dir.pos,
            `kustomize.dir: ${out} exists, but that is where the chart's output goes (list ${HELM_OUTPUT_FILE} in the kustomization's resources, and rename the file)`,
          );
        files = { ...files, [out]: Buffer.from(manifests, 'utf8').toString('base64') };
      }
      const result = await engine.render({ kind: 'kustomize', files, dir: engineDir });
      if (!result.ok) {
        const e = result.error;
        const file = e.file ? prefix + e.file : undefined;
        return fail(
          file && ctx.files.has(file) ? { file, line: e.line ?? 1, column: 1 } : dir.pos,
          `kustomize build ${dir.path}: ${e.message}`,
        );
      }
      manifests = result.manifests;
      const kustomization = `${dir.path}/kustomization.yaml`;
      sourceFile = () => (ctx.files.has(kustomization) ? kustomization : dir.path);
    }
  } catch (err) {
    return fail(
      (spec.helm ?? spec.kustomize)?.pos as SourcePos,
      `the render engine failed: ${(err as Error).message}`,
    );
  }
  const errors: FleetError[] = [];
  // The bundle's SOPS files travel beside the engine's output, as committed.
  const docs = [...manifestDocs(manifests, sourceFile, state.name, errors), ...state.base];
  if (errors.length > 0) return { ok: false, errors };
  const compiled = compileVariant({
    bundle: state.name,
    namespace,
    docs,
    values: {},
    valuesOrigin: variant.origin,
    ignoreDifferences: variant.ignoreDifferences,
    healthChecks: variant.healthChecks,
    isClusterScoped: withCrdsOf(docs, ctx.isClusterScoped),
    budget: ctx.budget,
    literal: true,
  });
  if (!compiled.variant) return { ok: false, errors: compiled.errors };
  // Another bundle may define the same objects: checked per cluster, as for variants with dynamic names.
  compiled.variant.contested = true;
  return { ok: true, variant: compiled.variant };
}

const SOURCE_COMMENT = /^# Source: (.+)$/m;

/**
 * The documents of an engine's output, each attributed to the file it came from (Helm's
 * `# Source:` comment, mapped into the repo for a chart in the repo).
 */
function manifestDocs(
  manifests: string,
  sourceFile: (source: string | undefined) => string,
  bundle: string,
  errors: FleetError[],
): ManifestDoc[] {
  const out: ManifestDoc[] = [];
  for (const chunk of manifests.split(/^---[ \t]*$/m)) {
    if (chunk.trim() === '') continue;
    const file = sourceFile(SOURCE_COMMENT.exec(chunk)?.[1]?.trim());
    const parsed = parseYamlFile(file, chunk, bundle);
    errors.push(...parsed.errors);
    for (const doc of parsed.documents) {
      if (doc.node === null) continue;
      if (doc.node.kind !== 'map') {
        errors.push(fleetError(doc.pos, 'the render produced a document that is not an object', bundle));
        continue;
      }
      if (isSopsDocument(doc.node)) {
        errors.push(
          fleetError(
            { file, line: 1, column: 1 },
            'the render produced a SOPS-encrypted object, which the engine would change under its MAC: put SOPS files next to bundle.yaml, outside the chart and the kustomization, and they travel with the bundle as committed',
            bundle,
          ),
        );
        continue;
      }
      // Lines of rendered output are not lines of the file: point at the file.
      out.push({ file, pos: { file, line: 1, column: 1 }, node: doc.node });
    }
  }
  return out;
}

/** The `<source>:` a combined-tree path starts with, or '' for the platform's. */
function sourcePrefixOf(path: string): string {
  const source = sourceOfPath(path);
  return source === undefined ? '' : `${source}:`;
}

/** Scope of kinds: the CustomResourceDefinitions a render carries first, then the fleet's. */
function withCrdsOf(docs: readonly ManifestDoc[], base: IsClusterScoped): IsClusterScoped {
  const own = crdScopes(docs);
  if (own.size === 0) return base;
  return (group, kind) => own.get(groupKind(group, kind)) ?? base(group, kind);
}
