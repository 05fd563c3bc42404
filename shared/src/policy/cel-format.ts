/**
 * The Kubernetes `format` CEL library and the optional values it returns, written from the
 * Kubernetes documentation of k8s.io/apiserver/pkg/cel/library (format) and of the
 * apimachinery validation functions it calls, whose messages it repeats word for word:
 *
 * ```cel
 * !format.dns1123Label().validate(object.metadata.name).hasValue()
 * format.named('labelValue').value().validate(x).value().join(', ')
 * ```
 *
 * `@bufbuild/cel` has no optional type, so optionals and formats are small protobuf messages
 * (`kubernetes.Optional`, `kubernetes.Format`), as quantities and URLs are in
 * cel-library.ts. An optional's value can be any CEL value, which no protobuf field holds: it
 * is kept beside the message, and the message holds its present flag and a canonical text of
 * the value, so that `==` compares two optionals by value. The optional syntax (`a.?b`,
 * `[?x]`) is not supported: the parser refuses it.
 */
import {
  type CelFunc,
  CelScalar,
  type CelValue,
  celFunc,
  celList,
  celMethod,
  objectType,
} from '@bufbuild/cel';
import { create, createFileRegistry, type DescMessage, type Message } from '@bufbuild/protobuf';
import { isReflectMessage, type ReflectMessage, reflect } from '@bufbuild/protobuf/reflect';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';

const { STRING, BOOL, DYN } = CelScalar;

const file = createFileRegistry(
  create(FileDescriptorProtoSchema, {
    name: 'flotilla/kubernetes-cel-format.proto',
    package: 'kubernetes',
    syntax: 'proto3',
    messageType: [
      {
        name: 'Optional',
        field: [
          { name: 'present', number: 1, type: 8, label: 1, jsonName: 'present' },
          { name: 'key', number: 2, type: 9, label: 1, jsonName: 'key' },
        ],
      },
      { name: 'Format', field: [{ name: 'name', number: 1, type: 9, label: 1, jsonName: 'name' }] },
    ],
  }),
  () => undefined,
);

function messageDesc(name: string): DescMessage {
  const desc = file.getMessage(name);
  if (!desc) throw new Error(`${name} is missing from the CEL type registry`);
  return desc;
}

export const OptionalDesc = messageDesc('kubernetes.Optional');
export const FormatDesc = messageDesc('kubernetes.Format');
const OPTIONAL = objectType(OptionalDesc);
const FORMAT = objectType(FormatDesc);

// ---- optional -------------------------------------------------------------------------

const optionalValues = new WeakMap<Message, CelValue>();

/** A CEL optional holding `value`, or none. */
export function optionalOf(value: CelValue | undefined): ReflectMessage {
  const present = value !== undefined;
  const message = create(OptionalDesc, { present, key: present ? canonical(value) : '' });
  if (present) optionalValues.set(message, value);
  return reflect(OptionalDesc, message);
}

/** What an optional holds (undefined when none). */
export function optionalValue(opt: CelValue): CelValue | undefined {
  if (!isReflectMessage(opt) || opt.desc.typeName !== OptionalDesc.typeName)
    throw new Error('not an optional');
  return optionalValues.get(opt.message);
}

// A text equal for equal CEL values, so that `optional.of(x) == optional.of(y)` compares x and y.
function canonical(v: unknown): string {
  if (typeof v === 'bigint') return `${v}i`;
  if (typeof v === 'string') return JSON.stringify(v);
  if (v instanceof Uint8Array) return `b${[...v].join(',')}`;
  if (isReflectMessage(v)) {
    const inner = optionalValues.get(v.message);
    return `${v.desc.typeName}${JSON.stringify(v.message, (_k, x) => (typeof x === 'bigint' ? `${x}` : x))}${inner === undefined ? '' : canonical(inner)}`;
  }
  if (v !== null && typeof v === 'object' && Symbol.iterator in v) {
    const entries = [...(v as Iterable<unknown>)];
    if (entries.every((e) => Array.isArray(e) && e.length === 2)) {
      return `{${entries
        .map((e) => `${canonical((e as unknown[])[0])}:${canonical((e as unknown[])[1])}`)
        .sort()
        .join(',')}}`;
    }
    return `[${entries.map(canonical).join(',')}]`;
  }
  return String(v);
}

const optionalFuncs: CelFunc[] = [
  celFunc('optional.of', [DYN], OPTIONAL, (v) => optionalOf(v)),
  celFunc('optional.none', [], OPTIONAL, () => optionalOf(undefined)),
  celMethod('hasValue', OPTIONAL, [], BOOL, function () {
    return optionalValue(this) !== undefined;
  }),
  celMethod('value', OPTIONAL, [], DYN, function () {
    const v = optionalValue(this);
    if (v === undefined) throw new Error('optional.none() dereference');
    return v;
  }),
  celMethod('orValue', OPTIONAL, [DYN], DYN, function (other) {
    return optionalValue(this) ?? other;
  }),
  celMethod('or', OPTIONAL, [OPTIONAL], OPTIONAL, function (other) {
    return optionalValue(this) === undefined ? other : this;
  }),
];

// ---- the validation functions, with apimachinery's messages --------------------------

const utf8 = new TextEncoder();
const byteLength = (s: string) => utf8.encode(s).length;

function regexError(msg: string, pattern: string, ...examples: string[]): string {
  if (examples.length === 0) return `${msg} (regex used for validation is '${pattern}')`;
  return `${msg} (e.g. ${examples.map((e) => `'${e}', `).join(' or ')}regex used for validation is '${pattern}')`;
}

// util/validation says characters, the newer validate/content package says bytes; the format
// library reaches both (the DNS names through the first, label keys and values the second).
const maxLenChars = (n: number) => `must be no more than ${n} characters`;
const maxLenBytes = (n: number) => `must be no more than ${n} bytes`;

const DNS1123_LABEL = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const DNS1123_SUBDOMAIN = `${DNS1123_LABEL}(\\.${DNS1123_LABEL})*`;
const DNS1035_LABEL = '[a-z]([-a-z0-9]*[a-z0-9])?';
const LABEL_KEY = '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]';
const LABEL_VALUE = `(${LABEL_KEY})?`;
const whole = (pattern: string) => new RegExp(`^${pattern}$`);
const dns1123LabelRe = whole(DNS1123_LABEL);
const dns1123SubdomainRe = whole(DNS1123_SUBDOMAIN);
const dns1035LabelRe = whole(DNS1035_LABEL);
const labelKeyRe = whole(LABEL_KEY);
const labelValueRe = whole(LABEL_VALUE);

function dns1123Label(value: string): string[] {
  const errs: string[] = [];
  if (byteLength(value) > 63) errs.push(maxLenChars(63));
  if (!dns1123LabelRe.test(value)) {
    errs.push(
      dns1123SubdomainRe.test(value)
        ? 'must not contain dots'
        : regexError(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
            DNS1123_LABEL,
            'my-name',
            '123-abc',
          ),
    );
  }
  return errs;
}

function dns1123Subdomain(value: string, maxLen = maxLenChars): string[] {
  const errs: string[] = [];
  if (byteLength(value) > 253) errs.push(maxLen(253));
  if (!dns1123SubdomainRe.test(value)) {
    errs.push(
      regexError(
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
        DNS1123_SUBDOMAIN,
        'example.com',
      ),
    );
  }
  return errs;
}

function dns1035Label(value: string): string[] {
  const errs: string[] = [];
  if (byteLength(value) > 63) errs.push(maxLenChars(63));
  if (!dns1035LabelRe.test(value)) {
    errs.push(
      regexError(
        "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character",
        DNS1035_LABEL,
        'my-name',
        'abc-123',
      ),
    );
  }
  return errs;
}

/**
 * A generated name's prefix may end in '-': Kubernetes masks that dash before checking, by
 * replacing the last two characters with 'a' (so `ab-` is checked as `aa`).
 */
function maskTrailingDash(name: string): string {
  return name.length > 1 && name.endsWith('-') ? `${name.slice(0, -2)}a` : name;
}

const LABEL_KEY_MSG =
  "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

function qualifiedName(value: string): string[] {
  const errs: string[] = [];
  const parts = value.split('/');
  if (parts.length > 2) {
    return [
      `a valid label key ${regexError(LABEL_KEY_MSG, LABEL_KEY, 'MyName', 'my.name', '123-abc')} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`,
    ];
  }
  const name = parts.length === 2 ? (parts[1] as string) : value;
  if (parts.length === 2) {
    const prefix = parts[0] as string;
    if (prefix === '') errs.push('prefix part must be non-empty');
    else errs.push(...dns1123Subdomain(prefix, maxLenBytes).map((m) => `prefix part ${m}`));
  }
  if (name === '') errs.push('name part must be non-empty');
  else if (byteLength(name) > 63) errs.push(`name part ${maxLenBytes(63)}`);
  if (!labelKeyRe.test(name))
    errs.push(`name part ${regexError(LABEL_KEY_MSG, LABEL_KEY, 'MyName', 'my.name', '123-abc')}`);
  return errs;
}

function labelValue(value: string): string[] {
  const errs: string[] = [];
  if (byteLength(value) > 63) errs.push(maxLenBytes(63));
  if (!labelValueRe.test(value)) {
    errs.push(
      regexError(
        "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
        LABEL_VALUE,
        'MyValue',
        'my_value',
        '12345',
      ),
    );
  }
  return errs;
}

const GO_ESCAPES: Readonly<Record<string, string>> = {
  '"': '\\"',
  '\\': '\\\\',
  '\u0007': '\\a',
  '\b': '\\b',
  '\f': '\\f',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\v': '\\v',
};

/** Go's `%q` of a string (its ASCII escapes; printable Unicode stays as it is). */
function goQuote(s: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: these are what Go escapes
  const quoted = s.replace(/["\\\u0000-\u001f\u007f]/g, (c) => {
    return GO_ESCAPES[c] ?? `\\x${(c.codePointAt(0) ?? 0).toString(16).padStart(2, '0')}`;
  });
  return `"${quoted}"`;
}

/**
 * Go's url.ParseRequestURI, as the `uri` format calls it, with its error text: an absolute
 * URI or an absolute path. The host is checked for its port and brackets only.
 */
function uriError(raw: string): string | undefined {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: Go refuses exactly these bytes
  if (/[\u0000-\u001f\u007f]/.test(raw)) return 'net/url: invalid control character in URL';
  if (raw === '') return 'empty url';
  if (raw === '*') return undefined;
  let rest = raw;
  let scheme = '';
  const s = /^[A-Za-z][A-Za-z0-9+.-]*:|^:/.exec(raw);
  if (s) {
    if (s[0] === ':') return 'missing protocol scheme';
    scheme = s[0].slice(0, -1);
    rest = raw.slice(s[0].length);
  }
  rest =
    rest.endsWith('?') && rest.indexOf('?') === rest.length - 1
      ? rest.slice(0, -1)
      : (rest.split('?')[0] as string);
  if (!rest.startsWith('/')) return scheme !== '' ? undefined : 'invalid URI for request';
  let path = rest;
  if (scheme !== '' && rest.startsWith('//')) {
    const authority = rest.slice(2).split('/')[0] as string;
    path = rest.slice(2 + authority.length);
    const at = authority.lastIndexOf('@');
    const host = at < 0 ? authority : authority.slice(at + 1);
    if (host.startsWith('[')) {
      const end = host.indexOf(']');
      if (end < 0) return "missing ']' in host";
      const port = host.slice(end + 1);
      if (port !== '' && !/^:[0-9]*$/.test(port)) return `invalid port ${goQuote(port)} after host`;
    } else {
      const colon = host.lastIndexOf(':');
      if (colon >= 0 && !/^:[0-9]*$/.test(host.slice(colon)))
        return `invalid port ${goQuote(host.slice(colon))} after host`;
    }
  }
  const badEscape = /%(?![0-9A-Fa-f]{2})/.exec(path);
  if (badEscape) return `invalid URL escape ${goQuote(path.slice(badEscape.index, badEscape.index + 3))}`;
  return undefined;
}

const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})$/;
const DATE_TIME_REST = /^([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))$/;

/** Go's time.Parse with layout 2006-01-02: a real day of a real month. */
function isDate(s: string): boolean {
  const m = /^([0-9]{4})-([0-9]{2})-([0-9]{2})$/.exec(s);
  if (!m) return false;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (month < 1 || month > 12 || day < 1) return false;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1] as number;
  return day <= days;
}

function isDateTime(s: string): boolean {
  if (s.length < 4) return false;
  const parts = s.toLowerCase().split('t');
  if (parts.length < 2 || !isDate(parts[0] as string)) return false;
  const m = DATE_TIME_REST.exec(parts[1] as string);
  return m !== null && (m[1] as string) <= '23' && (m[2] as string) <= '59' && (m[3] as string) <= '59';
}

const check = (ok: (s: string) => boolean, message: string) => (s: string) => (ok(s) ? [] : [message]);

/** The formats by the names `format.named` takes. */
export const FORMATS: Readonly<Record<string, (value: string) => string[]>> = {
  dns1123Label: (s) => dns1123Label(s),
  dns1123Subdomain: (s) => dns1123Subdomain(s),
  dns1035Label: (s) => dns1035Label(s),
  qualifiedName,
  dns1123LabelPrefix: (s) => dns1123Label(maskTrailingDash(s)),
  dns1123SubdomainPrefix: (s) => dns1123Subdomain(maskTrailingDash(s)),
  dns1035LabelPrefix: (s) => dns1035Label(maskTrailingDash(s)),
  labelValue,
  uri: (s) => {
    const err = uriError(s);
    return err === undefined ? [] : [`parse ${goQuote(s)}: ${err}`];
  },
  uuid: check((s) => UUID.test(s), 'does not match the UUID format'),
  byte: check((s) => BASE64.test(s), 'invalid base64'),
  date: check(isDate, 'invalid date'),
  datetime: check(isDateTime, 'invalid datetime'),
};

const formatValue = (name: string) => reflect(FormatDesc, create(FormatDesc, { name }));

function formatOf(f: CelValue): (value: string) => string[] {
  const name =
    isReflectMessage(f) && f.desc.typeName === FormatDesc.typeName
      ? (f.message as unknown as { name: string }).name
      : undefined;
  const validate = name === undefined ? undefined : FORMATS[name];
  if (!validate) throw new Error('not a format');
  return validate;
}

const formatFuncs: CelFunc[] = [
  celFunc('format.named', [STRING], OPTIONAL, (name) =>
    optionalOf(Object.hasOwn(FORMATS, name) ? formatValue(name) : undefined),
  ),
  ...Object.keys(FORMATS).map((name) => celFunc(`format.${name}`, [], FORMAT, () => formatValue(name))),
  celMethod('validate', FORMAT, [STRING], OPTIONAL, function (value) {
    const errors = formatOf(this)(value);
    return optionalOf(errors.length === 0 ? undefined : celList(errors));
  }),
];

/** The `format` library and the optional values it returns. */
export const FORMAT_CEL_FUNCS: readonly CelFunc[] = [...optionalFuncs, ...formatFuncs];
