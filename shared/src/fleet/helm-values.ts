/**
 * Helm values as a bundle gives them: values files, then `helm.values`, then a
 * customization's, merged the way `helm template -f a.yaml -f b.yaml` merges (mappings key
 * by key, everything else replaced), with Flotilla's variables in strings.
 * `${values.*}` resolves once per variant; `${cluster.name}` and `${cluster.labels.*}` stay
 * holes, filled per cluster, so that clusters with equal variables share one render.
 */
import { isTree, type ValueLeaf, type ValuesTree } from '../bundle-spec.ts';
import { type FleetError, fleetError, type SourcePos } from '../errors.ts';
import { hasTemplateSyntax, parseTemplate, type VariableRef } from '../variables.ts';
import type { YNode } from '../yaml-source.ts';
import type { ClusterVariable, CompiledHelmValues } from './model.ts';

/** A string of a values tree, with where it was written. */
class PosString {
  readonly value: string;
  readonly pos: SourcePos;
  constructor(value: string, pos: SourcePos) {
    this.value = value;
    this.pos = pos;
  }
}

/** A values tree whose strings keep their position: mappings are `Map`s. */
export type HelmValue = null | boolean | number | PosString | HelmValue[] | HelmMap;
export type HelmMap = Map<string, HelmValue>;

/** A positioned YAML node as a values tree. */
export function helmValueOf(node: YNode): HelmValue {
  if (node.kind === 'scalar')
    return typeof node.value === 'string' ? new PosString(node.value, node.pos) : node.value;
  if (node.kind === 'seq') return node.items.map(helmValueOf);
  const map: HelmMap = new Map();
  for (const e of node.entries) map.set(e.key, helmValueOf(e.value));
  return map;
}

/** `over` merged into `base` as Helm merges values files: mappings key by key, anything else replaced. */
export function mergeHelmValues(base: HelmMap, over: HelmMap): HelmMap {
  const out: HelmMap = new Map(base);
  for (const [k, v] of over) {
    const b = out.get(k);
    out.set(k, b instanceof Map && v instanceof Map ? mergeHelmValues(b, v) : v);
  }
  return out;
}

/**
 * Compiles merged values into canonical JSON (keys sorted) with holes for cluster
 * variables, resolving `${values.*}` from the bundle's `values`. Problems are pushed to
 * `errors` with the position of the string that has them.
 */
export function compileHelmValues(
  values: HelmMap,
  flotillaValues: ValuesTree,
  origin: string,
  bundle: string,
  errors: FleetError[],
): CompiledHelmValues {
  const lits: string[] = [];
  const slots: number[] = [];
  let cur = '';
  const vars: ClusterVariable[] = [];
  const index = new Map<string, number>();
  const err = (pos: SourcePos, message: string) => errors.push(fleetError(pos, message, bundle));

  const resolve = (ref: Extract<VariableRef, { kind: 'values' }>, pos: SourcePos): ValueLeaf | undefined => {
    let v: ValueLeaf | ValuesTree = flotillaValues;
    for (const key of ref.path) {
      if (!isTree(v) || !Object.hasOwn(v, key)) {
        err(pos, `undefined variable \${${ref.text}} (not set in ${origin})`);
        return undefined;
      }
      v = v[key] as ValueLeaf | ValuesTree;
    }
    if (isTree(v)) {
      err(pos, `\${${ref.text}} is a mapping, not a value (from ${origin})`);
      return undefined;
    }
    return v;
  };

  const emit = (v: HelmValue): void => {
    if (v === null || typeof v !== 'object') {
      cur += JSON.stringify(v);
      return;
    }
    if (v instanceof PosString) {
      if (!hasTemplateSyntax(v.value)) {
        cur += JSON.stringify(v.value);
        return;
      }
      const parsed = parseTemplate(v.value);
      if (!parsed.ok) {
        err(v.pos, parsed.message);
        cur += '""';
        return;
      }
      const only = parsed.parts.length === 1 ? parsed.parts[0] : undefined;
      if (typeof only === 'object' && only.kind === 'values') {
        // Exactly one value keeps its type: `replicaCount: ${values.replicas}` stays a number.
        const got = resolve(only, v.pos);
        cur += JSON.stringify(got ?? '');
        return;
      }
      cur += '"';
      for (const part of parsed.parts) {
        if (typeof part === 'string') cur += JSON.stringify(part).slice(1, -1);
        else if (part.kind === 'values')
          cur += JSON.stringify(String(resolve(part, v.pos) ?? '')).slice(1, -1);
        else {
          let slot = index.get(part.text);
          if (slot === undefined) {
            slot = vars.length;
            vars.push({ ref: part, pos: v.pos });
            index.set(part.text, slot);
          }
          lits.push(cur);
          slots.push(slot);
          cur = '';
        }
      }
      cur += '"';
      return;
    }
    if (Array.isArray(v)) {
      cur += '[';
      v.forEach((item, i) => {
        if (i > 0) cur += ',';
        emit(item);
      });
      cur += ']';
      return;
    }
    const keys = [...v.keys()].sort();
    cur += '{';
    keys.forEach((k, i) => {
      if (i > 0) cur += ',';
      cur += `${JSON.stringify(k)}:`;
      emit(v.get(k) as HelmValue);
    });
    cur += '}';
  };
  emit(values);
  lits.push(cur);
  return {
    json: { lits, vars: slots },
    vars,
    varKeys: vars.map((v) => (v.ref.kind === 'cluster.name' ? null : v.ref.key)),
  };
}

/**
 * The values for one cluster as canonical JSON, or the variables it lacks. Label values
 * go in as strings.
 */
export function fillHelmValues(
  compiled: CompiledHelmValues,
  clusterName: string,
  labels: Readonly<Record<string, string>>,
): { ok: true; json: string } | { ok: false; missing: ClusterVariable[] } {
  const values: string[] = [];
  const missing: ClusterVariable[] = [];
  compiled.varKeys.forEach((key, i) => {
    const v = key === null ? clusterName : labels[key];
    if (typeof v !== 'string' || (key !== null && !Object.hasOwn(labels, key)))
      missing.push(compiled.vars[i] as ClusterVariable);
    else values.push(JSON.stringify(v).slice(1, -1));
  });
  if (missing.length > 0) return { ok: false, missing };
  const t = compiled.json;
  let s = t.lits[0] as string;
  for (let i = 0; i < t.vars.length; i++)
    s += (values[t.vars[i] as number] as string) + (t.lits[i + 1] as string);
  return { ok: true, json: s };
}
