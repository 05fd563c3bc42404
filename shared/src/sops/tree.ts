import {
  Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  Pair,
  parseAllDocuments,
  Scalar,
  YAMLMap,
  YAMLSeq,
} from 'yaml';

/**
 * The SOPS tree: documents of ordered maps, lists and typed scalars. Plain JS
 * objects would reorder integer-like keys, and the order of values is what the
 * MAC hashes, so the walk works on this instead.
 *
 * A scalar keeps its SOPS type and its text as SOPS turns it into bytes (the form
 * that is encrypted and hashed): ints in decimal, floats as Go's shortest fixed
 * notation, booleans as `True`/`False`.
 */
export type SopsScalarType = 'str' | 'int' | 'float' | 'bool' | 'bytes' | 'time';

export type TreeNode = TreeMap | TreeList | TreeScalar | TreeNull;
export interface TreeMap {
  readonly kind: 'map';
  readonly entries: { readonly key: string; value: TreeNode }[];
}
export interface TreeList {
  readonly kind: 'list';
  readonly items: TreeNode[];
}
export interface TreeScalar {
  readonly kind: 'scalar';
  readonly type: SopsScalarType;
  readonly text: string;
  /** Only for `bytes`: the raw value, which need not be UTF-8. */
  readonly raw?: Uint8Array;
}
export interface TreeNull {
  readonly kind: 'null';
}

export type SopsFormat = 'yaml' | 'json';

/** A syntax problem, described by position only: the source may hold plaintext. */
export class TreeSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TreeSyntaxError';
  }
}

export function str(text: string): TreeScalar {
  return { kind: 'scalar', type: 'str', text };
}

// ---------------------------------------------------------------------------
// Reading

/** Parses a YAML stream or a JSON document into SOPS documents (top-level maps). */
export function parseTree(content: string, format: SopsFormat): TreeMap[] {
  return format === 'json' ? [parseJsonDocument(content)] : parseYamlDocuments(content);
}

const int64Min = -(2n ** 63n);
const int64Max = 2n ** 63n - 1n;

function parseYamlDocuments(content: string): TreeMap[] {
  const lines = new LineCounter();
  const docs = parseAllDocuments(content, {
    intAsBigInt: true,
    uniqueKeys: true,
    prettyErrors: false,
    lineCounter: lines,
  });
  if (!Array.isArray(docs)) return [];
  return docs.map((doc) => {
    const error = doc.errors[0];
    if (error) {
      // Position and code only: the parser's own message may quote the source.
      const { line, col } = lines.linePos(error.pos[0]);
      throw new TreeSyntaxError(`invalid YAML at line ${line}, column ${col} (${error.code})`);
    }
    const root = doc.contents;
    if (root === null || (isScalar(root) && root.value === null)) return { kind: 'map', entries: [] };
    if (!isMap(root)) throw new TreeSyntaxError('a YAML document must be a mapping at the top');
    return yamlNode(root, { doc, lines }, 0) as TreeMap;
  });
}

interface YamlContext {
  readonly doc: Document.Parsed;
  readonly lines: LineCounter;
}

function nodePos(node: unknown, ctx: YamlContext): string {
  const offset = (node as Node | undefined)?.range?.[0];
  if (offset === undefined) return 'an unknown position';
  const p = ctx.lines.linePos(offset);
  return `line ${p.line}, column ${p.col}`;
}

function yamlNode(node: unknown, ctx: YamlContext, depth: number): TreeNode {
  const { doc } = ctx;
  // Anchors can make a document self-referencing; SOPS cannot represent that either.
  if (depth > 256) throw new TreeSyntaxError('YAML nesting is too deep (a recursive alias?)');
  if (isAlias(node)) return yamlNode(node.resolve(doc), ctx, depth + 1);
  if (isMap(node)) {
    const entries: TreeMap['entries'] = [];
    for (const pair of node.items) {
      const key = isAlias(pair.key) ? pair.key.resolve(doc) : pair.key;
      let keyValue = isScalar(key) ? key.value : key;
      if (isScalar(key) && key.type === 'PLAIN' && !key.tag && typeof key.source === 'string') {
        const resolved = resolvePlainScalar(key.source);
        keyValue = resolved?.kind === 'scalar' && resolved.type === 'str' ? resolved.text : undefined;
      }
      if (typeof keyValue !== 'string') {
        throw new TreeSyntaxError(
          `map key at ${nodePos(key, ctx)} is not a string; SOPS supports string keys only`,
        );
      }
      entries.push({ key: keyValue, value: yamlNode(pair.value, ctx, depth + 1) });
    }
    return { kind: 'map', entries };
  }
  if (isSeq(node)) return { kind: 'list', items: node.items.map((item) => yamlNode(item, ctx, depth + 1)) };
  if (node === null || node === undefined) return { kind: 'null' };
  if (isScalar(node)) {
    // Untagged plain scalars are typed the way SOPS's YAML reader types them; it
    // differs from YAML 1.2 (dates, 0644 octals, underscores in numbers).
    if (node.type === 'PLAIN' && !node.tag && typeof node.source === 'string') {
      const resolved = resolvePlainScalar(node.source);
      if (resolved) return resolved;
      throw new TreeSyntaxError(`integer at ${nodePos(node, ctx)} is out of the 64-bit range`);
    }
    return scalarFromValue(node.value, () => nodePos(node, ctx));
  }
  throw new TreeSyntaxError('unsupported YAML node');
}

function scalarFromValue(value: unknown, where: () => string): TreeScalar | TreeNull {
  switch (typeof value) {
    case 'string':
      return str(value);
    case 'bigint':
      if (value < int64Min || value > int64Max)
        throw new TreeSyntaxError(`integer at ${where()} is out of the 64-bit range`);
      return { kind: 'scalar', type: 'int', text: value.toString() };
    case 'number':
      return { kind: 'scalar', type: 'float', text: formatGoFloat(value) };
    case 'boolean':
      return { kind: 'scalar', type: 'bool', text: value ? 'True' : 'False' };
    default:
      if (value === null) return { kind: 'null' };
      if (value instanceof Uint8Array)
        return { kind: 'scalar', type: 'bytes', text: Buffer.from(value).toString('utf8'), raw: value };
      throw new TreeSyntaxError(`unsupported YAML value at ${where()}`);
  }
}

/** An order-preserving, strict JSON reader that keeps integers apart from floats, as SOPS does. */
function parseJsonDocument(src: string): TreeMap {
  let i = 0;
  const pos = (): string => {
    const before = src.slice(0, i);
    const line = before.split('\n').length;
    return `line ${line}, column ${i - before.lastIndexOf('\n')}`;
  };
  const fail = (what: string): never => {
    throw new TreeSyntaxError(`invalid JSON at ${pos()}: ${what}`);
  };
  const ws = () => {
    while (i < src.length && (src[i] === ' ' || src[i] === '\t' || src[i] === '\n' || src[i] === '\r')) i++;
  };
  // biome-ignore lint/suspicious/noControlCharactersInRegex: JSON strings may not hold raw control characters.
  const stringRe = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
  const numberRe = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;
  const string = (): string => {
    stringRe.lastIndex = i;
    const m = stringRe.exec(src);
    if (!m) return fail('expected a string');
    i += m[0].length;
    return JSON.parse(m[0]) as string;
  };
  const value = (depth: number): TreeNode => {
    if (depth > 512) fail('nesting is too deep');
    ws();
    const c = src[i];
    if (c === '{') {
      i++;
      const entries: TreeMap['entries'] = [];
      ws();
      if (src[i] === '}') {
        i++;
        return { kind: 'map', entries };
      }
      for (;;) {
        ws();
        const key = string();
        ws();
        if (src[i] !== ':') fail('expected ":"');
        i++;
        entries.push({ key, value: value(depth + 1) });
        ws();
        if (src[i] === ',') {
          i++;
          continue;
        }
        if (src[i] === '}') {
          i++;
          return { kind: 'map', entries };
        }
        fail('expected "," or "}"');
      }
    }
    if (c === '[') {
      i++;
      const items: TreeNode[] = [];
      ws();
      if (src[i] === ']') {
        i++;
        return { kind: 'list', items };
      }
      for (;;) {
        items.push(value(depth + 1));
        ws();
        if (src[i] === ',') {
          i++;
          continue;
        }
        if (src[i] === ']') {
          i++;
          return { kind: 'list', items };
        }
        fail('expected "," or "]"');
      }
    }
    if (c === '"') return str(string());
    for (const [word, node] of [
      ['true', { kind: 'scalar', type: 'bool', text: 'True' }],
      ['false', { kind: 'scalar', type: 'bool', text: 'False' }],
      ['null', { kind: 'null' }],
    ] as const) {
      if (src.startsWith(word, i)) {
        i += word.length;
        return node;
      }
    }
    numberRe.lastIndex = i;
    const m = numberRe.exec(src);
    if (!m) return fail(i >= src.length ? 'unexpected end of input' : 'unexpected character');
    i += m[0].length;
    // As SOPS reads JSON: an integer when it is one within 64 bits, a float otherwise.
    if (m[1] === undefined && m[2] === undefined) {
      const n = BigInt(m[0]);
      if (n >= int64Min && n <= int64Max) return { kind: 'scalar', type: 'int', text: n.toString() };
    }
    const f = Number(m[0]);
    if (!Number.isFinite(f)) fail('number out of range');
    return { kind: 'scalar', type: 'float', text: formatGoFloat(f) };
  };
  ws();
  if (src[i] !== '{') fail('a SOPS JSON file must be an object at the top');
  const root = value(0) as TreeMap;
  ws();
  if (i < src.length) fail('unexpected content after the top-level object');
  return root;
}

// ---------------------------------------------------------------------------
// Plain YAML scalars as SOPS's Go YAML reader (yaml.v3) types them

const plainWords: Record<string, TreeScalar | TreeNull> = {
  true: { kind: 'scalar', type: 'bool', text: 'True' },
  True: { kind: 'scalar', type: 'bool', text: 'True' },
  TRUE: { kind: 'scalar', type: 'bool', text: 'True' },
  false: { kind: 'scalar', type: 'bool', text: 'False' },
  False: { kind: 'scalar', type: 'bool', text: 'False' },
  FALSE: { kind: 'scalar', type: 'bool', text: 'False' },
  '': { kind: 'null' },
  '~': { kind: 'null' },
  null: { kind: 'null' },
  Null: { kind: 'null' },
  NULL: { kind: 'null' },
};
for (const w of ['.nan', '.NaN', '.NAN']) plainWords[w] = { kind: 'scalar', type: 'float', text: 'NaN' };
for (const w of ['.inf', '.Inf', '.INF', '+.inf', '+.Inf', '+.INF'])
  plainWords[w] = { kind: 'scalar', type: 'float', text: '+Inf' };
for (const w of ['-.inf', '-.Inf', '-.INF']) plainWords[w] = { kind: 'scalar', type: 'float', text: '-Inf' };

const yamlStyleFloat = /^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/;

/**
 * The SOPS type of an unquoted, untagged YAML scalar, from its source text; undefined
 * for an integer beyond 64 bits (which SOPS cannot hold either).
 */
export function resolvePlainScalar(source: string): TreeScalar | TreeNull | undefined {
  const word = Object.hasOwn(plainWords, source) ? plainWords[source] : undefined;
  if (word) return word;
  const c = source[0] ?? '';
  if (c === '.') {
    const f = parseGoFloat(source);
    return f === undefined ? str(source) : { kind: 'scalar', type: 'float', text: formatGoFloat(f) };
  }
  if (!/[-+0-9]/.test(c)) return str(source);
  const time = parseYamlTimestamp(source);
  if (time) return { kind: 'scalar', type: 'time', text: time };
  const plain = source.replaceAll('_', '');
  const n = parseGoIntBase0(plain);
  if (n !== undefined) {
    if (n >= int64Min && n <= int64Max) return { kind: 'scalar', type: 'int', text: n.toString() };
    if (n >= 0n && n < 2n ** 64n) return undefined;
  }
  if (yamlStyleFloat.test(plain)) {
    const f = Number(plain);
    if (Number.isFinite(f)) return { kind: 'scalar', type: 'float', text: formatGoFloat(f) };
  }
  return str(source);
}

/** Go's strconv.ParseInt(s, 0, …) without the range check: sign, then 0x/0o/0b/0 prefixes. */
function parseGoIntBase0(s: string): bigint | undefined {
  const m = /^([+-]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)$/.exec(s);
  if (!m) return undefined;
  const [, sign, body = ''] = m;
  let n: bigint;
  if (/^0[oO]/.test(body)) n = BigInt(`0o${body.slice(2)}`);
  else if (/^0[0-7]+$/.test(body)) n = BigInt(`0o${body.slice(1)}`);
  else n = BigInt(body.toLowerCase());
  return sign === '-' ? -n : n;
}

/** A timestamp as yaml.v3 reads one, in Go's RFC 3339 text form; undefined when it is none. */
function parseYamlTimestamp(s: string): string | undefined {
  const m =
    /^(\d{4})-(\d{1,2})-(\d{1,2})(?:(?:[Tt](\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2}))|(?: (\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d+))?))?$/.exec(
      s,
    );
  if (!m) return undefined;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const hour = Number(m[4] ?? m[9] ?? 0);
  const minute = Number(m[5] ?? m[10] ?? 0);
  const second = Number(m[6] ?? m[11] ?? 0);
  const fraction = (m[7] ?? m[12] ?? '').slice(0, 9).replace(/0+$/, '');
  const zone = m[8] === undefined || m[8] === '+00:00' || m[8] === '-00:00' ? 'Z' : m[8];
  const date = new Date(Date.UTC(year, month - 1, day));
  if (date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) return undefined;
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${m[1]}-${pad(month)}-${pad(day)}T${pad(hour)}:${pad(minute)}:${pad(second)}${fraction ? `.${fraction}` : ''}${zone}`;
}

// ---------------------------------------------------------------------------
// Numbers as Go formats and parses them

/** Go's strconv.FormatFloat(x, 'f', -1, 64): the shortest round-tripping digits, never an exponent. */
export function formatGoFloat(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Number.POSITIVE_INFINITY) return '+Inf';
  if (x === Number.NEGATIVE_INFINITY) return '-Inf';
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  const [mantissa = '', exponent = '0'] = x.toExponential().split('e');
  const negative = mantissa.startsWith('-');
  const digits = mantissa.replace('-', '').replace('.', '');
  const point = Number(exponent) + 1;
  let out: string;
  if (point <= 0) out = `0.${'0'.repeat(-point)}${digits}`;
  else if (point >= digits.length) out = digits + '0'.repeat(point - digits.length);
  else out = `${digits.slice(0, point)}.${digits.slice(point)}`;
  return negative ? `-${out}` : out;
}

/** Go's strconv.ParseFloat for the forms SOPS writes; undefined when it is not one. */
export function parseGoFloat(text: string): number | undefined {
  const lower = text.toLowerCase();
  if (/^[+-]?(inf|infinity)$/.test(lower)) return lower.startsWith('-') ? -Infinity : Infinity;
  if (/^[+-]?nan$/.test(lower)) return Number.NaN;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/.test(lower)) return undefined;
  return Number(text);
}

/** Go's strconv.Atoi (64-bit): optional sign and decimal digits. */
export function parseGoInt(text: string): bigint | undefined {
  if (!/^[+-]?\d+$/.test(text)) return undefined;
  const n = BigInt(text);
  return n >= int64Min && n <= int64Max ? n : undefined;
}

/** Go's strconv.ParseBool. */
export function parseGoBool(text: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text)) return false;
  return undefined;
}

// ---------------------------------------------------------------------------
// To plain values

/** The value of a decrypted scalar, typed as SOPS types it. */
export function scalarValue(node: TreeScalar): unknown {
  switch (node.type) {
    case 'int': {
      const n = BigInt(node.text);
      return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
    }
    case 'float':
      return parseGoFloat(node.text);
    case 'bool':
      return node.text === 'True';
    case 'bytes':
      return node.raw ?? Buffer.from(node.text, 'utf8');
    default:
      return node.text;
  }
}

/** Plain JS values: objects for maps (created in the tree's order), or `Map`s when asked. */
export function toPlain(node: TreeNode, opts: { maps?: boolean } = {}): unknown {
  switch (node.kind) {
    case 'map': {
      const entries = node.entries.map((e): [string, unknown] => [e.key, toPlain(e.value, opts)]);
      return opts.maps ? new Map(entries) : Object.fromEntries(entries);
    }
    case 'list':
      return node.items.map((item) => toPlain(item, opts));
    case 'null':
      return null;
    default:
      return scalarValue(node);
  }
}

// ---------------------------------------------------------------------------
// Writing

/** Writes documents as YAML (a `---`-separated stream) or JSON (one document). */
export function emitTree(docs: readonly TreeMap[], format: SopsFormat): string {
  if (format === 'json') {
    if (docs.length !== 1) throw new Error('a JSON SOPS file holds exactly one document');
    return `${emitJson(docs[0] as TreeMap, '')}\n`;
  }
  return docs
    .map((d) => {
      const doc = new Document();
      doc.contents = yamlFrom(d, doc) as YAMLMap;
      return doc.toString({ lineWidth: 0, indentSeq: true });
    })
    .join('---\n');
}

function yamlFrom(node: TreeNode, doc: Document): Node {
  switch (node.kind) {
    case 'map': {
      const map = new YAMLMap();
      for (const e of node.entries) {
        const key = new Scalar(e.key);
        quoteIfNotString(key, e.key);
        map.items.push(new Pair(key, yamlFrom(e.value, doc)));
      }
      return map;
    }
    case 'list': {
      const seq = new YAMLSeq();
      for (const item of node.items) seq.items.push(yamlFrom(item, doc));
      return seq;
    }
    case 'null':
      return new Scalar(null);
    default: {
      if (node.type === 'str' && node.text.includes('\n') && node.text.startsWith('-----BEGIN')) {
        const block = new Scalar(node.text);
        block.type = 'BLOCK_LITERAL';
        return block;
      }
      const scalar = new Scalar(node.type === 'int' ? BigInt(node.text) : scalarValue(node));
      if (node.type === 'str' || node.type === 'time') quoteIfNotString(scalar, node.text);
      return scalar;
    }
  }
}

/** Quotes a string SOPS's YAML reader would take for something else (a date, `0644`, `1_000`). */
function quoteIfNotString(scalar: Scalar, text: string): void {
  const resolved = resolvePlainScalar(text);
  if (resolved?.kind !== 'scalar' || resolved.type !== 'str') scalar.type = 'QUOTE_DOUBLE';
}

function emitJson(node: TreeNode, indent: string): string {
  const inner = `${indent}    `;
  switch (node.kind) {
    case 'map':
      if (node.entries.length === 0) return '{}';
      return `{\n${node.entries
        .map((e) => `${inner}${JSON.stringify(e.key)}: ${emitJson(e.value, inner)}`)
        .join(',\n')}\n${indent}}`;
    case 'list':
      if (node.items.length === 0) return '[]';
      return `[\n${node.items.map((item) => inner + emitJson(item, inner)).join(',\n')}\n${indent}]`;
    case 'null':
      return 'null';
    default:
      switch (node.type) {
        case 'int':
          return node.text;
        case 'float': {
          const f = parseGoFloat(node.text);
          if (f === undefined || !Number.isFinite(f)) throw new Error('JSON cannot hold NaN or infinities');
          // Keep it a float for readers that tell them apart, as SOPS does.
          const s = String(f);
          return /[.eE]/.test(s) ? s : `${s}.0`;
        }
        case 'bool':
          return node.text === 'True' ? 'true' : 'false';
        default:
          return JSON.stringify(node.text);
      }
  }
}
