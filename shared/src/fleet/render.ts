/**
 * The render engine: a variant's objects compiled once into canonical-JSON templates with
 * holes for cluster variables ({@link compileVariant}), and rendered per cluster by filling
 * the holes and hashing ({@link renderVariant}): the canonical rendered bundle the hub
 * stores, keyed by its hash. Renders are cached per variant by the values of the cluster
 * variables they reference.
 */
import { FLOTILLA_API_VERSION } from '../api-version.ts';
import { isTree, type ValueLeaf, type ValuesTree } from '../bundle-spec.ts';
import { canonicalJson, sha256Hash } from '../canonical.ts';
import { type FleetError, fleetError, type SourcePos } from '../errors.ts';
import { applyRank } from '../kinds.ts';
import type { Labels } from '../labels.ts';
import { scalar } from '../patch.ts';
import type { PolicySet } from '../policy/index.ts';
import type { HealthCheck } from '../protocol/desired-state.ts';
import type { IgnoreDifference } from '../protocol/ignore-differences.ts';
import { hasTemplateSyntax, parseTemplate, type VariableRef } from '../variables.ts';
import { getEntry, type YMap, type YNode, type YScalar } from '../yaml-source.ts';
import type {
  ClusterVariable,
  ManifestDoc,
  ObjectTemplate,
  RenderBudget,
  RenderedObjectRef,
  RenderOutcome,
  StrTemplate,
  Variant,
} from './model.ts';
import {
  describeObject,
  describeRef,
  MAX_DATA_OBJECT_BYTES,
  MAX_OBJECT_BYTES,
  mib,
  readObjectHeader,
} from './objects.ts';
import { admit } from './policy.ts';
import { compileSealed } from './sealed.ts';

/**
 * Bounds the memory held by render caches across one loaded fleet: when the cached
 * canonical text passes the limit, every cache is emptied (output is unaffected; only
 * repeated renders get slower).
 */
export class RenderCacheBudget implements RenderBudget {
  readonly limitChars: number;
  readonly policies: PolicySet | undefined;
  #used = 0;
  readonly #caches: Map<string, RenderOutcome>[] = [];

  constructor(limitChars = 256 * 1024 * 1024, policies?: PolicySet) {
    this.limitChars = limitChars;
    this.policies = policies;
  }

  newCache(): Map<string, RenderOutcome> {
    const cache = new Map<string, RenderOutcome>();
    this.#caches.push(cache);
    return cache;
  }

  charge(chars: number): void {
    this.#used += chars;
    if (this.#used <= this.limitChars) return;
    for (const cache of this.#caches) cache.clear();
    this.#used = 0;
  }
}

export interface CompileVariantInput {
  readonly bundle: string;
  readonly namespace: string;
  readonly docs: readonly ManifestDoc[];
  readonly values: ValuesTree;
  /** Where the values come from, for messages: `bundle.yaml values` or `customizations[1] "prod"`. */
  readonly valuesOrigin: string;
  /** Carried in the rendered document for the agent; none leaves the document as it was before the field existed. */
  readonly ignoreDifferences?: readonly IgnoreDifference[];
  readonly isClusterScoped: (group: string, kind: string) => boolean;
  readonly budget: RenderCacheBudget;
  /** Custom health checks travelling with the rendered bundle, first match wins. */
  readonly healthChecks?: readonly HealthCheck[];
  /**
   * Strings are taken as they are, without `${...}` variables: the objects a render
   * engine built (variables went into its inputs; `${` in a chart's output is the
   * chart's own, a shell script's say).
   */
  readonly literal?: boolean;
}

/**
 * Compiles one variant: defaults namespaces, resolves `${values.*}`, and turns every object
 * into canonical-JSON text with holes for cluster variables, so that rendering for a cluster
 * is string concatenation and one hash.
 */
export function compileVariant(input: CompileVariantInput): {
  variant: Variant | undefined;
  errors: FleetError[];
} {
  const errors: FleetError[] = [];
  const err = (pos: SourcePos, message: string) => errors.push(fleetError(pos, message, input.bundle));
  const vars: ClusterVariable[] = [];
  const varIndex = new Map<string, number>();
  const objects: ObjectTemplate[] = [];

  const slotFor = (ref: Exclude<VariableRef, { kind: 'values' }>, pos: SourcePos): number => {
    const existing = varIndex.get(ref.text);
    if (existing !== undefined) return existing;
    vars.push({ ref, pos });
    varIndex.set(ref.text, vars.length - 1);
    return vars.length - 1;
  };

  const resolveValue = (
    ref: Extract<VariableRef, { kind: 'values' }>,
    pos: SourcePos,
  ): ValueLeaf | undefined => {
    let cur: ValueLeaf | ValuesTree = input.values;
    for (let i = 0; i < ref.path.length; i++) {
      const key = ref.path[i] as string;
      if (!isTree(cur)) {
        err(
          pos,
          `\${${ref.text}}: values.${ref.path.slice(0, i).join('.')} is not a mapping (from ${input.valuesOrigin})`,
        );
        return undefined;
      }
      if (!Object.hasOwn(cur, key)) {
        err(pos, `undefined variable \${${ref.text}} (not set in ${input.valuesOrigin})`);
        return undefined;
      }
      cur = cur[key] as ValueLeaf | ValuesTree;
    }
    if (isTree(cur)) {
      err(pos, `\${${ref.text}} is a mapping, not a value (from ${input.valuesOrigin})`);
      return undefined;
    }
    return cur;
  };

  /** Emits a string scalar; `raw` receives unescaped text for identity templates. */
  const emitString = (node: YScalar, out: TemplateBuilder, raw?: TemplateBuilder): void => {
    const s = node.value as string;
    if (input.literal || !hasTemplateSyntax(s)) {
      out.lit(JSON.stringify(s));
      raw?.lit(s);
      return;
    }
    const parsed = parseTemplate(s);
    if (!parsed.ok) {
      err(node.pos, parsed.message);
      return;
    }
    const only = parsed.parts.length === 1 ? parsed.parts[0] : undefined;
    if (!node.quoted && typeof only === 'object' && only.kind === 'values') {
      // A plain scalar that is exactly one value keeps the value's YAML type: `replicas: ${values.replicas}` gives a number.
      const v = resolveValue(only, node.pos);
      if (v !== undefined) {
        out.lit(JSON.stringify(v));
        raw?.lit(String(v));
      }
      return;
    }
    out.lit('"');
    for (const part of parsed.parts) {
      if (typeof part === 'string') {
        out.lit(escapeInner(part));
        raw?.lit(part);
      } else if (part.kind === 'values') {
        const v = resolveValue(part, node.pos);
        if (v !== undefined) {
          out.lit(escapeInner(String(v)));
          raw?.lit(String(v));
        }
      } else {
        const slot = slotFor(part, node.pos);
        out.slot(slot);
        raw?.slot(slot);
      }
    }
    out.lit('"');
  };

  const emit = (node: YNode, out: TemplateBuilder): void => {
    if (node.kind === 'scalar') {
      if (typeof node.value === 'string') emitString(node, out);
      else out.lit(JSON.stringify(node.value));
      return;
    }
    if (node.kind === 'seq') {
      out.lit('[');
      node.items.forEach((item, i) => {
        if (i > 0) out.lit(',');
        emit(item, out);
      });
      out.lit(']');
      return;
    }
    const entries = [...node.entries].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    out.lit('{');
    entries.forEach((entry, i) => {
      if (i > 0) out.lit(',');
      out.lit(`${JSON.stringify(entry.key)}:`);
      emit(entry.value, out);
    });
    out.lit('}');
  };

  const sealed = compileSealed(input.docs, input.namespace, input.isClusterScoped, input.bundle, errors);
  for (const doc of input.docs) {
    if (doc.sealed) continue;
    const headerErrors: FleetError[] = [];
    const header = readObjectHeader(doc.node, headerErrors, input.bundle);
    errors.push(...headerErrors);
    if (!header) continue;
    const clusterScoped = input.isClusterScoped(header.group, header.kind);
    let node = doc.node;
    const nsEntry = getEntry(header.metadata, 'namespace');
    if (clusterScoped && nsEntry) {
      err(
        nsEntry.keyPos,
        `metadata.namespace: ${describeObject(header.group, header.kind, undefined, header.name)} is cluster-scoped and cannot have a namespace`,
      );
      continue;
    }
    if (!clusterScoped && !nsEntry) {
      const metadata: YMap = {
        ...header.metadata,
        entries: [
          ...header.metadata.entries,
          {
            key: 'namespace',
            keyPos: header.metadata.pos,
            value: scalar(header.metadata.pos, input.namespace),
          },
        ],
      };
      node = {
        ...node,
        entries: node.entries.map((e) => (e.key === 'metadata' ? { ...e, value: metadata } : e)),
      };
    }
    const before = errors.length;
    const json = new TemplateBuilder();
    emit(node, json);
    const nameNode = getEntry(header.metadata, 'name')?.value as YScalar;
    const nameTpl = new TemplateBuilder();
    emitString(nameNode, new TemplateBuilder(), nameTpl);
    let nsTpl: StrTemplate | undefined;
    if (!clusterScoped) {
      const b = new TemplateBuilder();
      if (nsEntry) emitString(nsEntry.value as YScalar, new TemplateBuilder(), b);
      else b.lit(input.namespace);
      nsTpl = b.done();
    }
    if (errors.length !== before) continue;
    const jsonTpl = json.done();
    const tooBig = objectSizeProblem(header, jsonTpl);
    if (tooBig) {
      err(doc.pos, tooBig);
      continue;
    }
    const name = nameTpl.done();
    const dynamicId = name.vars.length > 0 || (nsTpl !== undefined && nsTpl.vars.length > 0);
    const template: Omit<ObjectTemplate, 'ref'> = {
      apiVersion: header.apiVersion,
      kind: header.kind,
      group: header.group,
      rank: applyRank(header.kind),
      pos: doc.pos,
      namespace: nsTpl,
      name,
      json: jsonTpl,
      dynamicId,
    };
    objects.push({ ...template, ref: dynamicId ? undefined : objectRef(template, []) });
  }
  if (errors.length > 0) return { variant: undefined, errors };

  const dynamicIds = objects.some((o) => o.dynamicId);
  if (!dynamicIds) {
    objects.sort(compareStatic);
    for (let i = 1; i < objects.length; i++) {
      const a = objects[i - 1]?.ref as RenderedObjectRef;
      const b = objects[i]?.ref as RenderedObjectRef;
      if (a.id === b.id) {
        err(objects[i]?.pos as SourcePos, `duplicate object ${describeRef(b)} (also at ${a.file}:${a.line})`);
      }
    }
  }
  const duplicate = sealedDuplicate(
    sealed.refs,
    objects.flatMap((o) => (o.ref ? [o.ref] : [])),
  );
  if (duplicate) err({ file: duplicate.file, line: duplicate.line, column: 1 }, duplicate.message);
  if (errors.length > 0) return { variant: undefined, errors };
  // A render keyed by the cluster's own name is never reused, so it is not worth caching.
  const cacheable = !vars.some((v) => v.ref.kind === 'cluster.name');
  const variant: Variant = {
    bundle: input.bundle,
    vars,
    varKeys: vars.map((v) => (v.ref.kind === 'cluster.name' ? null : v.ref.key)),
    objects,
    dynamicIds,
    staticIds: [...objects.flatMap((o) => (o.ref ? [o.ref.id] : [])), ...sealed.refs.map((r) => r.id)],
    ignoreJson: input.ignoreDifferences?.length
      ? `"ignoreDifferences":${canonicalJson(input.ignoreDifferences)},`
      : '',
    contested: false,
    cache: cacheable ? input.budget.newCache() : undefined,
    budget: input.budget,
    healthChecksJson:
      input.healthChecks && input.healthChecks.length > 0
        ? `,"healthChecks":${canonicalJson(input.healthChecks)}`
        : '',
    sealedRefs: sealed.refs,
    sealedJson: sealed.json,
  };
  return { variant, errors };
}

/**
 * An object too big for the API server, by the size of its JSON (variables not counted):
 * etcd stores at most 1.5 MiB per object, and a ConfigMap or Secret holds at most 1 MiB.
 */
function objectSizeProblem(
  header: { group: string; kind: string; name: string; namespace: string | undefined },
  json: StrTemplate,
): string | undefined {
  let chars = 0;
  for (const lit of json.lits) chars += lit.length;
  const dataKind = header.group === '' && (header.kind === 'ConfigMap' || header.kind === 'Secret');
  const limit = dataKind ? MAX_DATA_OBJECT_BYTES : MAX_OBJECT_BYTES;
  if (chars <= limit / 3) return undefined;
  let bytes = 0;
  for (const lit of json.lits) bytes += Buffer.byteLength(lit, 'utf8');
  if (bytes <= limit) return undefined;
  const what = describeObject(header.group, header.kind, header.namespace, header.name);
  return dataKind
    ? `${what} is ${mib(bytes)}; the API server accepts at most ${mib(limit)} of data in a ${header.kind}`
    : `${what} is ${mib(bytes)} as JSON; the API server stores objects up to ${mib(limit)}`;
}

class TemplateBuilder {
  private readonly lits: string[] = [];
  private readonly vars: number[] = [];
  private cur = '';
  lit(s: string): void {
    this.cur += s;
  }
  slot(index: number): void {
    this.lits.push(this.cur);
    this.cur = '';
    this.vars.push(index);
  }
  done(): StrTemplate {
    return { lits: [...this.lits, this.cur], vars: [...this.vars] };
  }
}

function escapeInner(s: string): string {
  return JSON.stringify(s).slice(1, -1);
}

// Each variable as U+0001, its index, U+0001, written as JSON escapes: a parse gives the
// strings the policy step treats as holes (`HOLE_MARK`).
const masks: string[] = [];
const maskedTexts = new WeakMap<StrTemplate, string>();
function maskedText(t: StrTemplate): string {
  let s = maskedTexts.get(t);
  if (s === undefined) {
    for (const i of t.vars) masks[i] ??= `\\u0001${i}\\u0001`;
    s = fill(t, masks);
    maskedTexts.set(t, s);
  }
  return s;
}

function fill(t: StrTemplate, values: readonly string[]): string {
  let s = t.lits[0] as string;
  for (let i = 0; i < t.vars.length; i++)
    s += (values[t.vars[i] as number] as string) + (t.lits[i + 1] as string);
  return s;
}

function objectRef(o: Omit<ObjectTemplate, 'ref'>, values: readonly string[]): RenderedObjectRef {
  const file = o.pos.file;
  const name = fill(o.name, values);
  const namespace = o.namespace ? fill(o.namespace, values) : undefined;
  const id = `${o.group}/${o.kind}/${namespace ?? ''}/${name}`;
  return namespace === undefined
    ? { apiVersion: o.apiVersion, kind: o.kind, name, id, file, line: o.pos.line }
    : { apiVersion: o.apiVersion, kind: o.kind, namespace, name, id, file, line: o.pos.line };
}

/** The first SOPS object that has the identity of another object of the variant (sealed or not). */
function sealedDuplicate(
  sealed: readonly RenderedObjectRef[],
  others: readonly RenderedObjectRef[],
): { file: string; line: number; message: string } | undefined {
  if (sealed.length === 0) return undefined;
  const seen = new Map(others.map((r) => [r.id, r]));
  for (const r of sealed) {
    const other = seen.get(r.id);
    if (other)
      return {
        file: r.file,
        line: r.line,
        message: `duplicate object ${describeRef(r)} (also at ${other.file}:${other.line})`,
      };
    seen.set(r.id, r);
  }
  return undefined;
}

function compareRefs(ra: RenderedObjectRef, rb: RenderedObjectRef, rankA: number, rankB: number): number {
  if (rankA !== rankB) return rankA - rankB;
  return ra.id < rb.id ? -1 : ra.id > rb.id ? 1 : 0;
}

function compareStatic(a: ObjectTemplate, b: ObjectTemplate): number {
  return compareRefs(a.ref as RenderedObjectRef, b.ref as RenderedObjectRef, a.rank, b.rank);
}

const PREFIX = `{"apiVersion":${JSON.stringify(FLOTILLA_API_VERSION)},"bundle":`;

/**
 * Renders a variant for one cluster into its canonical rendered bundle, checked by the
 * policy step (`policy.ts`). Identical cluster-variable values give the identical (cached)
 * result; a label the manifests reference but the cluster lacks is an error.
 */
export function renderVariant(variant: Variant, clusterName: string, labels: Labels): RenderOutcome {
  const keys = variant.varKeys;
  const n = keys.length;
  let key = '';
  let values: string[] | undefined;
  if (n === 1) {
    const k = keys[0];
    const v = k === null ? clusterName : labels[k as string];
    if (typeof v !== 'string') return missingLabels(variant, clusterName, labels);
    key = v;
  } else if (n > 1) {
    values = [];
    for (let i = 0; i < n; i++) {
      const k = keys[i];
      // Label values are strings; anything else (undefined, or a prototype member) means the label is missing.
      const v = k === null ? clusterName : labels[k as string];
      if (typeof v !== 'string') return missingLabels(variant, clusterName, labels);
      values.push(v);
    }
    // Label values cannot contain NUL, so joining with it gives a unique key.
    key = values.join('\u0000');
  }
  const cache = variant.cache;
  if (cache) {
    const hit = cache.get(key);
    if (hit) return hit;
  }
  // Policy before the cache, so that a render is checked once however many clusters share it.
  const policies = variant.budget.policies;
  // With policies, the objects' texts too, filled and masked, so that verdicts are shared across fills.
  const texts = policies && policies.bindings.length > 0 ? { json: [], masked: [] } : undefined;
  const outcome = admit(renderNow(variant, values ?? (n === 1 ? [key] : []), texts), policies, texts);
  if (cache) {
    variant.budget.charge(outcome.ok ? outcome.rendered.canonical.length + key.length : key.length);
    cache.set(key, outcome);
  }
  return outcome;
}

function missingLabels(variant: Variant, clusterName: string, labels: Labels): RenderOutcome {
  const errors: FleetError[] = [];
  for (const v of variant.vars) {
    if (v.ref.kind === 'cluster.labels' && !Object.hasOwn(labels, v.ref.key)) {
      errors.push(
        fleetError(
          v.pos,
          `undefined variable \${${v.ref.text}}: cluster "${clusterName}" has no label "${v.ref.key}"`,
          variant.bundle,
        ),
      );
    }
  }
  return { ok: false, errors };
}

function renderNow(
  variant: Variant,
  values: readonly string[],
  texts?: { json: string[]; masked: string[] },
): RenderOutcome {
  const escaped = values.map(escapeInner);
  let objects = variant.objects;
  let refs: RenderedObjectRef[];
  if (variant.dynamicIds) {
    const withRefs = objects.map((o) => ({ o, ref: o.ref ?? objectRef(o, values) }));
    withRefs.sort((a, b) => compareRefs(a.ref, b.ref, a.o.rank, b.o.rank));
    const errors: FleetError[] = [];
    for (let i = 1; i < withRefs.length; i++) {
      const a = withRefs[i - 1]?.ref as RenderedObjectRef;
      const b = withRefs[i] as { o: ObjectTemplate; ref: RenderedObjectRef };
      if (a.id === b.ref.id) {
        errors.push(
          fleetError(
            b.o.pos,
            `duplicate object ${describeRef(b.ref)} (also at ${a.file}:${a.line})`,
            variant.bundle,
          ),
        );
      }
    }
    if (errors.length > 0) return { ok: false, errors };
    objects = withRefs.map((w) => w.o);
    refs = withRefs.map((w) => w.ref);
    const duplicate = sealedDuplicate(variant.sealedRefs, refs);
    if (duplicate)
      return {
        ok: false,
        errors: [
          fleetError(
            { file: duplicate.file, line: duplicate.line, column: 1 },
            duplicate.message,
            variant.bundle,
          ),
        ],
      };
  } else refs = objects.map((o) => o.ref as RenderedObjectRef);
  if (variant.sealedRefs.length > 0) refs = [...refs, ...variant.sealedRefs];
  let body = '';
  for (let i = 0; i < objects.length; i++) {
    if (i > 0) body += ',';
    const t = (objects[i] as ObjectTemplate).json;
    const text = fill(t, escaped);
    body += text;
    if (texts) {
      texts.json.push(text);
      texts.masked.push(t.vars.length === 0 ? text : maskedText(t));
    }
  }
  // Keys in canonical (sorted) order: apiVersion, bundle, healthChecks, ignoreDifferences, kind, objects, sealed.
  const canonical = `${PREFIX}${JSON.stringify(variant.bundle)}${variant.healthChecksJson},${variant.ignoreJson}"kind":"RenderedBundle","objects":[${body}]${variant.sealedJson}}`;
  return {
    ok: true,
    rendered: { bundle: variant.bundle, hash: sha256Hash(canonical), canonical, objects: refs },
  };
}
