import { type FleetError, fleetError, type SourcePos } from './errors.ts';
import { bundleNameProblem, type Labels, labelKeyProblem, labelValueProblem, nameProblem } from './labels.ts';
import type { LabelSelector, LabelSelectorRequirement, SelectorOperator } from './selector.ts';
import { requirementProblem } from './selector.ts';
import { parseLabelSelector } from './selector-string.ts';
import { describeNode, type YMap, type YNode } from './yaml-source.ts';

/**
 * Collects positioned errors while reading one YAML file against a strict schema.
 * Paths in messages are written like `targets[1].clusterSelector.matchLabels`.
 */
export class SpecReader {
  readonly file: string;
  readonly bundle: string | undefined;
  readonly errors: FleetError[] = [];

  constructor(file: string, bundle?: string) {
    this.file = file;
    this.bundle = bundle;
  }

  error(pos: SourcePos, message: string): void {
    this.errors.push(fleetError(pos, message, this.bundle));
  }

  /** Reports unknown fields of a mapping and returns its entries by key. */
  fields(map: YMap, path: string, allowed: readonly string[]): Map<string, YNode> {
    const out = new Map<string, YNode>();
    for (const entry of map.entries) {
      if (!allowed.includes(entry.key)) {
        this.error(
          entry.keyPos,
          `${label(path)}unknown field "${entry.key}" (expected ${allowed.join(', ')})`,
        );
      } else out.set(entry.key, entry.value);
    }
    return out;
  }

  expectMap(node: YNode, path: string): YMap | undefined {
    if (node.kind === 'map') return node;
    this.error(node.pos, `${label(path)}expected a mapping, got ${describeNode(node)}`);
    return undefined;
  }

  expectList(node: YNode, path: string): readonly YNode[] | undefined {
    if (node.kind === 'seq') return node.items;
    this.error(node.pos, `${label(path)}expected a list, got ${describeNode(node)}`);
    return undefined;
  }

  expectString(node: YNode, path: string, suggestQuotes = true): string | undefined {
    if (node.kind === 'scalar' && typeof node.value === 'string') return node.value;
    const hint =
      suggestQuotes && node.kind === 'scalar' && node.value !== null
        ? ` (quote it: "${String(node.value)}")`
        : '';
    this.error(node.pos, `${label(path)}expected a string, got ${describeNode(node)}${hint}`);
    return undefined;
  }

  expectBoolean(node: YNode, path: string): boolean | undefined {
    if (node.kind === 'scalar' && typeof node.value === 'boolean') return node.value;
    this.error(node.pos, `${label(path)}expected true or false, got ${describeNode(node)}`);
    return undefined;
  }

  expectName(node: YNode, path: string, what: string): string | undefined {
    const value = this.expectString(node, path);
    if (value === undefined) return undefined;
    const problem = nameProblem(value);
    if (problem) {
      this.error(node.pos, `${label(path)}invalid ${what} name: ${problem}`);
      return undefined;
    }
    return value;
  }

  /** A bundle's full name: `web`, or `team-a/web` for a bundle of the source team-a. */
  expectBundleName(node: YNode, path: string): string | undefined {
    const value = this.expectString(node, path);
    if (value === undefined) return undefined;
    const problem = bundleNameProblem(value);
    if (problem) {
      this.error(node.pos, `${label(path)}invalid bundle name: ${problem}`);
      return undefined;
    }
    return value;
  }

  /** Reads a label selector, as a mapping (`matchLabels`, `matchExpressions`) or a kubectl-style string. */
  selector(node: YNode, path: string): LabelSelector | undefined {
    if (node.kind === 'scalar' && typeof node.value === 'string') {
      try {
        return parseLabelSelector(node.value);
      } catch (e) {
        this.error(node.pos, `${label(path)}${(e as Error).message}`);
        return undefined;
      }
    }
    if (node.kind !== 'map') {
      this.error(
        node.pos,
        `${label(path)}expected a label selector (a mapping or a string), got ${describeNode(node)}`,
      );
      return undefined;
    }
    const before = this.errors.length;
    const f = this.fields(node, path, ['matchLabels', 'matchExpressions']);
    const selector: { matchLabels?: Record<string, string>; matchExpressions?: LabelSelectorRequirement[] } =
      {};
    const ml = f.get('matchLabels');
    if (ml) {
      const labels = this.labels(ml, `${path}.matchLabels`);
      if (labels) selector.matchLabels = labels;
    }
    const me = f.get('matchExpressions');
    if (me) {
      const items = this.expectList(me, `${path}.matchExpressions`);
      if (items) {
        selector.matchExpressions = [];
        items.forEach((item, i) => {
          const req = this.requirement(item, `${path}.matchExpressions[${i}]`);
          if (req) selector.matchExpressions?.push(req);
        });
      }
    }
    return this.errors.length === before ? selector : undefined;
  }

  private requirement(node: YNode, path: string): LabelSelectorRequirement | undefined {
    const map = this.expectMap(node, path);
    if (!map) return undefined;
    const before = this.errors.length;
    const f = this.fields(map, path, ['key', 'operator', 'values']);
    const keyNode = f.get('key');
    const opNode = f.get('operator');
    let key: string | undefined;
    if (!keyNode) this.error(map.pos, `${path}.key: required`);
    else {
      key = this.expectString(keyNode, `${path}.key`);
      const problem = key === undefined ? undefined : labelKeyProblem(key);
      if (problem) this.error(keyNode.pos, `${path}.key: ${problem}`);
    }
    let values: string[] | undefined;
    const valuesNode = f.get('values');
    if (valuesNode) {
      const items = this.expectList(valuesNode, `${path}.values`);
      if (items) {
        values = [];
        items.forEach((item, i) => {
          const v = this.expectString(item, `${path}.values[${i}]`);
          if (v === undefined) return;
          const problem = labelValueProblem(v);
          if (problem) this.error(item.pos, `${path}.values[${i}]: ${problem}`);
          values?.push(v);
        });
      }
    }
    if (!opNode) {
      this.error(map.pos, `${path}.operator: required (one of In, NotIn, Exists, DoesNotExist)`);
      return undefined;
    }
    const operator = this.expectString(opNode, `${path}.operator`);
    if (operator === undefined) return undefined;
    const problem = requirementProblem(operator, values);
    if (problem) {
      const at = problem.startsWith('values') && valuesNode ? valuesNode.pos : opNode.pos;
      this.error(at, `${path}.${problem}`);
    }
    if (this.errors.length !== before || key === undefined) return undefined;
    const req: LabelSelectorRequirement =
      values === undefined
        ? { key, operator: operator as SelectorOperator }
        : { key, operator: operator as SelectorOperator, values };
    return req;
  }

  /** Reads a mapping of label keys to string values, validated as Kubernetes validates labels. */
  labels(node: YNode, path: string): Record<string, string> | undefined {
    const map = this.expectMap(node, path);
    if (!map) return undefined;
    const before = this.errors.length;
    const out: Record<string, string> = {};
    for (const entry of map.entries) {
      const keyProblem = labelKeyProblem(entry.key);
      if (keyProblem) {
        this.error(entry.keyPos, `${path}: ${keyProblem}`);
        continue;
      }
      const v = this.expectString(entry.value, `${path}.${entry.key}`);
      if (v === undefined) continue;
      const valueProblem = labelValueProblem(v);
      if (valueProblem) this.error(entry.value.pos, `${path}.${entry.key}: ${valueProblem}`);
      else
        Object.defineProperty(out, entry.key, {
          value: v,
          enumerable: true,
          writable: true,
          configurable: true,
        });
    }
    return this.errors.length === before ? out : undefined;
  }
}

/** `path: ` for messages, or nothing at the root of a file. */
function label(path: string): string {
  return path === '' ? '' : `${path}: `;
}

/** A named cluster selector from `groups/<name>.yaml`. */
export interface GroupSpec {
  readonly name: string;
  readonly file: string;
  readonly selector: LabelSelector;
  readonly description?: string;
}

/** Reads `groups/<name>.yaml`: `selector` (required) and `description`. */
export function readGroup(
  reader: SpecReader,
  name: string,
  root: YNode | null,
  pos: SourcePos,
): GroupSpec | undefined {
  if (root === null) {
    reader.error(pos, 'selector: required (the group file is empty)');
    return undefined;
  }
  const map = reader.expectMap(root, '');
  if (!map) return undefined;
  const f = reader.fields(map, '', ['selector', 'description']);
  const desc = f.get('description');
  const description = desc ? reader.expectString(desc, 'description') : undefined;
  const sel = f.get('selector');
  if (!sel) {
    reader.error(map.pos, 'selector: required');
    return undefined;
  }
  const selector = reader.selector(sel, 'selector');
  if (!selector || reader.errors.length > 0) return undefined;
  return description === undefined
    ? { name, file: reader.file, selector }
    : { name, file: reader.file, selector, description };
}

/** Labels declared in git for one cluster, from `clusters/<name>.yaml`. */
export interface DeclaredClusterSpec {
  readonly name: string;
  readonly file: string;
  readonly labels: Labels;
  readonly description?: string;
}

/** Reads `clusters/<name>.yaml`: `labels` and `description`. */
export function readDeclaredCluster(
  reader: SpecReader,
  name: string,
  root: YNode | null,
): DeclaredClusterSpec | undefined {
  if (root === null) return { name, file: reader.file, labels: {} };
  const map = reader.expectMap(root, '');
  if (!map) return undefined;
  const f = reader.fields(map, '', ['labels', 'description']);
  const desc = f.get('description');
  const description = desc ? reader.expectString(desc, 'description') : undefined;
  const labelsNode = f.get('labels');
  const labels = labelsNode ? reader.labels(labelsNode, 'labels') : {};
  if (!labels || reader.errors.length > 0) return undefined;
  return description === undefined
    ? { name, file: reader.file, labels }
    : { name, file: reader.file, labels, description };
}
