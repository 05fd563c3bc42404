/**
 * Fleet source declarations: `sources/<name>.yaml` of the platform source, one
 * `kind: FleetSource` document each. A source is another git repository whose bundles
 * the hub reads beside the platform's, named `<source>/<bundle>`. Every problem is a
 * {@link FleetError} at the line it is about, like any other file of the fleet repo.
 */
import { FLOTILLA_API_VERSION } from '../api-version.ts';
import { type FleetError, fleetError, normalizeFleetErrors, type SourcePos } from '../errors.ts';

export { bundleNameProblem } from '../labels.ts';

import { nameProblem } from '../labels.ts';

import { formatDuration, parseDuration } from '../rollout-spec.ts';
import { SpecReader } from '../spec-reader.ts';
import { describeNode, parseYamlFile, type YMap, type YNode } from '../yaml-source.ts';

/** The folder of the platform source that holds source declarations. */
export const SOURCES_FOLDER = 'sources';

/** The name the hub's own repository goes by; no declared source may take it. */
export const PLATFORM_SOURCE = 'platform';

/** How often the hub polls a source when its declaration does not say. */
export const DEFAULT_SOURCE_INTERVAL_MS = 60_000;
/** The shortest polling interval a source may ask for. */
export const MIN_SOURCE_INTERVAL_MS = 10_000;

/** Which commit of a source's repository the hub reads. */
export type SourceRef =
  | { readonly branch: string }
  | { readonly tag: string }
  /** A semver range over the repository's tags; the highest matching tag wins. */
  | { readonly semver: string };

/** A declared fleet source, as the hub reads it. */
export interface FleetSourceSpec {
  readonly name: string;
  /** The file that declares it and where its document starts (the admin API's: `api:sources/<name>`). */
  readonly file: string;
  readonly pos: SourcePos;
  /** An http(s) git URL. */
  readonly repo: string;
  readonly ref: SourceRef;
  /** The folder of the repository that holds `bundles/`, normalised without slashes at either end; `''` is the root. */
  readonly path: string;
  /** The tenant whose boundary its bundles are held to; undefined: trusted like the platform. */
  readonly tenant: string | undefined;
  /** Where `tenant` is written (the document's start when it is not). */
  readonly tenantPos: SourcePos;
  readonly intervalMs: number;
  /** The name of the secret holding the repository's credentials; never the credentials themselves. */
  readonly secretRef: string | undefined;
}

/** A file of the platform source: its repo-relative path and text. */
export interface SourceFile {
  readonly path: string;
  readonly content: string;
}

const TOP_FIELDS = ['apiVersion', 'kind', 'metadata', 'spec'] as const;
const SPEC_FIELDS = ['repo', 'ref', 'path', 'tenant', 'interval', 'credentials'] as const;
const REF_FIELDS = ['branch', 'tag', 'semver'] as const;

/** The source a combined-tree path belongs to (`team-a:bundles/web/x.yaml` → team-a), undefined for the platform's. */
export function sourceOfPath(path: string): string | undefined {
  const m = SOURCE_PREFIX.exec(path);
  return m ? m[1] : undefined;
}

const SOURCE_PREFIX = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?):/;

/** The source of a bundle name (`team-a/web` → team-a), undefined for a platform bundle. */
export function sourceOfBundle(bundle: string): string | undefined {
  const slash = bundle.indexOf('/');
  return slash < 0 ? undefined : bundle.slice(0, slash);
}

/**
 * Reads the source declarations of the platform source (`sources/<name>.yaml`) and of the
 * admin API (`api:sources/<name>`, a JSON document each, as the sync adds them). A
 * declaration with any error is left out (its bundles are then not read at all); two of one
 * name are an error at the second; a name in both places is an error at the file, whose
 * declaration is read.
 *
 * @example
 * const { sources, errors } = loadSourceSpecs([{ path: 'sources/team-a.yaml', content }]);
 * sources.get('team-a')?.ref; // { branch: 'main' }
 */
export function loadSourceSpecs(files: readonly SourceFile[]): {
  sources: ReadonlyMap<string, FleetSourceSpec>;
  errors: FleetError[];
} {
  const errors: FleetError[] = [];
  const sources = new Map<string, FleetSourceSpec>();
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  // The names sources/ claims, a broken file's too: a name there is never the admin API's.
  const claimed = new Map<string, string>();
  for (const file of sorted) {
    if (file.path.startsWith(API_SOURCES_PREFIX)) continue;
    const parts = file.path.split('/');
    if (!/\.ya?ml$/.test(file.path)) continue;
    if (parts.length !== 2 || parts[0] !== SOURCES_FOLDER) {
      errors.push(
        fleetError(
          { file: file.path, line: 1, column: 1 },
          'source files go directly in sources/ (sources/<name>.yaml)',
        ),
      );
      continue;
    }
    const parsed = parseYamlFile(file.path, file.content);
    errors.push(...parsed.errors);
    if (parsed.errors.length > 0) continue;
    const docs = parsed.documents.filter((d) => d.node !== null);
    if (docs.length !== 1) {
      errors.push(
        fleetError(
          docs[1]?.pos ?? { file: file.path, line: 1, column: 1 },
          `${file.path} must hold one FleetSource document, found ${docs.length}`,
        ),
      );
      continue;
    }
    const reader = new SpecReader(file.path);
    const fileName = (parts[1] as string).replace(/\.ya?ml$/, '');
    if (!claimed.has(fileName)) claimed.set(fileName, file.path);
    const source = readFleetSource(reader, (docs[0] as { node: YNode }).node, fileName);
    errors.push(...reader.errors);
    if (!source || reader.errors.length > 0) continue;
    const other = sources.get(source.name);
    if (other) {
      errors.push(
        fleetError(
          source.pos,
          `metadata.name: source "${source.name}" is declared twice (also at ${other.file}:${other.pos.line})`,
        ),
      );
      continue;
    }
    sources.set(source.name, source);
  }
  for (const file of sorted) {
    if (!file.path.startsWith(API_SOURCES_PREFIX)) continue;
    const name = file.path.slice(API_SOURCES_PREFIX.length);
    const at = { file: file.path, line: 1, column: 1 };
    const inFile = claimed.get(name);
    if (inFile !== undefined) {
      errors.push(
        fleetError(
          sources.get(name)?.pos ?? { file: inFile, line: 1, column: 1 },
          `source "${name}" is declared both in ${inFile} and through the admin API (${file.path}): the file's declaration is read; remove one of them`,
        ),
      );
      continue;
    }
    let doc: unknown;
    try {
      doc = JSON.parse(file.content);
    } catch (err) {
      errors.push(fleetError(at, `not a JSON FleetSource document: ${(err as Error).message}`));
      continue;
    }
    const { source, problems } = validateFleetSource(jsonNode(doc, at), file.path);
    errors.push(...problems.map((p) => sourceProblemError(p)));
    if (!source) continue;
    if (source.name !== name) {
      errors.push(
        fleetError(
          at,
          `metadata.name: "${source.name}" differs from the name it is stored under ("${name}")`,
        ),
      );
      continue;
    }
    sources.set(source.name, source);
  }
  return { sources, errors: normalizeFleetErrors(errors) };
}

/**
 * A problem with a source declaration, wherever it was written: `field` is the JSON path
 * of the field it is about (what the admin API answers), `at` the path the file's message
 * starts with (the parent's, for an unknown field), `pos` where it sits in the file.
 */
export interface SourceProblem {
  readonly field: string;
  readonly at: string;
  readonly pos: SourcePos;
  readonly message: string;
}

/** A problem as a fleet-repo error: `file:line: spec.repo: message`. */
export function sourceProblemError(problem: SourceProblem, bundle?: string): FleetError {
  return fleetError(
    problem.pos,
    problem.at === '' ? problem.message : `${problem.at}: ${problem.message}`,
    bundle,
  );
}

/**
 * Reads one `kind: FleetSource` document (SpecReader style): its problems become the
 * reader's errors. `fileName`, when given, is the name the file says (`sources/<name>.yaml`):
 * `metadata.name` must agree with it.
 */
export function readFleetSource(
  reader: SpecReader,
  node: YNode,
  fileName?: string,
): FleetSourceSpec | undefined {
  const { source, problems } = validateFleetSource(node, reader.file, fileName);
  for (const p of problems) reader.errors.push(sourceProblemError(p, reader.bundle));
  return source;
}

/**
 * The admin API's form of a declaration: the FleetSource document as JSON
 * (`{ metadata: { name }, spec: { repo, ref, ... } }`; `apiVersion` and `kind` may be left
 * out). Checked by the very validator that reads `sources/<name>.yaml`, so both accept the
 * same declarations; problems name the JSON field (`spec.ref.branch`). The declaration's
 * `file` is `api:sources/<name>`.
 *
 * @example
 * parseFleetSourceJson({ metadata: { name: 'team-x' }, spec: { repo: 'https://git.example.com/x.git', ref: { branch: 'main' } } });
 * // { source: { name: 'team-x', file: 'api:sources/team-x', ... }, problems: [] }
 */
export function parseFleetSourceJson(value: unknown): {
  source: FleetSourceSpec | undefined;
  problems: readonly { readonly field: string; readonly message: string }[];
} {
  const named =
    value !== null && typeof value === 'object' && !Array.isArray(value)
      ? ((value as { metadata?: { name?: unknown } }).metadata?.name ?? '')
      : '';
  const file = apiSourceFile(typeof named === 'string' ? named : '');
  const doc =
    value !== null && typeof value === 'object' && !Array.isArray(value)
      ? { apiVersion: FLOTILLA_API_VERSION, kind: 'FleetSource', ...(value as Record<string, unknown>) }
      : value;
  const { source, problems } = validateFleetSource(jsonNode(doc, { file, line: 1, column: 1 }), file);
  return {
    source,
    problems: problems.map((p) => ({ field: p.field === '' ? 'body' : p.field, message: p.message })),
  };
}

/**
 * Where an admin-API declaration is said to be: `api:sources/<name>`. The sync adds each
 * to the combined tree under this path, its content the JSON document, so that every reader
 * of a sync's snapshot (the loader, tenant scopes, previews) sees the same sources.
 */
export function apiSourceFile(name: string): string {
  return `${API_SOURCES_PREFIX}${name}`;
}

/** The combined-tree folder of the sources declared through the admin API. */
export const API_SOURCES_PREFIX = 'api:sources/';

/** The source name the admin API's declarations go by in the combined tree; no source may take it. */
const API_NAME = 'api';

/** A JSON value as a node tree, every node at `pos` (JSON has no lines worth naming). */
function jsonNode(value: unknown, pos: SourcePos): YNode {
  if (Array.isArray(value)) return { kind: 'seq', pos, items: value.map((v) => jsonNode(v, pos)) };
  if (value !== null && typeof value === 'object')
    return {
      kind: 'map',
      pos,
      entries: Object.entries(value as Record<string, unknown>).map(([key, v]) => ({
        key,
        keyPos: pos,
        value: jsonNode(v, pos),
      })),
    };
  const scalar =
    typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? value : null;
  return { kind: 'scalar', pos, value: scalar, quoted: typeof value === 'string' };
}

/** Field-naming checks over a node tree, shared by the file and the JSON validator. */
class SourceChecks {
  readonly problems: SourceProblem[] = [];

  problem(pos: SourcePos, field: string, message: string, at = field): void {
    this.problems.push({ field, at, pos, message });
  }

  map(node: YNode, field: string): YMap | undefined {
    if (node.kind === 'map') return node;
    this.problem(node.pos, field, `expected a mapping, got ${describeNode(node)}`);
    return undefined;
  }

  fields(map: YMap, field: string, allowed: readonly string[]): Map<string, YNode> {
    const out = new Map<string, YNode>();
    for (const entry of map.entries) {
      if (!allowed.includes(entry.key))
        this.problem(
          entry.keyPos,
          field === '' ? entry.key : `${field}.${entry.key}`,
          `unknown field "${entry.key}" (expected ${allowed.join(', ')})`,
          field,
        );
      else out.set(entry.key, entry.value);
    }
    return out;
  }

  string(node: YNode, field: string): string | undefined {
    if (node.kind === 'scalar' && typeof node.value === 'string') return node.value;
    const hint = node.kind === 'scalar' && node.value !== null ? ` (quote it: "${String(node.value)}")` : '';
    this.problem(node.pos, field, `expected a string, got ${describeNode(node)}${hint}`);
    return undefined;
  }

  name(node: YNode, field: string, what: string): string | undefined {
    const value = this.string(node, field);
    if (value === undefined) return undefined;
    const problem = nameProblem(value);
    if (problem) {
      this.problem(node.pos, field, `invalid ${what} name: ${problem}`);
      return undefined;
    }
    return value;
  }
}

/**
 * The one validator of a FleetSource document, as a node tree from a file or from JSON.
 * `file` is where the declaration is said to be; `fileName` the name its file says.
 */
export function validateFleetSource(
  node: YNode,
  file: string,
  fileName?: string,
): { source: FleetSourceSpec | undefined; problems: readonly SourceProblem[] } {
  const c = new SourceChecks();
  const source = checkFleetSource(c, node, file, fileName);
  return { source: c.problems.length > 0 ? undefined : source, problems: c.problems };
}

function checkFleetSource(
  c: SourceChecks,
  node: YNode,
  file: string,
  fileName: string | undefined,
): FleetSourceSpec | undefined {
  const map = c.map(node, '');
  if (!map) return undefined;
  const f = c.fields(map, '', TOP_FIELDS);
  const apiVersion = f.get('apiVersion');
  if (!apiVersion) c.problem(map.pos, 'apiVersion', `required (${FLOTILLA_API_VERSION})`);
  else {
    const v = c.string(apiVersion, 'apiVersion');
    if (v !== undefined && v !== FLOTILLA_API_VERSION)
      c.problem(apiVersion.pos, 'apiVersion', `expected ${FLOTILLA_API_VERSION}, got "${v}"`);
  }
  const kind = f.get('kind');
  if (!kind) c.problem(map.pos, 'kind', 'required (FleetSource)');
  else {
    const v = c.string(kind, 'kind');
    if (v !== undefined && v !== 'FleetSource')
      c.problem(kind.pos, 'kind', `expected FleetSource, got "${v}"`);
  }
  let name: string | undefined;
  const metaNode = f.get('metadata');
  const meta = metaNode ? c.map(metaNode, 'metadata') : undefined;
  if (!metaNode) c.problem(map.pos, 'metadata.name', 'required');
  else if (meta) {
    const mf = c.fields(meta, 'metadata', ['name']);
    const nameNode = mf.get('name');
    if (!nameNode) c.problem(meta.pos, 'metadata.name', 'required');
    else {
      name = c.name(nameNode, 'metadata.name', 'source');
      if (name === PLATFORM_SOURCE) {
        c.problem(nameNode.pos, 'metadata.name', `"${PLATFORM_SOURCE}" is the hub's own repository`);
        name = undefined;
      } else if (name === API_NAME) {
        c.problem(
          nameNode.pos,
          'metadata.name',
          `"${API_NAME}" is reserved (the admin API's declarations are at ${API_SOURCES_PREFIX}<name>)`,
        );
        name = undefined;
      } else if (name !== undefined && fileName !== undefined && name !== fileName) {
        c.problem(
          nameNode.pos,
          'metadata.name',
          `"${name}" differs from the file name (sources/${fileName}.yaml declares source "${fileName}")`,
        );
        name = undefined;
      }
    }
  }
  const specNode = f.get('spec');
  if (!specNode) {
    c.problem(map.pos, 'spec', 'required (repo and ref at least)');
    return undefined;
  }
  const spec = c.map(specNode, 'spec');
  if (!spec) return undefined;
  const sf = c.fields(spec, 'spec', SPEC_FIELDS);

  let repo: string | undefined;
  const repoNode = sf.get('repo');
  if (!repoNode) c.problem(spec.pos, 'spec.repo', 'required (an http(s) git URL)');
  else {
    repo = c.string(repoNode, 'spec.repo');
    const problem = repo === undefined ? undefined : repoUrlProblem(repo);
    if (problem) {
      c.problem(repoNode.pos, 'spec.repo', problem);
      repo = undefined;
    }
  }

  let ref: SourceRef | undefined;
  const refNode = sf.get('ref');
  if (!refNode) c.problem(spec.pos, 'spec.ref', 'required (one of branch, tag, semver)');
  else {
    const refMap = c.map(refNode, 'spec.ref');
    if (refMap) {
      const rf = c.fields(refMap, 'spec.ref', REF_FIELDS);
      const given = REF_FIELDS.filter((k) => rf.has(k));
      if (given.length !== 1) {
        c.problem(
          refMap.pos,
          'spec.ref',
          `exactly one of branch, tag, semver${given.length > 1 ? ` (got ${given.join(', ')})` : ''}`,
        );
      } else {
        const key = given[0] as (typeof REF_FIELDS)[number];
        const valueNode = rf.get(key) as YNode;
        const value = c.string(valueNode, `spec.ref.${key}`);
        if (value !== undefined) {
          const problem =
            key === 'semver'
              ? value.trim() === ''
                ? 'must not be empty'
                : undefined
              : refNameProblem(value);
          if (problem) c.problem(valueNode.pos, `spec.ref.${key}`, problem);
          else
            ref = key === 'branch' ? { branch: value } : key === 'tag' ? { tag: value } : { semver: value };
        }
      }
    }
  }

  let path = '';
  const pathNode = sf.get('path');
  if (pathNode) {
    const value = c.string(pathNode, 'spec.path');
    if (value !== undefined) {
      const normalized = value.replace(/^(\.\/)+/, '').replace(/^\/+|\/+$/g, '');
      if (normalized.split('/').some((s) => s === '..' || (s.startsWith('.') && s !== ''))) {
        c.problem(pathNode.pos, 'spec.path', `"${value}" must be a folder inside the repository`);
      } else path = normalized === '.' ? '' : normalized;
    }
  }

  let tenant: string | undefined;
  const tenantNode = sf.get('tenant');
  if (tenantNode) tenant = c.name(tenantNode, 'spec.tenant', 'tenant');
  const tenantPos = tenantNode?.pos ?? map.pos;

  let intervalMs = DEFAULT_SOURCE_INTERVAL_MS;
  const intervalNode = sf.get('interval');
  if (intervalNode) {
    const text = c.string(intervalNode, 'spec.interval');
    if (text !== undefined) {
      const ms = parseDuration(text);
      if (ms === undefined)
        c.problem(intervalNode.pos, 'spec.interval', `"${text}" is not a duration (1m, 30s)`);
      else if (ms < MIN_SOURCE_INTERVAL_MS)
        c.problem(
          intervalNode.pos,
          'spec.interval',
          `at least ${formatDuration(MIN_SOURCE_INTERVAL_MS)} (got ${text})`,
        );
      else intervalMs = ms;
    }
  }

  let secretRef: string | undefined;
  const credNode = sf.get('credentials');
  if (credNode) {
    const cred = c.map(credNode, 'spec.credentials');
    if (cred) {
      const cf = c.fields(cred, 'spec.credentials', ['secretRef']);
      const refN = cf.get('secretRef');
      if (!refN) c.problem(cred.pos, 'spec.credentials.secretRef', 'required (the name of the secret)');
      else {
        secretRef = c.string(refN, 'spec.credentials.secretRef');
        if (secretRef !== undefined && !/^[A-Za-z0-9][A-Za-z0-9/_+=.@-]{0,511}$/.test(secretRef)) {
          c.problem(refN.pos, 'spec.credentials.secretRef', `"${secretRef}" is not a secret name`);
          secretRef = undefined;
        }
      }
    }
  }

  if (name === undefined || repo === undefined || ref === undefined) return undefined;
  return { name, file, pos: map.pos, repo, ref, path, tenant, tenantPos, intervalMs, secretRef };
}

/**
 * A declaration as the JSON document the admin API takes and lists (defaults filled in),
 * whichever way it was declared.
 */
export function fleetSourceDocument(spec: FleetSourceSpec): FleetSourceDocument {
  return {
    apiVersion: FLOTILLA_API_VERSION,
    kind: 'FleetSource',
    metadata: { name: spec.name },
    spec: {
      repo: spec.repo,
      ref: spec.ref,
      ...(spec.path !== '' ? { path: spec.path } : {}),
      ...(spec.tenant !== undefined ? { tenant: spec.tenant } : {}),
      interval: formatDuration(spec.intervalMs),
      ...(spec.secretRef !== undefined ? { credentials: { secretRef: spec.secretRef } } : {}),
    },
  };
}

/** The FleetSource document as JSON. */
export interface FleetSourceDocument {
  readonly apiVersion: string;
  readonly kind: 'FleetSource';
  readonly metadata: { readonly name: string };
  readonly spec: {
    readonly repo: string;
    readonly ref: SourceRef;
    readonly path?: string;
    readonly tenant?: string;
    readonly interval: string;
    readonly credentials?: { readonly secretRef: string };
  };
}

/** Why a repository URL is not one a source may name; undefined when it is. */
export function repoUrlProblem(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `"${url}" is not a URL (an http(s) git URL such as https://git.example.com/team-a/apps.git)`;
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')
    return `"${url}": only http(s) git URLs are supported`;
  if (parsed.username || parsed.password)
    return 'credentials do not go in the URL: use credentials.secretRef';
  return undefined;
}

/** Why a branch or tag name is not one git allows (`git check-ref-format`, the common cases). */
function refNameProblem(name: string): string | undefined {
  if (name === '') return 'must not be empty';
  if (
    name.startsWith('/') ||
    name.endsWith('/') ||
    name.endsWith('.') ||
    name.endsWith('.lock') ||
    name.includes('..') ||
    name.includes('@{') ||
    name.includes('//') ||
    /[\s~^:?*[\\]/.test(name) ||
    [...name].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f) ||
    name.split('/').some((s) => s.startsWith('.'))
  )
    return `"${name}" is not a valid git ref name`;
  return undefined;
}
