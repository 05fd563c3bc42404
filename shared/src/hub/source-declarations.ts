/**
 * Fleet sources declared through the admin API, beside those of the platform source's
 * `sources/<name>.yaml`. The hub stores each as the FleetSource document it was given
 * (checked by the same validator as a file), the sync reads both kinds, and a name may be
 * declared in one place only: the file wins, as the platform repository is the fleet's
 * source of truth.
 * Pure: storage comes in through {@link SourceDeclarationPorts}.
 */
import {
  type FleetSourceDocument,
  type FleetSourceSpec,
  fleetSourceDocument,
  loadSourceSpecs,
  parseFleetSourceJson,
  SOURCES_FOLDER,
} from '../sources/index.ts';
import type { DeclaredSourceRecord, SourceDeclarationStore, SourceRecord } from './fleet-sources.ts';
import { ConflictError, NotFoundError } from './ports.ts';
import { InvalidRequestError } from './status.ts';
import { type SyncPorts, snapshotFiles } from './sync.ts';

export interface SourceDeclarationPorts extends Pick<SyncPorts, 'syncState' | 'bundles'> {
  readonly declaredSources: SourceDeclarationStore;
  readonly now: () => Date;
}

/**
 * The platform source's declarations at the last synced commit: the valid ones, and the
 * names of every `sources/<name>.yaml` (a broken file still claims its name).
 */
export async function repoSourceSpecs(
  ports: Pick<SyncPorts, 'syncState' | 'bundles'>,
): Promise<{ specs: ReadonlyMap<string, FleetSourceSpec>; names: ReadonlySet<string> }> {
  const state = await ports.syncState.get();
  const files = state ? ((await snapshotFiles(ports, state.snapshotHash)) ?? []) : [];
  const sourceFiles = files.filter((f) => f.path.startsWith(`${SOURCES_FOLDER}/`));
  const names = new Set(
    sourceFiles
      .filter((f) => /^sources\/[^/]+\.ya?ml$/.test(f.path))
      .map((f) => f.path.slice(SOURCES_FOLDER.length + 1).replace(/\.ya?ml$/, '')),
  );
  return { specs: loadSourceSpecs(sourceFiles).sources, names };
}

/** Where a source is declared: the platform repository's `sources/<name>.yaml`, or the admin API. */
export type SourceOrigin = 'repo' | 'api';

/** A source as `GET /v1/admin/sources` lists it. */
export interface SourceView {
  readonly name: string;
  readonly origin: SourceOrigin;
  /** `sources/<name>.yaml`, or `api:sources/<name>`. */
  readonly declaredAt: string;
  readonly tenant: string | null;
  readonly document: FleetSourceDocument;
  /** Its last fetch, from the last sync; null when no sync has read it yet. */
  readonly lastFetch: {
    readonly commit: string;
    readonly fetchedAt: string;
    readonly error: string | null;
  } | null;
  readonly createdAt?: string;
  readonly createdBy?: string;
}

/**
 * Every source, from the platform repository (at the last synced commit) and from the
 * admin API, by name, each with its last fetch. A name declared in both is listed once,
 * as the repository's (the one the sync reads).
 */
export async function listSources(ports: SourceDeclarationPorts): Promise<SourceView[]> {
  const [repo, stored, state] = await Promise.all([
    repoSourceSpecs(ports),
    ports.declaredSources.list(),
    ports.syncState.get(),
  ]);
  const records = state?.sources ?? {};
  const out = new Map<string, SourceView>();
  for (const spec of repo.specs.values()) out.set(spec.name, viewOf(spec, 'repo', records[spec.name]));
  for (const record of stored) {
    if (out.has(record.name)) continue;
    const { source } = parseFleetSourceJson(record.document);
    const view: SourceView = source
      ? viewOf(source, 'api', records[record.name])
      : {
          name: record.name,
          origin: 'api',
          declaredAt: `api:${SOURCES_FOLDER}/${record.name}`,
          tenant: null,
          document: record.document,
          lastFetch: null,
        };
    out.set(record.name, {
      ...view,
      createdAt: record.createdAt,
      ...(record.createdBy ? { createdBy: record.createdBy } : {}),
    });
  }
  return [...out.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function viewOf(spec: FleetSourceSpec, origin: SourceOrigin, record: SourceRecord | undefined): SourceView {
  return {
    name: spec.name,
    origin,
    declaredAt: spec.file,
    tenant: spec.tenant ?? null,
    document: fleetSourceDocument(spec),
    lastFetch: record
      ? { commit: record.commit, fetchedAt: record.fetchedAt, error: record.error ?? null }
      : null,
  };
}

/**
 * Declares a source through the admin API: the body is the FleetSource document as JSON
 * (`apiVersion` and `kind` may be left out). It is read from the next sync on.
 *
 * @throws {InvalidRequestError} naming every wrong field.
 * @throws {ConflictError} when the name is declared already, in `sources/` or by the API.
 */
export async function declareSource(
  ports: SourceDeclarationPorts,
  body: unknown,
  createdBy?: string,
): Promise<SourceView> {
  const { source, problems } = parseFleetSourceJson(body);
  if (!source) throw new InvalidRequestError(problems);
  const repo = await repoSourceSpecs(ports);
  if (repo.names.has(source.name) || repo.specs.has(source.name)) {
    throw new ConflictError(
      `source "${source.name}" is declared in ${repo.specs.get(source.name)?.file ?? `sources/${source.name}.yaml`} of the platform repository`,
    );
  }
  const record: DeclaredSourceRecord = {
    name: source.name,
    document: fleetSourceDocument(source),
    createdAt: ports.now().toISOString(),
    ...(createdBy ? { createdBy } : {}),
  };
  try {
    await ports.declaredSources.create(record);
  } catch (err) {
    if (err instanceof ConflictError)
      throw new ConflictError(`source "${source.name}" is declared already (by the admin API)`, {
        cause: err,
      });
    throw err;
  }
  return {
    ...viewOf(source, 'api', undefined),
    createdAt: record.createdAt,
    ...(createdBy ? { createdBy } : {}),
  };
}

/**
 * Removes a source declared through the admin API; its bundles leave the clusters at the
 * next sync. When the platform repository declares the name too, the API's copy goes and
 * the file's stays (which clears the sync's "declared both" error).
 *
 * @throws {ConflictError} for a source declared in the platform repository only (remove its file).
 * @throws {NotFoundError} when no source has that name.
 */
export async function removeSource(ports: SourceDeclarationPorts, name: string): Promise<void> {
  if (await ports.declaredSources.delete(name)) return;
  const repo = await repoSourceSpecs(ports);
  if (repo.names.has(name) || repo.specs.has(name)) {
    const file = repo.specs.get(name)?.file ?? `sources/${name}.yaml`;
    throw new ConflictError(`source "${name}" is declared in ${file}: remove it there`);
  }
  throw new NotFoundError(`source "${name}" is not declared`);
}

/**
 * Validates a source name from a path.
 * @throws {InvalidRequestError} naming `name`.
 */
export function validateSourceName(value: string | undefined): string {
  if (value === undefined || !/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(value)) {
    throw new InvalidRequestError([
      {
        field: 'name',
        message: `expected a source name (a DNS-1123 label), got ${JSON.stringify(value ?? '')}`,
      },
    ]);
  }
  return value;
}
