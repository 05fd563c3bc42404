import {
  type Document,
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  parseAllDocuments,
  type Node as YamlLibNode,
} from 'yaml';
import { type FleetError, fleetError, type SourcePos } from './errors.ts';

/** A scalar from a YAML file, with where it was written. `quoted` is false for plain scalars. */
export interface YScalar {
  readonly kind: 'scalar';
  readonly pos: SourcePos;
  readonly value: string | number | boolean | null;
  readonly quoted: boolean;
}

/** A mapping entry; keys are always strings (numbers and booleans used as keys are stringified). */
export interface YEntry {
  readonly key: string;
  readonly keyPos: SourcePos;
  readonly value: YNode;
}

export interface YMap {
  readonly kind: 'map';
  readonly pos: SourcePos;
  readonly entries: readonly YEntry[];
}

export interface YSeq {
  readonly kind: 'seq';
  readonly pos: SourcePos;
  readonly items: readonly YNode[];
}

/**
 * A YAML node that keeps its position. The core validates and renders from these rather
 * than from plain JS values so that every error can name a file and line.
 */
export type YNode = YScalar | YMap | YSeq;

/** One document of a (possibly multi-document) YAML file. `node` is null for an empty document. */
export interface YDocument {
  readonly file: string;
  readonly index: number;
  readonly pos: SourcePos;
  readonly node: YNode | null;
}

export interface ParsedYamlFile {
  readonly documents: YDocument[];
  readonly errors: FleetError[];
}

// Expanding aliases can blow up exponentially ("billion laughs"); a fleet repo never needs this many nodes.
const MAX_NODES = 1_000_000;

/**
 * Parses a YAML file (YAML 1.2 core schema, several documents allowed) into positioned nodes.
 * Syntax errors, duplicate keys, unknown tags and ambiguous octal-looking numbers are returned as errors.
 */
export function parseYamlFile(file: string, content: string, bundle?: string): ParsedYamlFile {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(content, {
    lineCounter,
    prettyErrors: false,
    schema: 'core',
    merge: false,
    uniqueKeys: true,
  });
  const errors: FleetError[] = [];
  const at = (offset: number | undefined): SourcePos => {
    const p = lineCounter.linePos(offset ?? 0);
    return { file, line: p.line, column: p.col };
  };
  const documents: YDocument[] = [];
  if (!Array.isArray(docs)) return { documents, errors };
  let budget = MAX_NODES;
  docs.forEach((doc: Document.Parsed, index: number) => {
    const problems = [...doc.errors, ...doc.warnings];
    if (problems.length > 0) {
      for (const e of problems) {
        errors.push(fleetError(at(e.pos[0]), `YAML syntax error: ${firstLine(e.message)}`, bundle));
      }
      return;
    }
    // Anchored nodes are converted once and shared by their aliases (nodes are never mutated); the budget still
    // counts every expanded node, since rendering would expand them.
    const anchored = new Map<string, { node: YNode; size: number }>();
    const convert = (node: YamlLibNode | null | undefined, fallback: SourcePos, depth: number): YNode => {
      if (node === null || node === undefined || !isAlias(node)) {
        const before = budget;
        const converted = convertNode(node, fallback, depth);
        const anchor = node && 'anchor' in node ? node.anchor : undefined;
        if (typeof anchor === 'string') anchored.set(anchor, { node: converted, size: before - budget });
        return converted;
      }
      const target = anchored.get(node.source);
      if (target === undefined) {
        throw new YamlNodeError(at(node.range?.[0]), `YAML syntax error: unresolved alias *${node.source}`);
      }
      budget -= target.size;
      if (budget < 0) throw new YamlTooLargeError(at(node.range?.[0]));
      return target.node;
    };
    const convertNode = (node: YamlLibNode | null | undefined, fallback: SourcePos, depth: number): YNode => {
      budget--;
      if (budget < 0 || depth > 200) throw new YamlTooLargeError(fallback);
      if (node === null || node === undefined)
        return { kind: 'scalar', pos: fallback, value: null, quoted: false };
      const pos = node.range ? at(node.range[0]) : fallback;
      if (isScalar(node)) {
        const v = node.value;
        const quoted = node.type !== 'PLAIN';
        if (v === null || typeof v === 'string' || typeof v === 'boolean') {
          return { kind: 'scalar', pos, value: v, quoted };
        }
        if (typeof v === 'number') {
          if (!Number.isFinite(v))
            throw new YamlNodeError(pos, `${node.source ?? v} is not a finite number; quote it`);
          const source = typeof node.source === 'string' ? node.source : '';
          if (!quoted && /^[-+]?0[0-9]+$/.test(source)) {
            throw new YamlNodeError(
              pos,
              `number ${source} has a leading zero: kubectl (YAML 1.1) reads it as octal ${Number.parseInt(source, 8)} but YAML 1.2 as ${v}; write 0o${source.replace(/^[-+]?0+/, '')} or ${Number.parseInt(source, 8)}`,
            );
          }
          return { kind: 'scalar', pos, value: v, quoted };
        }
        throw new YamlNodeError(pos, `unsupported YAML value of type ${typeof v}`);
      }
      if (isMap(node)) {
        const entries: YEntry[] = [];
        for (const pair of node.items) {
          if (!isPair(pair)) continue;
          const keyNode = pair.key as YamlLibNode | null;
          const keyPos = keyNode && 'range' in keyNode && keyNode.range ? at(keyNode.range[0]) : pos;
          if (!isScalar(keyNode) || keyNode.value === null || typeof keyNode.value === 'object') {
            throw new YamlNodeError(keyPos, 'mapping keys must be strings');
          }
          const key = String(keyNode.value);
          if (key === '<<' && keyNode.type === 'PLAIN') {
            throw new YamlNodeError(keyPos, 'YAML merge keys (<<) are not supported');
          }
          entries.push({ key, keyPos, value: convert(pair.value as YamlLibNode | null, keyPos, depth + 1) });
        }
        return { kind: 'map', pos, entries };
      }
      if (isSeq(node)) {
        const items: YNode[] = [];
        for (const item of node.items) items.push(convert(item as YamlLibNode | null, pos, depth + 1));
        return { kind: 'seq', pos, items };
      }
      throw new YamlNodeError(pos, 'unsupported YAML node');
    };
    const start = at(doc.contents?.range?.[0] ?? doc.range[0]);
    try {
      const node = convert(doc.contents as YamlLibNode | null, start, 0);
      const empty = node.kind === 'scalar' && node.value === null && !node.quoted;
      documents.push({ file, index, pos: start, node: empty ? null : node });
    } catch (e) {
      if (e instanceof YamlNodeError) errors.push(fleetError(e.pos, e.message, bundle));
      else if (e instanceof YamlTooLargeError) {
        errors.push(
          fleetError(e.pos, 'YAML document is too large or too deeply nested (alias expansion?)', bundle),
        );
      } else throw e;
    }
  });
  return { documents, errors };
}

function firstLine(message: string): string {
  const line = message.split('\n')[0] ?? message;
  return line.replace(/ at line \d+, column \d+:?$/, '');
}

class YamlNodeError extends Error {
  readonly pos: SourcePos;
  constructor(pos: SourcePos, message: string) {
    super(message);
    this.name = 'YamlNodeError';
    this.pos = pos;
  }
}

class YamlTooLargeError extends Error {
  readonly pos: SourcePos;
  constructor(pos: SourcePos) {
    super('too large');
    this.name = 'YamlTooLargeError';
    this.pos = pos;
  }
}

/** Describes a node's type for messages: "a string", "a list", "a mapping", ... */
export function describeNode(node: YNode): string {
  if (node.kind === 'map') return 'a mapping';
  if (node.kind === 'seq') return 'a list';
  const v = node.value;
  if (v === null) return 'null';
  if (typeof v === 'string') return 'a string';
  if (typeof v === 'number') return 'a number';
  return 'a boolean';
}

/** Looks up a mapping entry by key. */
export function getEntry(map: YMap, key: string): YEntry | undefined {
  for (const e of map.entries) if (e.key === key) return e;
  return undefined;
}
