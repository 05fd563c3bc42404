import {
  type BundleSpec,
  type CustomizationEntry,
  type MatchEntry,
  mergeValues,
  readBundleSpec,
} from '../bundle-spec.ts';
import {
  type FleetError,
  FleetInputError,
  fleetError,
  normalizeFleetErrors,
  type SourcePos,
} from '../errors.ts';
import { CLUSTER_SCOPED_KINDS, groupKind } from '../kinds.ts';
import { effectiveLabels, type Labels, nameProblem } from '../labels.ts';
import { jsonMergePatch, PATCH_MODES, PatchError, strategicMerge } from '../patch.ts';
import { compileSelector, type LabelMatcher } from '../selector.ts';
import {
  type DeclaredClusterSpec,
  type GroupSpec,
  readDeclaredCluster,
  readGroup,
  SpecReader,
} from '../spec-reader.ts';
import { describeNode, getEntry, parseYamlFile, type YDocument, type YMap } from '../yaml-source.ts';
import { resolveDependencies } from './dependency-graph.ts';
import type {
  BundleInfo,
  BundleMatch,
  BundleState,
  ClusterInput,
  ClusterPlan,
  CompiledEntry,
  EntryRef,
  HeldBundle,
  ManifestDoc,
  PlannedBundle,
  RenderedObjectRef,
  RenderOutcome,
  RepoFile,
  RepoFiles,
  Variant,
} from './model.ts';
import {
  compileVariant,
  describeObject,
  describeRef,
  RenderCacheBudget,
  readObjectHeader,
  renderVariant,
} from './render.ts';

interface Candidate {
  readonly state: BundleState;
  readonly variant: Variant;
  readonly target: CompiledEntry;
  readonly custom: CompiledEntry | undefined;
  readonly outcome: Extract<RenderOutcome, { ok: true }>;
}

const YAML_FILE = /\.ya?ml$/;

function normalizePath(path: string): string {
  const p = path
    .replace(/\\/g, '/')
    .replace(/^(\.\/)+/, '')
    .replace(/^\/+/, '');
  if (p.split('/').some((s) => s === '..'))
    throw new FleetInputError(`repo file path "${path}" leaves the repo`);
  return p;
}

function collectFiles(files: RepoFiles): Map<string, string> {
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

/**
 * Loads a fleet repo: parses and validates every file once, compiles each bundle and
 * customization for fast per-cluster rendering. Never throws on bad repo content: problems
 * are in {@link Fleet.errors} and make the bundles they belong to broken.
 *
 * @throws {FleetInputError} only when the file list itself is inconsistent (a path given twice).
 * @example
 * const fleet = loadFleet([{ path: 'bundles/web/bundle.yaml', content: '...' }, ...]);
 * const plan = fleet.planCluster({ name: 'prod-eu-1', labels: { env: 'prod', region: 'eu' } });
 */
export function loadFleet(files: RepoFiles): Fleet {
  return new Fleet(collectFiles(files));
}

/**
 * A loaded fleet repo at one commit. Plan clusters with {@link Fleet.planCluster}; renders
 * are cached per bundle, customization and referenced cluster-variable values, so
 * clusters that render identically share one {@link RenderedBundle}.
 */
export class Fleet {
  /** Every problem found while loading, sorted by file and line. */
  readonly errors: readonly FleetError[];
  /** Bundles in apply order (dependencies first, then by name). */
  readonly bundles: readonly BundleInfo[];
  readonly groups: ReadonlyMap<string, GroupSpec>;
  /** Labels declared in git under `clusters/`; they override registered labels key by key. */
  readonly declaredClusters: ReadonlyMap<string, DeclaredClusterSpec>;

  readonly #bundles: BundleState[];
  readonly #clusterFileErrors: Map<string, FleetError[]>;
  readonly #budget = new RenderCacheBudget();
  #stamp = 0;

  constructor(files: ReadonlyMap<string, string>) {
    const repoErrors: FleetError[] = [];
    const groupFiles = new Map<string, string>();
    const clusterFiles = new Map<string, string>();
    const bundleDirs = new Map<
      string,
      { spec?: string; manifests: string[]; overlays: Map<string, string[]> }
    >();

    for (const path of files.keys()) {
      const parts = path.split('/');
      if (parts.some((p) => p.startsWith('.'))) continue;
      const yaml = YAML_FILE.test(path);
      const top = parts[0];
      if (top === 'groups' || top === 'clusters') {
        if (!yaml) continue;
        if (parts.length !== 2) {
          repoErrors.push(
            fleetError(line1(path), `${top} files go directly in ${top}/ (${top}/<name>.yaml)`),
          );
          continue;
        }
        const name = baseName(path);
        const target = top === 'groups' ? groupFiles : clusterFiles;
        const other = target.get(name);
        if (other !== undefined) {
          repoErrors.push(
            fleetError(
              line1(path),
              `${top === 'groups' ? 'group' : 'cluster'} "${name}" is also defined in ${other}`,
            ),
          );
          continue;
        }
        target.set(name, path);
      } else if (top === 'bundles') {
        if (parts.length === 2) {
          if (yaml) {
            repoErrors.push(
              fleetError(
                line1(path),
                'bundle files go in a directory per bundle: bundles/<name>/bundle.yaml',
              ),
            );
          }
          continue;
        }
        const name = parts[1] as string;
        let dir = bundleDirs.get(name);
        if (!dir) {
          dir = { manifests: [], overlays: new Map() };
          bundleDirs.set(name, dir);
        }
        const rest = parts.slice(2);
        if (rest.length === 1 && rest[0] === 'bundle.yaml') dir.spec = path;
        else if (rest.length === 1 && rest[0] === 'bundle.yml') {
          repoErrors.push(fleetError(line1(path), `rename ${path} to bundles/${name}/bundle.yaml`, name));
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
        } else if (yaml) dir.manifests.push(path);
      }
    }

    // Groups.
    const groups = new Map<string, GroupSpec>();
    const groupMatchers = new Map<string, LabelMatcher>();
    const brokenGroups = new Set<string>();
    for (const [name, path] of groupFiles) {
      const reader = new SpecReader(path);
      const problem = nameProblem(name);
      if (problem) reader.error(line1(path), `invalid group name: ${problem}`);
      const root = this.#singleDocument(path, files.get(path) ?? '', reader);
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
    this.groups = groups;

    // Clusters declared in git.
    const declared = new Map<string, DeclaredClusterSpec>();
    this.#clusterFileErrors = new Map();
    for (const [name, path] of clusterFiles) {
      const reader = new SpecReader(path);
      const problem = nameProblem(name);
      if (problem) reader.error(line1(path), `invalid cluster name: ${problem}`);
      const root = this.#singleDocument(path, files.get(path) ?? '', reader);
      if (root !== false && reader.errors.length === 0) {
        const spec = readDeclaredCluster(reader, name, root.node);
        if (spec) declared.set(name, spec);
      }
      if (reader.errors.length > 0) this.#clusterFileErrors.set(name, reader.errors);
      repoErrors.push(...reader.errors);
    }
    this.declaredClusters = declared;

    // Bundles: bundle.yaml, base manifests, overlays.
    const states: BundleState[] = [];
    for (const [name, dir] of [...bundleDirs].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const file = `bundles/${name}/bundle.yaml`;
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
        overlays: new Map(),
        dependsOn: [],
        heldStamp: 0,
        selectedStamp: 0,
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
      const problem = nameProblem(name);
      if (problem) reader.error(line1(file), `invalid bundle name (the directory name): ${problem}`);
      const root = this.#singleDocument(file, files.get(file) ?? '', reader);
      if (root !== false) {
        const result = readBundleSpec(reader, name, root.node, root.pos, {
          groupStatus: (g) => (groups.has(g) ? 'ok' : brokenGroups.has(g) ? 'broken' : 'missing'),
          groupFile: (g) => groupFiles.get(g) ?? `groups/${g}.yaml`,
          overlayExists: (o) => dir.overlays.has(o),
          overlayDir: (o) => `bundles/${name}/overlays/${o}/`,
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
      state.base = this.#readManifests(dir.manifests, files, name, state.errors, false);
      for (const [overlay, paths] of dir.overlays) {
        state.overlays.set(overlay, this.#readManifests(paths, files, name, state.errors, true));
      }
      if (dir.manifests.length === 0) {
        state.errors.push(
          fleetError(
            line1(file),
            `bundle "${name}" has no Kubernetes objects (add YAML files next to bundle.yaml)`,
            name,
          ),
        );
      }
      states.push(state);
    }

    const order = resolveDependencies(states);
    const isClusterScoped = this.#scopeTable(states);
    for (const state of states)
      if (state.spec && state.errors.length === 0) this.#compile(state, isClusterScoped);
    markContested(states);

    this.#bundles = order;
    this.bundles = this.#bundles.map((s) => ({
      name: s.name,
      file: s.file,
      ...(s.spec && s.errors.length === 0 ? { spec: s.spec } : {}),
      errors: normalizeFleetErrors(s.errors),
    }));
    this.errors = normalizeFleetErrors([...repoErrors, ...states.flatMap((s) => s.errors)]);
  }

  #singleDocument(file: string, content: string, reader: SpecReader): YDocument | false {
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

  #readManifests(
    paths: readonly string[],
    files: ReadonlyMap<string, string>,
    bundle: string,
    errors: FleetError[],
    patches: boolean,
  ): ManifestDoc[] {
    const out: ManifestDoc[] = [];
    for (const path of paths) {
      const parsed = parseYamlFile(path, files.get(path) ?? '', bundle);
      errors.push(...parsed.errors);
      for (const doc of parsed.documents) {
        if (doc.node === null) continue;
        if (doc.node.kind !== 'map') {
          errors.push(
            fleetError(
              doc.pos,
              `expected a Kubernetes ${patches ? 'patch' : 'object'} (a mapping), got a ${doc.node.kind === 'seq' ? 'list' : 'scalar'}`,
              bundle,
            ),
          );
          continue;
        }
        if (!patches) readObjectHeader(doc.node, errors, bundle);
        out.push({ file: path, pos: doc.pos, node: doc.node });
      }
    }
    return out;
  }

  #scopeTable(states: BundleState[]): (group: string, kind: string) => boolean {
    const fromCrds = new Map<string, boolean>();
    for (const s of states) {
      for (const doc of s.base) {
        const str = (m: YMap | undefined, key: string): string | undefined => {
          const v = m ? getEntry(m, key)?.value : undefined;
          return v?.kind === 'scalar' && typeof v.value === 'string' ? v.value : undefined;
        };
        if (str(doc.node, 'kind') !== 'CustomResourceDefinition') continue;
        const specNode = getEntry(doc.node, 'spec')?.value;
        const spec = specNode?.kind === 'map' ? specNode : undefined;
        const namesNode = spec ? getEntry(spec, 'names')?.value : undefined;
        const group = str(spec, 'group');
        const kind = str(namesNode?.kind === 'map' ? namesNode : undefined, 'kind');
        const scope = str(spec, 'scope');
        if (group && kind && scope) fromCrds.set(groupKind(group, kind), scope === 'Cluster');
      }
    }
    return (group, kind) => {
      const gk = groupKind(group, kind);
      return fromCrds.get(gk) ?? CLUSTER_SCOPED_KINDS.has(gk);
    };
  }

  #compile(state: BundleState, isClusterScoped: (group: string, kind: string) => boolean): void {
    const spec = state.spec as BundleSpec;
    const overlaid = new Map<string, ManifestDoc[] | undefined>();
    const variantFor = (
      docs: readonly ManifestDoc[],
      values: BundleSpec['values'],
      origin: string,
      ignoreDifferences: BundleSpec['ignoreDifferences'],
      healthChecks: BundleSpec['healthChecks'],
    ) => {
      const { variant, errors } = compileVariant({
        bundle: state.name,
        namespace: spec.namespace,
        docs,
        values,
        valuesOrigin: origin,
        ignoreDifferences,
        isClusterScoped,
        budget: this.#budget,
        healthChecks,
      });
      state.errors.push(...errors);
      return variant;
    };
    const variants: (Variant | undefined)[] = [
      variantFor(
        state.base,
        spec.values,
        `values of ${state.file}`,
        spec.ignoreDifferences,
        spec.healthChecks,
      ),
    ];
    for (const c of spec.customizations) {
      let docs: ManifestDoc[] | undefined = state.base;
      if (c.overlay !== undefined) {
        if (!overlaid.has(c.overlay)) {
          overlaid.set(c.overlay, applyOverlay(state, state.overlays.get(c.overlay) ?? [], spec.namespace));
        }
        docs = overlaid.get(c.overlay);
      }
      if (!docs) continue;
      // A customization's ignoreDifferences add to the bundle's: what the bundle leaves to others stays left.
      const ignore = [...spec.ignoreDifferences, ...(c.ignoreDifferences ?? [])];
      // A customization's checks come first: for its clusters, they win over the bundle's for the same objects.
      const checks = [...(c.healthChecks ?? []), ...spec.healthChecks];
      variants.push(
        variantFor(docs, mergeValues(spec.values, c.values), customizationOrigin(c), ignore, checks),
      );
    }
    if (state.errors.length === 0) state.variants = variants as Variant[];
  }

  /**
   * Which bundles a cluster gets and why: for every bundle whose targets match it (or
   * cannot be read), the first matching target entry, the exclude entry that removed it,
   * and the customization it gets (first match wins). This is what `flotilla targets` shows.
   */
  matchBundles(cluster: ClusterInput): BundleMatch[] {
    const labels = this.#labelsOf(cluster);
    const out: BundleMatch[] = [];
    for (const b of this.#bundles) {
      const m = matchOne(b, cluster.name, labels);
      if (m) out.push(m);
    }
    return out;
  }

  /**
   * Plans one cluster: targets, picks customizations, renders every targeted bundle and
   * applies the isolation rule. A bundle that is broken (for every cluster or just this
   * one: an undefined label variable, an object another bundle also defines, a dependency
   * that does not target the cluster) is held, and so is every bundle depending on it;
   * the rest of the cluster's bundles are planned normally.
   */
  planCluster(cluster: ClusterInput): ClusterPlan {
    const fileErrors = this.#clusterFileErrors.get(cluster.name);
    if (fileErrors) {
      return {
        cluster: cluster.name,
        labels: cluster.labels ?? {},
        status: 'held',
        bundles: [],
        held: [],
        errors: normalizeFleetErrors(fileErrors),
      };
    }
    const labels = this.#labelsOf(cluster);
    const name = cluster.name;
    // Stamps instead of per-call sets: this loop runs for every bundle of every cluster.
    const stamp = ++this.#stamp;
    const held: HeldBundle[] = [];
    const hold = (b: BundleState, h: HeldBundle) => {
      b.heldStamp = stamp;
      held.push(h);
    };
    const ok: Candidate[] = [];
    for (const b of this.#bundles) {
      if (!b.targets || !b.exclude) {
        hold(b, { bundle: b.name, reason: 'broken', targeting: 'unknown', errors: b.errors });
        continue;
      }
      const target = firstEntry(b.targets, name, labels);
      if (!target || (b.exclude.length > 0 && firstEntry(b.exclude, name, labels))) continue;
      if (b.errors.length > 0) {
        hold(b, { bundle: b.name, reason: 'broken', targeting: 'matched', errors: b.errors });
        continue;
      }
      const custom = firstEntry(b.customizations, name, labels);
      const variant = b.variants[custom ? custom.ref.index + 1 : 0] as Variant;
      const outcome = renderVariant(variant, name, labels);
      if (!outcome.ok) {
        hold(b, { bundle: b.name, reason: 'broken', targeting: 'matched', errors: outcome.errors });
        continue;
      }
      ok.push({ state: b, variant, target, custom, outcome });
    }

    // Objects defined by two bundles for this cluster: both bundles are held.
    if (ok.length > 1) {
      for (const [state, errors] of findDuplicates(ok)) {
        hold(state, { bundle: state.name, reason: 'broken', targeting: 'matched', errors });
      }
    }

    // Dependencies, in apply order so that holds cascade.
    const planned: PlannedBundle[] = [];
    for (const item of ok) {
      const b = item.state;
      if (b.heldStamp === stamp) continue;
      const spec = b.spec as BundleSpec;
      if (spec.dependsOn.length > 0) {
        const depErrors: FleetError[] = [];
        let reason: HeldBundle['reason'] = 'broken';
        spec.dependsOn.forEach((dep, i) => {
          const d = b.dependsOn[i] as BundleState;
          if (d.heldStamp === stamp) {
            reason = 'dependency-broken';
            depErrors.push(
              fleetError(
                dep.pos,
                `dependsOn[${dep.index}]: bundle "${dep.name}" has errors for cluster "${name}"`,
                b.name,
              ),
            );
          } else if (d.selectedStamp !== stamp) {
            depErrors.push(
              fleetError(
                dep.pos,
                `dependsOn[${dep.index}]: bundle "${dep.name}" does not target cluster "${name}"`,
                b.name,
              ),
            );
          }
        });
        if (depErrors.length > 0) {
          hold(b, { bundle: b.name, reason, targeting: 'matched', errors: depErrors });
          continue;
        }
      }
      b.selectedStamp = stamp;
      planned.push(plannedFor(spec, item));
    }
    if (held.length === 0) return { cluster: name, labels, status: 'ok', bundles: planned, held, errors: [] };
    held.sort((a, b) => (a.bundle < b.bundle ? -1 : 1));
    return {
      cluster: name,
      labels,
      status: 'partial',
      bundles: planned,
      held,
      errors: normalizeFleetErrors(held.flatMap((h) => h.errors)),
    };
  }

  #labelsOf(cluster: ClusterInput): Labels {
    const declared = this.declaredClusters.get(cluster.name);
    return declared ? effectiveLabels(cluster.labels, declared.labels) : (cluster.labels ?? {});
  }
}

// One reference and one planned entry per render (and target entry), shared by every cluster that gets that
// render: plans stay small, and desired-state serialization can cache per reference.
function plannedFor(spec: BundleSpec, item: Candidate): PlannedBundle {
  const outcome = item.outcome;
  outcome.ref ??= {
    name: spec.name,
    hash: outcome.rendered.hash,
    namespace: spec.namespace,
    dependsOn: spec.dependsOn.map((d) => d.name).sort(),
    driftPolicy: spec.driftPolicy,
    paused: spec.paused,
  };
  outcome.planned ??= [];
  const byTarget = outcome.planned as PlannedBundle[];
  const index = item.target.ref.index;
  let planned = byTarget[index];
  if (!planned) {
    planned = item.custom
      ? {
          ref: outcome.ref,
          target: item.target.ref,
          customization: item.custom.ref,
          rendered: outcome.rendered,
        }
      : { ref: outcome.ref, target: item.target.ref, rendered: outcome.rendered };
    byTarget[index] = planned;
  }
  return planned;
}

function customizationOrigin(c: CustomizationEntry): string {
  return `values of bundle.yaml and customizations[${c.index}]${c.name === undefined ? '' : ` "${c.name}"`}`;
}

function compileEntry(entry: MatchEntry, groups: ReadonlyMap<string, LabelMatcher>): CompiledEntry {
  const ref: EntryRef =
    entry.name === undefined
      ? { index: entry.index, kind: entry.rule.kind }
      : { index: entry.index, name: entry.name, kind: entry.rule.kind };
  const rule = entry.rule;
  if (rule.kind === 'clusterName') {
    const want = rule.clusterName;
    return { ref, test: (cluster) => cluster === want };
  }
  const matcher = rule.kind === 'clusterSelector' ? compileSelector(rule.selector) : groups.get(rule.group);
  if (!matcher) return { ref, test: () => false };
  return { ref, test: (_cluster, labels) => matcher(labels) };
}

function firstEntry(
  entries: readonly CompiledEntry[],
  cluster: string,
  labels: Labels,
): CompiledEntry | undefined {
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as CompiledEntry;
    if (e.test(cluster, labels)) return e;
  }
  return undefined;
}

function matchOne(b: BundleState, cluster: string, labels: Labels): BundleMatch | undefined {
  if (!b.targets || !b.exclude) return { bundle: b.name, status: 'unknown' };
  const target = firstEntry(b.targets, cluster, labels)?.ref;
  if (!target) return undefined;
  const excludedBy = firstEntry(b.exclude, cluster, labels)?.ref;
  if (excludedBy) return { bundle: b.name, status: 'excluded', target, excludedBy };
  const customization = firstEntry(b.customizations, cluster, labels)?.ref;
  return customization
    ? { bundle: b.name, status: 'targeted', target, customization }
    : { bundle: b.name, status: 'targeted', target };
}

function applyOverlay(
  state: BundleState,
  patches: readonly ManifestDoc[],
  namespace: string,
): ManifestDoc[] | undefined {
  const docs = [...state.base];
  const before = state.errors.length;
  const err = (pos: SourcePos, message: string) => state.errors.push(fleetError(pos, message, state.name));
  for (const patch of patches) {
    const modeEntry = getEntry(patch.node, '$patch');
    let mode = 'merge';
    if (modeEntry) {
      const v = modeEntry.value;
      if (v.kind !== 'scalar' || typeof v.value !== 'string' || !PATCH_MODES.includes(v.value)) {
        const got = v.kind === 'scalar' ? `"${String(v.value)}"` : describeNode(v);
        err(v.pos, `$patch: unknown value ${got} (expected ${PATCH_MODES.join(', ')})`);
        continue;
      }
      mode = v.value;
    }
    const body: YMap = { ...patch.node, entries: patch.node.entries.filter((e) => e.key !== '$patch') };
    const headerErrors: FleetError[] = [];
    const header = readObjectHeader(body, headerErrors, state.name);
    if (!header) {
      state.errors.push(...headerErrors.map((e) => ({ ...e, message: `patch ${e.message}` })));
      continue;
    }
    const matches: number[] = [];
    docs.forEach((doc, i) => {
      const h = readObjectHeader(doc.node, [], state.name);
      if (!h || h.group !== header.group || h.kind !== header.kind || h.name !== header.name) return;
      if (header.namespace !== undefined && (h.namespace ?? namespace) !== header.namespace) return;
      matches.push(i);
    });
    const what = describeObject(header.group, header.kind, header.namespace, header.name);
    if (matches.length === 0) {
      err(patch.pos, `patch target ${what} not found in bundle "${state.name}"`);
      continue;
    }
    if (matches.length > 1) {
      err(
        patch.pos,
        `patch target ${what} is ambiguous (several namespaces); set metadata.namespace in the patch`,
      );
      continue;
    }
    const at = matches[0] as number;
    const target = docs[at] as ManifestDoc;
    try {
      if (mode === 'delete') {
        docs.splice(at, 1);
        continue;
      }
      const merged =
        mode === 'replace'
          ? body
          : mode === 'json-merge'
            ? jsonMergePatch(target.node, body)
            : strategicMerge(target.node, body);
      if (merged === undefined || merged.kind !== 'map') {
        err(patch.pos, `patch removes ${what} entirely; use "$patch: delete" for that`);
        continue;
      }
      docs[at] = { file: target.file, pos: target.pos, node: merged };
    } catch (e) {
      if (e instanceof PatchError) err(e.pos, e.message);
      else throw e;
    }
  }
  return state.errors.length === before ? docs : undefined;
}

function findDuplicates(ok: readonly Candidate[]): Map<BundleState, FleetError[]> {
  const out = new Map<BundleState, FleetError[]>();
  let full = false;
  let contested = 0;
  for (const o of ok) {
    if (o.variant.dynamicIds) full = true;
    if (o.variant.contested) contested++;
  }
  if (!full && contested < 2) return out;
  const seen = new Map<string, { state: BundleState; ref: RenderedObjectRef }>();
  const add = (state: BundleState, error: FleetError) => {
    const list = out.get(state) ?? [];
    list.push(error);
    out.set(state, list);
  };
  for (const item of ok) {
    if (!full && !item.variant.contested) continue;
    for (const ref of item.outcome.rendered.objects) {
      const first = seen.get(ref.id);
      if (!first) {
        seen.set(ref.id, { state: item.state, ref });
        continue;
      }
      if (first.state === item.state) continue;
      const what = describeRef(ref);
      add(
        first.state,
        fleetError(
          { file: first.ref.file, line: first.ref.line, column: 1 },
          `duplicate object ${what}: also defined by bundle "${item.state.name}" at ${ref.file}:${ref.line}`,
          first.state.name,
        ),
      );
      add(
        item.state,
        fleetError(
          { file: ref.file, line: ref.line, column: 1 },
          `duplicate object ${what}: also defined by bundle "${first.state.name}" at ${first.ref.file}:${first.ref.line}`,
          item.state.name,
        ),
      );
    }
  }
  return out;
}

/** Marks variants whose static objects another bundle also defines, so only those are checked per cluster. */
function markContested(states: readonly BundleState[]): void {
  const owners = new Map<string, Set<string>>();
  for (const s of states) {
    for (const v of s.variants) {
      for (const id of v.staticIds) {
        let set = owners.get(id);
        if (!set) {
          set = new Set();
          owners.set(id, set);
        }
        set.add(s.name);
      }
    }
  }
  for (const s of states) {
    for (const v of s.variants) {
      v.contested = v.dynamicIds || v.staticIds.some((id) => (owners.get(id)?.size ?? 0) > 1);
    }
  }
}

/** The result of planning a whole fleet: every cluster's plan, and all errors (load and render) sorted. */
export interface FleetPlan {
  readonly fleet: Fleet;
  /** Sorted by cluster name. */
  readonly clusters: readonly ClusterPlan[];
  readonly errors: readonly FleetError[];
}

/**
 * Loads a repo (or takes an already loaded {@link Fleet}) and plans every given cluster.
 * For large fleets prefer `loadFleet` once and `fleet.planCluster` per cluster, streaming
 * results out, so that renders of unique bundles need not all be held at once.
 *
 * @example
 * const { clusters, errors } = planFleet(files, [{ name: 'prod-eu-1', labels: { env: 'prod' } }]);
 */
export function planFleet(files: RepoFiles | Fleet, clusters: Iterable<ClusterInput>): FleetPlan {
  const fleet = files instanceof Fleet ? files : loadFleet(files);
  const seen = new Set<string>();
  const list = [...clusters].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const plans: ClusterPlan[] = [];
  const errors: FleetError[] = [...fleet.errors];
  for (const c of list) {
    if (seen.has(c.name)) throw new FleetInputError(`cluster "${c.name}" is given twice`);
    seen.add(c.name);
    const plan = fleet.planCluster(c);
    plans.push(plan);
    errors.push(...plan.errors);
  }
  return { fleet, clusters: plans, errors: normalizeFleetErrors(errors) };
}
