/**
 * The Kubernetes CEL extension libraries that admission policies use, on top of what
 * `@bufbuild/cel` ships (the standard library and the `strings` extension: charAt,
 * indexOf, lastIndexOf, lowerAscii, upperAscii, replace, split, substring, trim, join,
 * format, quote, reverse). Written from the Kubernetes documentation of
 * k8s.io/apiserver/pkg/cel/library: lists, sets, regex, quantity, url and format (with the
 * optional values it returns, in cel-format.ts).
 *
 * Quantities and URLs are opaque values in Kubernetes' CEL; here they are small protobuf
 * messages (`kubernetes.Quantity`, `kubernetes.URL`), which is how `@bufbuild/cel` types
 * values of its own: overloads resolve on them and `==` compares them. A quantity holds its
 * exact value, so `quantity('1Gi') == quantity('1024Mi')` as in Kubernetes.
 */
import {
  type CelFunc,
  type CelList,
  CelScalar,
  type CelValue,
  celFunc,
  celList,
  celMap,
  celMethod,
  isCelList,
  listType,
  objectType,
} from '@bufbuild/cel';
import { strings } from '@bufbuild/cel/ext';
import { create, createFileRegistry, type DescMessage } from '@bufbuild/protobuf';
import { isReflectMessage, type ReflectMessage, reflect } from '@bufbuild/protobuf/reflect';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import { RE2JS } from '@bufbuild/re2';
import { FORMAT_CEL_FUNCS } from './cel-format.ts';
import {
  addRational,
  compareRational,
  negate,
  parseQuantity,
  type Rational,
  rational,
  rationalFromKey,
  rationalKey,
} from './quantity.ts';

const { INT, DOUBLE, STRING, BOOL, DYN } = CelScalar;

const file = createFileRegistry(
  create(FileDescriptorProtoSchema, {
    name: 'flotilla/kubernetes-cel.proto',
    package: 'kubernetes',
    syntax: 'proto3',
    messageType: [
      { name: 'Quantity', field: [{ name: 'exact', number: 1, type: 9, label: 1, jsonName: 'exact' }] },
      { name: 'URL', field: [{ name: 'raw', number: 1, type: 9, label: 1, jsonName: 'raw' }] },
    ],
  }),
  () => undefined,
);

function messageDesc(name: string): DescMessage {
  const desc = file.getMessage(name);
  if (!desc) throw new Error(`${name} is missing from the CEL type registry`);
  return desc;
}

const QuantityDesc = messageDesc('kubernetes.Quantity');
const UrlDesc = messageDesc('kubernetes.URL');
const QUANTITY = objectType(QuantityDesc);
const URL_TYPE = objectType(UrlDesc);

// ---- quantity -------------------------------------------------------------------------

function quantityValue(value: Rational): ReflectMessage {
  return reflect(QuantityDesc, create(QuantityDesc, { exact: rationalKey(value) }));
}

function rationalOf(q: CelValue): Rational {
  if (!isReflectMessage(q) || q.desc.typeName !== QuantityDesc.typeName) throw new Error('not a quantity');
  return rationalFromKey((q.message as unknown as { exact: string }).exact);
}

function toQuantity(text: string): ReflectMessage {
  const value = parseQuantity(text);
  if (!value)
    throw new Error(
      `quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'`,
    );
  return quantityValue(value);
}

const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);

const quantityFuncs: CelFunc[] = [
  celFunc('quantity', [STRING], QUANTITY, (s) => toQuantity(s)),
  celFunc('isQuantity', [STRING], BOOL, (s) => parseQuantity(s) !== undefined),
  celMethod('sign', QUANTITY, [], INT, function () {
    const v = rationalOf(this);
    return v.num > 0n ? 1n : v.num < 0n ? -1n : 0n;
  }),
  celMethod('isInteger', QUANTITY, [], BOOL, function () {
    const v = rationalOf(this);
    return v.den === 1n && v.num <= INT64_MAX && v.num >= INT64_MIN;
  }),
  celMethod('asInteger', QUANTITY, [], INT, function () {
    const v = rationalOf(this);
    if (v.den !== 1n || v.num > INT64_MAX || v.num < INT64_MIN) {
      throw new Error('cannot convert value to integer');
    }
    return v.num;
  }),
  celMethod('asApproximateFloat', QUANTITY, [], DOUBLE, function () {
    const v = rationalOf(this);
    return Number(v.num) / Number(v.den);
  }),
  celMethod('compareTo', QUANTITY, [QUANTITY], INT, function (other) {
    return BigInt(compareRational(rationalOf(this), rationalOf(other)));
  }),
  celMethod('isGreaterThan', QUANTITY, [QUANTITY], BOOL, function (other) {
    return compareRational(rationalOf(this), rationalOf(other)) > 0;
  }),
  celMethod('isLessThan', QUANTITY, [QUANTITY], BOOL, function (other) {
    return compareRational(rationalOf(this), rationalOf(other)) < 0;
  }),
  celMethod('add', QUANTITY, [QUANTITY], QUANTITY, function (other) {
    return quantityValue(addRational(rationalOf(this), rationalOf(other)));
  }),
  celMethod('add', QUANTITY, [INT], QUANTITY, function (other) {
    return quantityValue(addRational(rationalOf(this), rational(other, 1n)));
  }),
  celMethod('sub', QUANTITY, [QUANTITY], QUANTITY, function (other) {
    return quantityValue(addRational(rationalOf(this), negate(rationalOf(other))));
  }),
  celMethod('sub', QUANTITY, [INT], QUANTITY, function (other) {
    return quantityValue(addRational(rationalOf(this), rational(-other, 1n)));
  }),
];

// ---- url ------------------------------------------------------------------------------

interface ParsedUrl {
  readonly scheme: string;
  readonly host: string;
  readonly path: string;
  readonly query: string;
}

// Go's url.ParseRequestURI, which Kubernetes' url() uses: an absolute URI or an absolute path.
const ABSOLUTE_URI = /^([A-Za-z][A-Za-z0-9+.-]*):(?:\/\/([^/?]*))?([^?]*)(?:\?(.*))?$/s;

function parseUrl(raw: string): ParsedUrl | undefined {
  if (raw.startsWith('/')) {
    const q = raw.indexOf('?');
    return {
      scheme: '',
      host: '',
      path: q < 0 ? raw : raw.slice(0, q),
      query: q < 0 ? '' : raw.slice(q + 1),
    };
  }
  const m = ABSOLUTE_URI.exec(raw);
  if (!m) return undefined;
  const [, scheme = '', authority = '', path = '', query = ''] = m;
  if (/\s/.test(raw) || [...raw].some((ch) => (ch.codePointAt(0) ?? 0) < 0x20 || ch === '\u007f'))
    return undefined;
  // Userinfo is not part of the host.
  const at = authority.lastIndexOf('@');
  const host = at < 0 ? authority : authority.slice(at + 1);
  if (host.startsWith('[') && !/^\[[0-9A-Fa-f:.%a-zA-Z]+\](:[0-9]*)?$/.test(host)) return undefined;
  if (!host.startsWith('[') && host.split(':').length > 2) return undefined;
  const port = host.startsWith('[') ? host.slice(host.indexOf(']') + 1) : host.slice(host.indexOf(':') >>> 0);
  if (port.startsWith(':') && !/^:[0-9]*$/.test(port)) return undefined;
  return { scheme, host, path, query };
}

function urlValue(raw: string): ReflectMessage {
  if (!parseUrl(raw)) throw new Error(`URL parse error during conversion from string: ${raw}`);
  return reflect(UrlDesc, create(UrlDesc, { raw }));
}

function urlOf(u: CelValue): ParsedUrl {
  if (!isReflectMessage(u) || u.desc.typeName !== UrlDesc.typeName) throw new Error('not a URL');
  const parsed = parseUrl((u.message as unknown as { raw: string }).raw);
  if (!parsed) throw new Error('not a URL');
  return parsed;
}

function hostname(host: string): string {
  if (host.startsWith('[')) return host.slice(1, host.indexOf(']'));
  const colon = host.indexOf(':');
  return colon < 0 ? host : host.slice(0, colon);
}

function port(host: string): string {
  const after = host.startsWith('[')
    ? host.slice(host.indexOf(']') + 1)
    : host.slice(Math.max(0, host.indexOf(':')));
  return after.startsWith(':') ? after.slice(1) : '';
}

function queryUnescape(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

const urlFuncs: CelFunc[] = [
  celFunc('url', [STRING], URL_TYPE, (s) => urlValue(s)),
  celFunc('isURL', [STRING], BOOL, (s) => parseUrl(s) !== undefined),
  celMethod('getScheme', URL_TYPE, [], STRING, function () {
    return urlOf(this).scheme;
  }),
  celMethod('getHost', URL_TYPE, [], STRING, function () {
    return urlOf(this).host;
  }),
  celMethod('getHostname', URL_TYPE, [], STRING, function () {
    return hostname(urlOf(this).host);
  }),
  celMethod('getPort', URL_TYPE, [], STRING, function () {
    return port(urlOf(this).host);
  }),
  celMethod('getEscapedPath', URL_TYPE, [], STRING, function () {
    return urlOf(this).path;
  }),
  celMethod('getQuery', URL_TYPE, [], DYN, function () {
    const out = new Map<string, string[]>();
    const query = urlOf(this).query;
    if (query === '') return celMap(new Map());
    for (const part of query.split('&')) {
      if (part === '' || part.includes(';')) continue;
      const eq = part.indexOf('=');
      const key = queryUnescape(eq < 0 ? part : part.slice(0, eq));
      const value = eq < 0 ? '' : queryUnescape(part.slice(eq + 1));
      out.set(key, [...(out.get(key) ?? []), value]);
    }
    return celMap(new Map([...out].map(([k, v]) => [k, celList(v)])));
  }),
];

// ---- regex ----------------------------------------------------------------------------

/**
 * Compiles an RE2 pattern: RE2 decides what is valid (as the API server does), and the
 * search itself runs on JavaScript's engine, which agrees with RE2 on the patterns RE2 accepts
 * apart from a few Unicode classes.
 */
function regex(pattern: string): RegExp {
  RE2JS.compile(pattern);
  return new RegExp(pattern, 'gu');
}

const regexFuncs: CelFunc[] = [
  celMethod('find', STRING, [STRING], STRING, function (pattern) {
    const re = regex(pattern);
    return re.exec(this)?.[0] ?? '';
  }),
  celMethod('findAll', STRING, [STRING], DYN, function (pattern) {
    return celList([...this.matchAll(regex(pattern))].map((m) => m[0]));
  }),
  celMethod('findAll', STRING, [STRING, INT], DYN, function (pattern, limit) {
    const all = [...this.matchAll(regex(pattern))].map((m) => m[0]);
    return celList(limit < 0n ? all : all.slice(0, Number(limit)));
  }),
];

// ---- lists ----------------------------------------------------------------------------

function items(list: CelList): CelValue[] {
  return [...list];
}

type Comparable = bigint | number | string | boolean;

function compare(a: CelValue, b: CelValue): number {
  const isNum = (v: unknown) => typeof v === 'bigint' || typeof v === 'number';
  if (isNum(a) && isNum(b)) {
    const x = a as bigint | number;
    const y = b as bigint | number;
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (typeof a === typeof b && (typeof a === 'string' || typeof a === 'boolean')) {
    const x = a as Comparable;
    const y = b as Comparable;
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (isReflectMessage(a) && a.desc.typeName === QuantityDesc.typeName) {
    return compareRational(rationalOf(a), rationalOf(b));
  }
  throw new Error(`no such overload: cannot compare ${typeName(a)} and ${typeName(b)}`);
}

function typeName(v: CelValue): string {
  if (typeof v === 'bigint') return 'int';
  if (typeof v === 'number') return 'double';
  if (v === null) return 'null';
  if (isCelList(v)) return 'list';
  if (isReflectMessage(v)) return v.desc.typeName;
  return typeof v;
}

function sameValue(a: CelValue, b: CelValue): boolean {
  try {
    return compare(a, b) === 0;
  } catch {
    return JSON.stringify(toJsonish(a)) === JSON.stringify(toJsonish(b));
  }
}

function toJsonish(v: unknown): unknown {
  if (typeof v === 'bigint') return `${v}n`;
  if (isCelList(v)) return [...v].map(toJsonish);
  if (v && typeof v === 'object' && Symbol.iterator in v) {
    return [...(v as Iterable<[unknown, unknown]>)].map(([k, x]) => [toJsonish(k), toJsonish(x)]);
  }
  if (isReflectMessage(v)) return v.desc.typeName + JSON.stringify(v.message);
  return v;
}

function flatten(list: CelList, depth: number): CelValue[] {
  const out: CelValue[] = [];
  for (const v of list) {
    if (isCelList(v) && depth > 0) out.push(...flatten(v, depth - 1));
    else out.push(v);
  }
  return out;
}

function listFuncs(): CelFunc[] {
  const L = listType(DYN);
  return [
    celMethod('isSorted', L, [], BOOL, function () {
      const xs = items(this);
      for (let i = 1; i < xs.length; i++)
        if (compare(xs[i - 1] as CelValue, xs[i] as CelValue) > 0) return false;
      return true;
    }),
    celMethod('sum', L, [], DYN, function () {
      const xs = items(this);
      if (xs.length === 0) return 0n;
      if (xs.every((x) => typeof x === 'bigint')) return (xs as bigint[]).reduce((a, b) => a + b, 0n);
      if (xs.every((x) => typeof x === 'number')) return (xs as number[]).reduce((a, b) => a + b, 0);
      throw new Error('sum: the list must hold only ints or only doubles');
    }),
    celMethod('min', L, [], DYN, function () {
      const xs = items(this);
      if (xs.length === 0) throw new Error('min called on empty list');
      return xs.reduce((a, b) => (compare(b, a) < 0 ? b : a));
    }),
    celMethod('max', L, [], DYN, function () {
      const xs = items(this);
      if (xs.length === 0) throw new Error('max called on empty list');
      return xs.reduce((a, b) => (compare(b, a) > 0 ? b : a));
    }),
    celMethod('indexOf', L, [DYN], INT, function (x) {
      return BigInt(items(this).findIndex((v) => sameValue(v, x)));
    }),
    celMethod('lastIndexOf', L, [DYN], INT, function (x) {
      return BigInt(items(this).findLastIndex((v) => sameValue(v, x)));
    }),
    celMethod('slice', L, [INT, INT], DYN, function (start, end) {
      const xs = items(this);
      if (start < 0n || end < 0n)
        throw new Error(`cannot slice(${start}, ${end}), negative indexes not supported`);
      if (start > end)
        throw new Error(
          `cannot slice(${start}, ${end}), start index must be less than or equal to end index`,
        );
      if (end > BigInt(xs.length))
        throw new Error(`cannot slice(${start}, ${end}), list is length ${xs.length}`);
      return celList(xs.slice(Number(start), Number(end)));
    }),
    celMethod('flatten', L, [], DYN, function () {
      return celList(flatten(this, 1));
    }),
    celMethod('flatten', L, [INT], DYN, function (depth) {
      if (depth < 0n) throw new Error('level must be non-negative');
      return celList(flatten(this, Number(depth)));
    }),
    celMethod('distinct', L, [], DYN, function () {
      const out: CelValue[] = [];
      for (const v of this) if (!out.some((o) => sameValue(o, v))) out.push(v);
      return celList(out);
    }),
    celMethod('reverse', L, [], DYN, function () {
      return celList(items(this).reverse());
    }),
    celMethod('sort', L, [], DYN, function () {
      return celList(items(this).sort(compare));
    }),
    // sets: lists treated as sets, compared by value.
    celFunc('sets.contains', [L, L], BOOL, (a, b) =>
      items(b).every((x) => items(a).some((y) => sameValue(x, y))),
    ),
    celFunc(
      'sets.equivalent',
      [L, L],
      BOOL,
      (a, b) =>
        items(b).every((x) => items(a).some((y) => sameValue(x, y))) &&
        items(a).every((x) => items(b).some((y) => sameValue(x, y))),
    ),
    celFunc('sets.intersects', [L, L], BOOL, (a, b) =>
      items(a).some((x) => items(b).some((y) => sameValue(x, y))),
    ),
  ];
}

/** Every function a policy expression may call beyond CEL's standard library. */
export const KUBERNETES_CEL_FUNCS: readonly CelFunc[] = [
  ...strings,
  ...quantityFuncs,
  ...urlFuncs,
  ...regexFuncs,
  ...listFuncs(),
  ...FORMAT_CEL_FUNCS,
];

export { QuantityDesc, UrlDesc };
