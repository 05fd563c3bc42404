import type { SourcePos } from './errors.ts';
import { healthCheckProblems } from './health-checks.ts';
import { DriftPolicy, HEALTH_CHECK_FIELDS, type HealthCheck } from './protocol/desired-state.ts';
import {
  IGNORE_DIFFERENCE_FIELDS,
  type IgnoreDifference,
  parseFieldPath,
  parseJsonPointer,
} from './protocol/ignore-differences.ts';
import { type RolloutContext, type RolloutSpec, readBundleRollout } from './rollout-spec.ts';
import type { LabelSelector } from './selector.ts';
import {
  type HelmCustomization,
  type HelmSpec,
  type KustomizeCustomization,
  type KustomizeSpec,
  readHelmCustomization,
  readHelmSpec,
  readKustomizeCustomization,
  readKustomizeSpec,
} from './source-spec.ts';
import type { SpecReader } from './spec-reader.ts';
import type { YNode } from './yaml-source.ts';

/** How a bundle's objects are kept in line with git on the cluster. */
export { DriftPolicy };

const DRIFT_POLICIES: readonly string[] = Object.values(DriftPolicy);

/** The three ways an entry of `targets`, `exclude` or `customizations` picks clusters. */
export const MatchKind = {
  clusterSelector: 'clusterSelector',
  clusterGroup: 'clusterGroup',
  clusterName: 'clusterName',
} as const;
export type MatchKind = (typeof MatchKind)[keyof typeof MatchKind];
const MATCH_KINDS: readonly MatchKind[] = Object.values(MatchKind);

export type MatchRule =
  | { readonly kind: 'clusterSelector'; readonly selector: LabelSelector }
  | { readonly kind: 'clusterGroup'; readonly group: string }
  | { readonly kind: 'clusterName'; readonly clusterName: string };

/** One entry of `targets` or `exclude`. */
export interface MatchEntry {
  readonly index: number;
  readonly name?: string;
  readonly pos: SourcePos;
  readonly rule: MatchRule;
}

/** A leaf of `values`: only scalars can be substituted into manifests. */
export type ValueLeaf = string | number | boolean;
/** The `values` mapping; nested mappings are addressed with dots: `${values.image.tag}`. */
export interface ValuesTree {
  readonly [key: string]: ValueLeaf | ValuesTree;
}

/** One entry of `customizations`: a matcher, plus an overlay and/or values. */
export interface CustomizationEntry extends MatchEntry {
  readonly overlay?: string;
  readonly overlayPos?: SourcePos;
  readonly values?: ValuesTree;
  /** Added to the bundle's own `ignoreDifferences` for the clusters this entry matches. */
  readonly ignoreDifferences?: readonly IgnoreDifference[];
  /** Checked before the bundle's own `healthChecks` for the clusters this entry matches. */
  readonly healthChecks?: readonly HealthCheck[];
  /** Helm values, values files and version for these clusters (a Helm bundle only). */
  readonly helm?: HelmCustomization;
  /** The kustomization directory for these clusters (a Kustomize bundle only). */
  readonly kustomize?: KustomizeCustomization;
}

export interface DependsOnEntry {
  readonly name: string;
  readonly index: number;
  readonly pos: SourcePos;
}

/** A validated `bundles/<name>/bundle.yaml`. */
export interface BundleSpec {
  readonly name: string;
  readonly file: string;
  readonly description?: string;
  readonly namespace: string;
  readonly targets: readonly MatchEntry[];
  readonly exclude: readonly MatchEntry[];
  readonly customizations: readonly CustomizationEntry[];
  readonly values: ValuesTree;
  /** Fields left to other managers on every cluster (customizations may add more). */
  readonly ignoreDifferences: readonly IgnoreDifference[];
  readonly dependsOn: readonly DependsOnEntry[];
  readonly dependsOnPos: SourcePos;
  readonly driftPolicy: DriftPolicy;
  readonly paused: boolean;
  /** Custom health checks in CEL, every expression compiled; first match wins. */
  readonly healthChecks: readonly HealthCheck[];
  /** Objects rendered from a Helm chart (then through `kustomize` too, when both are set). */
  readonly helm?: HelmSpec;
  /** Objects built by `kustomize build` of a directory. */
  readonly kustomize?: KustomizeSpec;
  /** How a new revision reaches the bundle's clusters: in waves (absent: everywhere at once). */
  readonly rollout?: RolloutSpec;
}

/** What the bundle reader needs to know about the rest of the repo. */
export interface BundleContext extends RolloutContext {
  overlayExists(overlay: string): boolean;
  overlayDir(overlay: string): string;
}

export interface ReadBundleResult {
  /** Undefined when the file has errors. */
  readonly spec: BundleSpec | undefined;
  /** Whether `targets` and `exclude` could be read, so that the bundle's clusters are known even if it is broken. */
  readonly targeting:
    | { readonly targets: readonly MatchEntry[]; readonly exclude: readonly MatchEntry[] }
    | undefined;
}

export const BUNDLE_FIELDS = [
  'description',
  'namespace',
  'targets',
  'exclude',
  'customizations',
  'values',
  'ignoreDifferences',
  'dependsOn',
  'driftPolicy',
  'paused',
  'healthChecks',
  'helm',
  'kustomize',
  'rollout',
] as const;

const ENTRY_FIELDS = ['name', ...MATCH_KINDS];
const CUSTOMIZATION_FIELDS = [
  'name',
  ...MATCH_KINDS,
  'overlay',
  'values',
  'ignoreDifferences',
  'healthChecks',
  'helm',
  'kustomize',
];
// As in bundle.yaml, in the order a reader expects them (the wire form sorts them).
// `expression` is another name for `current` (true: ready), for checks written with one expression.
const CHECK_FIELDS = [
  'apiVersion',
  'kind',
  'name',
  'inProgress',
  'failed',
  'current',
  'expression',
  'message',
] as const;

/** Reads and validates bundle.yaml (all but `dependsOn` targets, which need every bundle). */
export function readBundleSpec(
  reader: SpecReader,
  name: string,
  root: YNode | null,
  rootPos: SourcePos,
  ctx: BundleContext,
): ReadBundleResult {
  if (root === null) {
    reader.error(rootPos, 'targets: required (bundle.yaml is empty)');
    return { spec: undefined, targeting: undefined };
  }
  const map = reader.expectMap(root, '');
  if (!map) return { spec: undefined, targeting: undefined };
  const f = reader.fields(map, '', BUNDLE_FIELDS);

  const targetingBefore = reader.errors.length;
  let targets: MatchEntry[] = [];
  const targetsNode = f.get('targets');
  if (!targetsNode) reader.error(map.pos, 'targets: required (use [] to deploy the bundle nowhere)');
  else targets = readEntries(reader, targetsNode, 'targets', ENTRY_FIELDS, ctx);
  const excludeNode = f.get('exclude');
  const exclude = excludeNode ? readEntries(reader, excludeNode, 'exclude', ENTRY_FIELDS, ctx) : [];
  const targetingOk = reader.errors.length === targetingBefore;

  let description: string | undefined;
  const descNode = f.get('description');
  if (descNode) description = reader.expectString(descNode, 'description');

  let namespace = 'default';
  const nsNode = f.get('namespace');
  if (nsNode) namespace = reader.expectName(nsNode, 'namespace', 'namespace') ?? namespace;

  const bundleDir = reader.file.slice(0, reader.file.lastIndexOf('/'));
  const helmNode = f.get('helm');
  const helm = helmNode ? readHelmSpec(reader, helmNode, name, bundleDir) : undefined;
  const kustomizeNode = f.get('kustomize');
  const kustomize = kustomizeNode ? readKustomizeSpec(reader, kustomizeNode, bundleDir) : undefined;
  const source = { helm: helmNode !== undefined, kustomize: kustomizeNode !== undefined, bundleDir };

  let customizations: CustomizationEntry[] = [];
  const custNode = f.get('customizations');
  if (custNode) {
    customizations = readEntries(reader, custNode, 'customizations', CUSTOMIZATION_FIELDS, ctx).map((entry) =>
      readCustomization(reader, entry, ctx, source),
    );
  }

  let values: ValuesTree = {};
  const valuesNode = f.get('values');
  if (valuesNode) values = readValues(reader, valuesNode, 'values') ?? {};

  const ignoreNode = f.get('ignoreDifferences');
  const ignoreDifferences = ignoreNode ? readIgnoreDifferences(reader, ignoreNode, 'ignoreDifferences') : [];

  const dependsOn: DependsOnEntry[] = [];
  const depNode = f.get('dependsOn');
  if (depNode) {
    const items = reader.expectList(depNode, 'dependsOn');
    items?.forEach((item, index) => {
      const dep = reader.expectBundleName(item, `dependsOn[${index}]`);
      if (dep === undefined) return;
      if (dependsOn.some((d) => d.name === dep)) {
        reader.error(item.pos, `dependsOn[${index}]: "${dep}" is listed twice`);
      } else if (dep === name)
        reader.error(item.pos, `dependsOn[${index}]: a bundle cannot depend on itself`);
      else dependsOn.push({ name: dep, index, pos: item.pos });
    });
  }

  let driftPolicy: DriftPolicy = 'correct';
  const driftNode = f.get('driftPolicy');
  if (driftNode) {
    const v = reader.expectString(driftNode, 'driftPolicy', false);
    if (v !== undefined) {
      if (DRIFT_POLICIES.includes(v)) driftPolicy = v as DriftPolicy;
      else
        reader.error(
          driftNode.pos,
          `driftPolicy: unknown value "${v}" (expected ${DRIFT_POLICIES.join(', ')})`,
        );
    }
  }

  let paused = false;
  const pausedNode = f.get('paused');
  if (pausedNode) paused = reader.expectBoolean(pausedNode, 'paused') ?? false;

  const checksNode = f.get('healthChecks');
  const healthChecks = checksNode ? readHealthChecks(reader, checksNode, 'healthChecks') : [];

  const rolloutNode = f.get('rollout');
  const rollout = rolloutNode ? readBundleRollout(reader, rolloutNode, ctx) : undefined;

  const targeting = targetingOk ? { targets, exclude } : undefined;
  if (reader.errors.length > 0) return { spec: undefined, targeting };
  const spec: BundleSpec = {
    name,
    file: reader.file,
    ...(description === undefined ? {} : { description }),
    namespace,
    targets,
    exclude,
    customizations,
    values,
    ignoreDifferences,
    dependsOn,
    dependsOnPos: depNode?.pos ?? map.pos,
    driftPolicy,
    paused,
    healthChecks,
    ...(helm === undefined ? {} : { helm }),
    ...(kustomize === undefined ? {} : { kustomize }),
    ...(rollout === undefined ? {} : { rollout }),
  };
  return { spec, targeting };
}

interface RawEntry extends MatchEntry {
  readonly fields: Map<string, YNode>;
}

function readEntries(
  reader: SpecReader,
  node: YNode,
  path: string,
  allowed: readonly string[],
  ctx: BundleContext,
): RawEntry[] {
  const items = reader.expectList(node, path);
  if (!items) return [];
  const out: RawEntry[] = [];
  items.forEach((item, index) => {
    const p = `${path}[${index}]`;
    const map = reader.expectMap(item, p);
    if (!map) return;
    const before = reader.errors.length;
    const f = reader.fields(map, p, allowed);
    const nameNode = f.get('name');
    const name = nameNode ? reader.expectString(nameNode, `${p}.name`) : undefined;
    const present = map.entries.filter((e) => (MATCH_KINDS as readonly string[]).includes(e.key));
    if (present.length === 0) {
      reader.error(map.pos, `${p}: one of clusterSelector, clusterGroup or clusterName is required`);
      return;
    }
    if (present.length > 1) {
      reader.error(
        (present[1] as (typeof present)[0]).keyPos,
        `${p}: ${present.map((e) => e.key).join(' and ')} cannot be combined (an entry uses exactly one of clusterSelector, clusterGroup, clusterName)`,
      );
      return;
    }
    const kind = (present[0] as (typeof present)[0]).key as MatchKind;
    const valueNode = f.get(kind) as YNode;
    let rule: MatchRule | undefined;
    if (kind === 'clusterSelector') {
      const selector = reader.selector(valueNode, `${p}.clusterSelector`);
      if (selector) rule = { kind, selector };
    } else if (kind === 'clusterGroup') {
      const group = reader.expectName(valueNode, `${p}.clusterGroup`, 'group');
      if (group !== undefined) {
        const status = ctx.groupStatus(group);
        if (status === 'missing') {
          reader.error(
            valueNode.pos,
            `${p}.clusterGroup: unknown group "${group}" (no ${ctx.groupFile(group)})`,
          );
        } else if (status === 'broken') {
          reader.error(
            valueNode.pos,
            `${p}.clusterGroup: group "${group}" has errors (see ${ctx.groupFile(group)})`,
          );
        } else rule = { kind, group };
      }
    } else {
      const clusterName = reader.expectName(valueNode, `${p}.clusterName`, 'cluster');
      if (clusterName !== undefined) rule = { kind, clusterName };
    }
    if (!rule || reader.errors.length !== before) return;
    out.push({ index, ...(name === undefined ? {} : { name }), pos: map.pos, rule, fields: f });
  });
  return out;
}

/** Which sources the bundle uses, for what its customizations may set. */
interface SourceKinds {
  readonly helm: boolean;
  readonly kustomize: boolean;
  readonly bundleDir: string;
}

function readCustomization(
  reader: SpecReader,
  entry: RawEntry,
  ctx: BundleContext,
  source: SourceKinds,
): CustomizationEntry {
  const p = `customizations[${entry.index}]`;
  const { fields, ...base } = entry;
  const overlayNode = fields.get('overlay');
  const helmNode = fields.get('helm');
  const kustomizeNode = fields.get('kustomize');
  let helm: HelmCustomization | undefined;
  if (helmNode) {
    if (!source.helm) reader.error(helmNode.pos, `${p}.helm: the bundle has no helm section to customize`);
    else helm = readHelmCustomization(reader, helmNode, `${p}.helm`, source.bundleDir);
  }
  let kustomize: KustomizeCustomization | undefined;
  if (kustomizeNode) {
    if (!source.kustomize)
      reader.error(kustomizeNode.pos, `${p}.kustomize: the bundle has no kustomize section to customize`);
    else kustomize = readKustomizeCustomization(reader, kustomizeNode, `${p}.kustomize`, source.bundleDir);
  }
  if (overlayNode && (source.helm || source.kustomize)) {
    reader.error(
      overlayNode.pos,
      `${p}.overlay: overlays patch plain YAML bundles; for this ${source.helm ? 'Helm' : 'Kustomize'} bundle use ${source.helm ? 'helm.values' : 'kustomize.dir (a kustomization with patches)'}`,
    );
  }
  const valuesNode = fields.get('values');
  const checksNode = fields.get('healthChecks');
  let overlay: string | undefined;
  if (overlayNode && !source.helm && !source.kustomize) {
    const v = reader.expectString(overlayNode, `${p}.overlay`);
    if (v !== undefined) {
      if (v === '' || v.includes('/') || v === '.' || v === '..') {
        reader.error(overlayNode.pos, `${p}.overlay: "${v}" must be the name of a directory in overlays/`);
      } else if (!ctx.overlayExists(v)) {
        reader.error(
          overlayNode.pos,
          `${p}.overlay: no overlay "${v}" (${ctx.overlayDir(v)} has no YAML files)`,
        );
      } else overlay = v;
    }
  }
  const values = valuesNode ? readValues(reader, valuesNode, `${p}.values`) : undefined;
  const ignoreNode = fields.get('ignoreDifferences');
  const ignoreDifferences = ignoreNode
    ? readIgnoreDifferences(reader, ignoreNode, `${p}.ignoreDifferences`)
    : undefined;
  const healthChecks = checksNode ? readHealthChecks(reader, checksNode, `${p}.healthChecks`) : undefined;
  if (!overlayNode && !valuesNode && !ignoreNode && !checksNode && !helmNode && !kustomizeNode)
    reader.error(
      entry.pos,
      `${p}: nothing to customize (set overlay, values, helm, kustomize, ignoreDifferences, healthChecks or several)`,
    );
  return {
    ...base,
    ...(helm === undefined ? {} : { helm }),
    ...(kustomize === undefined ? {} : { kustomize }),
    ...(overlay === undefined ? {} : { overlay, overlayPos: overlayNode?.pos as SourcePos }),
    ...(values === undefined ? {} : { values }),
    ...(ignoreDifferences === undefined ? {} : { ignoreDifferences }),
    ...(healthChecks === undefined || healthChecks.length === 0 ? {} : { healthChecks }),
  };
}

/** Reads an `ignoreDifferences` list: which objects (group, kind, name, namespace) and which of their fields. */
function readIgnoreDifferences(reader: SpecReader, node: YNode, path: string): IgnoreDifference[] {
  const items = reader.expectList(node, path);
  if (!items) return [];
  const out: IgnoreDifference[] = [];
  items.forEach((item, index) => {
    const p = `${path}[${index}]`;
    const map = reader.expectMap(item, p);
    if (!map) return;
    const before = reader.errors.length;
    const f = reader.fields(map, p, IGNORE_DIFFERENCE_FIELDS);
    const text = (key: string): string | undefined => {
      const n = f.get(key);
      return n ? reader.expectString(n, `${p}.${key}`) : undefined;
    };
    const group = text('group');
    if (!f.has('group'))
      reader.error(map.pos, `${p}.group: required ("" for the core group of Pod, Service, ConfigMap, ...)`);
    else if (group?.includes('/'))
      reader.error(
        (f.get('group') as YNode).pos,
        `${p}.group: "${group}" has a version; write the group alone ("${group.split('/')[0]}")`,
      );
    const kind = text('kind');
    if (!f.has('kind')) reader.error(map.pos, `${p}.kind: required`);
    else if (kind === '') reader.error((f.get('kind') as YNode).pos, `${p}.kind: must not be empty`);
    const name = text('name');
    const namespace = text('namespace');
    const paths = (
      key: 'jsonPointers' | 'fieldPaths',
      parse: typeof parseJsonPointer,
    ): string[] | undefined => {
      const n = f.get(key);
      if (!n) return undefined;
      const list = reader.expectList(n, `${p}.${key}`);
      if (!list) return undefined;
      const got: string[] = [];
      list.forEach((el, j) => {
        const v = reader.expectString(el, `${p}.${key}[${j}]`);
        if (v === undefined) return;
        const parsed = parse(v);
        if (!parsed.ok) reader.error(el.pos, `${p}.${key}[${j}]: ${parsed.problem}`);
        else got.push(v);
      });
      return got;
    };
    const jsonPointers = paths('jsonPointers', parseJsonPointer);
    const fieldPaths = paths('fieldPaths', parseFieldPath);
    if (!f.has('jsonPointers') && !f.has('fieldPaths'))
      reader.error(map.pos, `${p}: nothing to ignore (set jsonPointers, fieldPaths or both)`);
    else if ((jsonPointers?.length ?? 0) + (fieldPaths?.length ?? 0) === 0 && reader.errors.length === before)
      reader.error(map.pos, `${p}: jsonPointers and fieldPaths are empty`);
    if (reader.errors.length !== before || group === undefined || kind === undefined) return;
    out.push({
      group,
      kind,
      ...(name === undefined ? {} : { name }),
      ...(namespace === undefined ? {} : { namespace }),
      ...(jsonPointers?.length ? { jsonPointers } : {}),
      ...(fieldPaths?.length ? { fieldPaths } : {}),
    });
  });
  return out;
}

/** Reads `healthChecks`: each entry's fields, and every CEL expression compiled. */
function readHealthChecks(reader: SpecReader, node: YNode, path: string): HealthCheck[] {
  const items = reader.expectList(node, path);
  if (!items) return [];
  const out: HealthCheck[] = [];
  items.forEach((item, index) => {
    const p = `${path}[${index}]`;
    const map = reader.expectMap(item, p);
    if (!map) return;
    const before = reader.errors.length;
    const f = reader.fields(map, p, CHECK_FIELDS);
    const check: Record<string, string> = {};
    for (const key of CHECK_FIELDS) {
      const v = f.get(key);
      if (!v) continue;
      const text = reader.expectString(v, `${p}.${key}`);
      if (text === undefined) continue;
      if (text.trim() === '') reader.error(v.pos, `${p}.${key}: must not be empty`);
      else check[key] = text;
    }
    if (!f.has('kind')) reader.error(map.pos, `${p}.kind: required (the kind of object the check is for)`);
    // Where each wire field was written: `current` may have been written `expression`.
    const written = (field: string) => (field === 'current' && !f.has('current') ? 'expression' : field);
    if (f.has('current') && f.has('expression'))
      reader.error(
        (f.get('expression') as YNode).pos,
        `${p}.expression: another name for current; set one of them, not both`,
      );
    else if (check.expression !== undefined) {
      check.current = check.expression;
      delete check.expression;
    }
    if (!f.has('current') && !f.has('expression'))
      reader.error(
        map.pos,
        `${p}.current: required (a CEL bool: true when ready; or write it as expression)`,
      );
    if (check.apiVersion !== undefined && !/^([a-z0-9.-]+\/)?v[0-9]+[a-z0-9]*$/.test(check.apiVersion)) {
      reader.error(
        (f.get('apiVersion') as YNode).pos,
        `${p}.apiVersion: "${check.apiVersion}" is not an apiVersion (group/version, or v1)`,
      );
    }
    for (const { field, message } of healthCheckProblems(check)) {
      reader.error((f.get(written(field)) as YNode).pos, `${p}.${written(field)}: ${message}`);
    }
    if (reader.errors.length !== before) return;
    // Sorted keys, the canonical order: the rendered bundle is hashed.
    const sorted: Record<string, string> = {};
    for (const key of HEALTH_CHECK_FIELDS) if (check[key] !== undefined) sorted[key] = check[key];
    out.push(sorted as unknown as HealthCheck);
  });
  return out;
}

function readValues(reader: SpecReader, node: YNode, path: string): ValuesTree | undefined {
  const map = reader.expectMap(node, path);
  if (!map) return undefined;
  const out: Record<string, ValueLeaf | ValuesTree> = {};
  for (const entry of map.entries) {
    const p = `${path}.${entry.key}`;
    if (entry.key === '' || entry.key.includes('.')) {
      reader.error(
        entry.keyPos,
        `${path}: key "${entry.key}" must be non-empty and without "." (nest mappings instead)`,
      );
      continue;
    }
    const v = entry.value;
    let leaf: ValueLeaf | ValuesTree | undefined;
    if (v.kind === 'map') leaf = readValues(reader, v, p);
    else if (v.kind === 'seq')
      reader.error(
        v.pos,
        `${p}: lists are not supported in values (only strings, numbers, booleans and mappings)`,
      );
    else if (v.value === null) reader.error(v.pos, `${p}: null is not a value (quote it or remove the key)`);
    else leaf = v.value;
    if (leaf !== undefined)
      Object.defineProperty(out, entry.key, {
        value: leaf,
        enumerable: true,
        writable: true,
        configurable: true,
      });
  }
  return out;
}

/** Merges customization values over defaults, key by key through nested mappings. */
export function mergeValues(defaults: ValuesTree, overrides: ValuesTree | undefined): ValuesTree {
  if (!overrides) return defaults;
  const out: Record<string, ValueLeaf | ValuesTree> = { ...defaults };
  for (const key of Object.keys(overrides)) {
    const o = overrides[key] as ValueLeaf | ValuesTree;
    const d = Object.hasOwn(defaults, key) ? defaults[key] : undefined;
    const merged = isTree(o) && d !== undefined && isTree(d) ? mergeValues(d, o) : o;
    Object.defineProperty(out, key, { value: merged, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

export function isTree(v: ValueLeaf | ValuesTree): v is ValuesTree {
  return typeof v === 'object';
}
