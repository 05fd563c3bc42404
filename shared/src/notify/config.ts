/**
 * `notifications/<name>.yaml` in the fleet repo: the providers events are sent to and the
 * alerts that choose which events go where. Secrets (webhook URLs, HMAC keys) are never in
 * these files: a provider names a `secretRef` that the hub resolves from its secret store.
 *
 * @example
 * providers:
 *   - name: platform-slack
 *     type: slack
 *     secretRef: platform-slack-webhook
 * alerts:
 *   - name: prod-failures
 *     providers: [platform-slack]
 *     eventTypes: ["bundle.*", cluster.offline]
 *     severity: warning
 *     clusterSelector: env=prod
 */
import { type FleetError, fleetError, normalizeFleetErrors } from '../errors.ts';
import { parseDuration } from '../rollout-spec.ts';
import type { LabelSelector } from '../selector.ts';
import { SpecReader } from '../spec-reader.ts';
import { parseYamlFile, type YDocument, type YMap, type YNode } from '../yaml-source.ts';
import { EventSeverity, FleetEventType } from './events.ts';

export const ProviderType = {
  slack: 'slack',
  msteams: 'msteams',
  webhook: 'webhook',
  sns: 'sns',
  eventbridge: 'eventbridge',
} as const;
export type ProviderType = (typeof ProviderType)[keyof typeof ProviderType];

/** How many messages a provider may be sent per period (a token bucket holding `messages`). */
export interface RateLimit {
  readonly messages: number;
  readonly perMs: number;
}

/** Default rate limit of a provider: 20 messages a minute. */
export const DEFAULT_RATE_LIMIT: RateLimit = { messages: 20, perMs: 60_000 };

interface ProviderBase {
  readonly name: string;
  /** Where it is declared, for messages. */
  readonly file: string;
  readonly line: number;
  readonly rateLimit: RateLimit;
}

/**
 * A provider as declared. The HTTP ones (`slack`, `msteams`, `webhook`) name a secret
 * holding their URL (and, for `webhook`, the HMAC key); `sns` and `eventbridge` name
 * their topic or bus, which are not secret.
 */
export type ProviderSpec =
  | (ProviderBase & { readonly type: 'slack'; readonly secretRef: string; readonly channel?: string })
  | (ProviderBase & { readonly type: 'msteams'; readonly secretRef: string })
  | (ProviderBase & { readonly type: 'webhook'; readonly secretRef: string })
  | (ProviderBase & { readonly type: 'sns'; readonly topicArn: string })
  | (ProviderBase & { readonly type: 'eventbridge'; readonly eventBus: string; readonly source: string });

/** An alert: which events (all conditions must hold) go to which providers. */
export interface AlertSpec {
  readonly name: string;
  readonly file: string;
  readonly line: number;
  readonly providers: readonly string[];
  /** Event types or globs (`bundle.*`, `*`); all types when absent. */
  readonly eventTypes?: readonly string[];
  /** The lowest severity sent (default `info`: everything). */
  readonly severity: EventSeverity;
  /** Bundle names or globs; events about other bundles (or about none) are not sent. */
  readonly bundles?: readonly string[];
  /** Only events about a cluster whose labels match. */
  readonly clusterSelector?: LabelSelector;
}

export interface NotificationConfig {
  readonly providers: readonly ProviderSpec[];
  readonly alerts: readonly AlertSpec[];
}

export const emptyNotificationConfig: NotificationConfig = { providers: [], alerts: [] };

/** The directory of the fleet repo that holds notification files. */
export const NOTIFICATIONS_DIR = 'notifications';

const EVENT_TYPES: readonly string[] = Object.values(FleetEventType);
const SEVERITIES: readonly string[] = Object.values(EventSeverity);
const TOPIC_ARN = /^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$/;
const EVENT_BUS = /^(arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:event-bus\/)?[A-Za-z0-9._/-]{1,256}$/;
const SECRET_REF = /^[A-Za-z0-9/_+=.@-]{1,256}$/;

/**
 * Reads the notification files of a fleet repo (`notifications/*.yaml`; other paths are
 * ignored). Every problem is a {@link FleetError} with file and line, and a file with
 * problems contributes nothing, so a typo never silently widens an alert.
 */
export function loadNotifications(files: ReadonlyMap<string, string> | Iterable<[string, string]>): {
  config: NotificationConfig;
  errors: FleetError[];
} {
  const errors: FleetError[] = [];
  const providers: ProviderSpec[] = [];
  const alerts: AlertSpec[] = [];
  const sorted = [...files].filter(([p]) => isNotificationFile(p)).sort(([a], [b]) => (a < b ? -1 : 1));
  for (const [path, content] of sorted) {
    const reader = new SpecReader(path);
    const root = singleDocument(path, content, reader);
    const read = root ? readNotificationFile(reader, root) : undefined;
    if (read && reader.errors.length === 0) {
      providers.push(...read.providers);
      alerts.push(...read.alerts);
    }
    errors.push(...reader.errors);
  }
  // Names are unique across files: alerts refer to providers by name.
  const byName = new Map<string, ProviderSpec>();
  for (const p of providers) {
    const other = byName.get(p.name);
    if (other) errors.push(at(p, `provider "${p.name}" is also defined in ${other.file}:${other.line}`));
    else byName.set(p.name, p);
  }
  const alertNames = new Map<string, AlertSpec>();
  const goodAlerts: AlertSpec[] = [];
  for (const a of alerts) {
    const other = alertNames.get(a.name);
    if (other) {
      errors.push(at(a, `alert "${a.name}" is also defined in ${other.file}:${other.line}`));
      continue;
    }
    alertNames.set(a.name, a);
    const missing = a.providers.filter((p) => !byName.has(p));
    if (missing.length > 0) {
      errors.push(at(a, `alert "${a.name}": no provider named ${missing.map((m) => `"${m}"`).join(', ')}`));
      continue;
    }
    goodAlerts.push(a);
  }
  return {
    config: { providers: [...byName.values()], alerts: goodAlerts },
    errors: normalizeFleetErrors(errors),
  };
}

/** `notifications/<name>.yaml` (or `.yml`), directly in the directory. */
export function isNotificationFile(path: string): boolean {
  return /^notifications\/[^/]+\.ya?ml$/.test(path);
}

function at(spec: { file: string; line: number }, message: string): FleetError {
  return fleetError({ file: spec.file, line: spec.line, column: 1 }, message);
}

function singleDocument(file: string, content: string, reader: SpecReader): YDocument | undefined {
  const parsed = parseYamlFile(file, content);
  if (parsed.errors.length > 0) {
    reader.errors.push(...parsed.errors);
    return undefined;
  }
  const docs = parsed.documents.filter((d) => d.node !== null);
  if (docs.length > 1) {
    reader.error((docs[1] as YDocument).pos, `${file} must hold one YAML document, found ${docs.length}`);
    return undefined;
  }
  // An empty file declares nothing.
  return docs[0];
}

function readNotificationFile(
  reader: SpecReader,
  doc: YDocument,
): { providers: ProviderSpec[]; alerts: AlertSpec[] } | undefined {
  if (doc.node === null) return { providers: [], alerts: [] };
  const map = reader.expectMap(doc.node, '');
  if (!map) return undefined;
  const f = reader.fields(map, '', ['providers', 'alerts']);
  const providers: ProviderSpec[] = [];
  const alerts: AlertSpec[] = [];
  const pNode = f.get('providers');
  if (pNode) {
    reader.expectList(pNode, 'providers')?.forEach((item, i) => {
      const p = readProvider(reader, item, `providers[${i}]`);
      if (p) providers.push(p);
    });
  }
  const aNode = f.get('alerts');
  if (aNode) {
    reader.expectList(aNode, 'alerts')?.forEach((item, i) => {
      const a = readAlert(reader, item, `alerts[${i}]`);
      if (a) alerts.push(a);
    });
  }
  return { providers, alerts };
}

const PROVIDER_FIELDS: Record<ProviderType, readonly string[]> = {
  slack: ['name', 'type', 'secretRef', 'channel', 'rateLimit'],
  msteams: ['name', 'type', 'secretRef', 'rateLimit'],
  webhook: ['name', 'type', 'secretRef', 'rateLimit'],
  sns: ['name', 'type', 'topicArn', 'rateLimit'],
  eventbridge: ['name', 'type', 'eventBus', 'source', 'rateLimit'],
};

function readProvider(reader: SpecReader, node: YNode, path: string): ProviderSpec | undefined {
  const map = reader.expectMap(node, path);
  if (!map) return undefined;
  const before = reader.errors.length;
  const typeNode = fieldOf(map, 'type');
  let type: ProviderType | undefined;
  if (!typeNode)
    reader.error(map.pos, `${path}.type: required (one of ${Object.keys(PROVIDER_FIELDS).join(', ')})`);
  else {
    const t = reader.expectString(typeNode, `${path}.type`);
    if (t !== undefined && !(t in PROVIDER_FIELDS)) {
      reader.error(
        typeNode.pos,
        `${path}.type: unknown provider type "${t}" (expected ${Object.keys(PROVIDER_FIELDS).join(', ')})`,
      );
    } else type = t as ProviderType | undefined;
  }
  if (!type) return undefined;
  const f = reader.fields(map, path, PROVIDER_FIELDS[type]);
  const name = requiredName(reader, map, f, path, 'provider');
  const rl = f.get('rateLimit');
  const rateLimit = rl ? readRateLimit(reader, rl, `${path}.rateLimit`) : DEFAULT_RATE_LIMIT;
  const base = { file: reader.file, line: map.pos.line, rateLimit: rateLimit ?? DEFAULT_RATE_LIMIT };
  let spec: ProviderSpec | undefined;
  switch (type) {
    case 'slack':
    case 'msteams':
    case 'webhook': {
      const secretRef = requiredString(reader, map, f, path, 'secretRef', SECRET_REF, 'a secret name');
      if (name === undefined || secretRef === undefined) break;
      if (type === 'slack') {
        const ch = f.get('channel');
        const channel = ch ? reader.expectString(ch, `${path}.channel`) : undefined;
        spec =
          channel === undefined
            ? { ...base, name, type, secretRef }
            : { ...base, name, type, secretRef, channel };
      } else spec = { ...base, name, type, secretRef };
      break;
    }
    case 'sns': {
      const topicArn = requiredString(reader, map, f, path, 'topicArn', TOPIC_ARN, 'an SNS topic ARN');
      if (name !== undefined && topicArn !== undefined) spec = { ...base, name, type, topicArn };
      break;
    }
    case 'eventbridge': {
      const eventBus = requiredString(
        reader,
        map,
        f,
        path,
        'eventBus',
        EVENT_BUS,
        'an event bus name or ARN',
      );
      const src = f.get('source');
      const source = src ? reader.expectString(src, `${path}.source`) : 'flotilla';
      if (name !== undefined && eventBus !== undefined && source !== undefined)
        spec = { ...base, name, type, eventBus, source };
      break;
    }
  }
  return reader.errors.length === before ? spec : undefined;
}

function readRateLimit(reader: SpecReader, node: YNode, path: string): RateLimit | undefined {
  const map = reader.expectMap(node, path);
  if (!map) return undefined;
  const f = reader.fields(map, path, ['messages', 'per']);
  const m = f.get('messages');
  let messages: number | undefined;
  if (!m) reader.error(map.pos, `${path}.messages: required`);
  else if (m.kind === 'scalar' && typeof m.value === 'number' && Number.isInteger(m.value) && m.value >= 1)
    messages = m.value;
  else reader.error(m.pos, `${path}.messages: expected a whole number of at least 1`);
  const p = f.get('per');
  let perMs: number | undefined = 60_000;
  if (p) {
    const text = reader.expectString(p, `${path}.per`, false);
    perMs = text === undefined ? undefined : parseDuration(text);
    if (text !== undefined && (perMs === undefined || perMs < 1000)) {
      reader.error(
        p.pos,
        `${path}.per: "${text}" is not a duration of at least 1s (write it as 30s, 1m or 1h)`,
      );
      perMs = undefined;
    }
  }
  return messages === undefined || perMs === undefined ? undefined : { messages, perMs };
}

function readAlert(reader: SpecReader, node: YNode, path: string): AlertSpec | undefined {
  const map = reader.expectMap(node, path);
  if (!map) return undefined;
  const before = reader.errors.length;
  const f = reader.fields(map, path, [
    'name',
    'providers',
    'eventTypes',
    'severity',
    'bundles',
    'clusterSelector',
  ]);
  const name = requiredName(reader, map, f, path, 'alert');
  const providers: string[] = [];
  const pNode = f.get('providers');
  if (!pNode) reader.error(map.pos, `${path}.providers: required (the names of the providers to send to)`);
  else {
    const items = reader.expectList(pNode, `${path}.providers`);
    if (items && items.length === 0) reader.error(pNode.pos, `${path}.providers: name at least one provider`);
    items?.forEach((item, i) => {
      const p = reader.expectName(item, `${path}.providers[${i}]`, 'provider');
      if (p !== undefined) providers.push(p);
    });
  }
  const eventTypes = readGlobs(reader, f.get('eventTypes'), `${path}.eventTypes`, (text) =>
    EVENT_TYPES.some((t) => globMatches(text, t))
      ? undefined
      : `"${text}" matches no event type (the types are ${EVENT_TYPES.join(', ')})`,
  );
  const bundles = readGlobs(reader, f.get('bundles'), `${path}.bundles`, () => undefined);
  let severity: EventSeverity = 'info';
  const sNode = f.get('severity');
  if (sNode) {
    const s = reader.expectString(sNode, `${path}.severity`);
    if (s !== undefined && !SEVERITIES.includes(s))
      reader.error(sNode.pos, `${path}.severity: expected one of ${SEVERITIES.join(', ')}, got "${s}"`);
    else if (s !== undefined) severity = s as EventSeverity;
  }
  const selNode = f.get('clusterSelector');
  const clusterSelector = selNode ? reader.selector(selNode, `${path}.clusterSelector`) : undefined;
  if (reader.errors.length !== before || name === undefined) return undefined;
  return {
    name,
    file: reader.file,
    line: map.pos.line,
    providers,
    severity,
    ...(eventTypes ? { eventTypes } : {}),
    ...(bundles ? { bundles } : {}),
    ...(clusterSelector ? { clusterSelector } : {}),
  };
}

function readGlobs(
  reader: SpecReader,
  node: YNode | undefined,
  path: string,
  problem: (text: string) => string | undefined,
): string[] | undefined {
  if (!node) return undefined;
  const items = reader.expectList(node, path);
  if (!items) return undefined;
  if (items.length === 0)
    reader.error(node.pos, `${path}: list at least one (or leave the field out for all)`);
  const out: string[] = [];
  items.forEach((item, i) => {
    const text = reader.expectString(item, `${path}[${i}]`);
    if (text === undefined) return;
    const p = text === '' ? 'must not be empty' : problem(text);
    if (p) reader.error(item.pos, `${path}[${i}]: ${p}`);
    else out.push(text);
  });
  return out;
}

function fieldOf(map: YMap, key: string): YNode | undefined {
  return map.entries.find((e) => e.key === key)?.value;
}

function requiredName(
  reader: SpecReader,
  map: YMap,
  f: Map<string, YNode>,
  path: string,
  what: string,
): string | undefined {
  const n = f.get('name');
  if (!n) {
    reader.error(map.pos, `${path}.name: required`);
    return undefined;
  }
  return reader.expectName(n, `${path}.name`, what);
}

function requiredString(
  reader: SpecReader,
  map: YMap,
  f: Map<string, YNode>,
  path: string,
  field: string,
  shape: RegExp,
  what: string,
): string | undefined {
  const n = f.get(field);
  if (!n) {
    reader.error(map.pos, `${path}.${field}: required (${what})`);
    return undefined;
  }
  const text = reader.expectString(n, `${path}.${field}`);
  if (text === undefined) return undefined;
  if (!shape.test(text)) {
    reader.error(n.pos, `${path}.${field}: "${text}" is not ${what}`);
    return undefined;
  }
  return text;
}

/**
 * Shell-style glob of names: `*` is any run of characters, `?` one character; everything
 * else matches itself. `bundle.*` matches `bundle.failed`.
 */
export function globMatches(glob: string, text: string): boolean {
  if (!glob.includes('*') && !glob.includes('?')) return glob === text;
  const re = new RegExp(
    `^${glob
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
  return re.test(text);
}
