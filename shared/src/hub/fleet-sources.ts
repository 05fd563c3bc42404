/**
 * The sync's view of several fleet sources: the platform source's files, then each source
 * it declares (`sources/<name>.yaml`), fetched on its own, combined into one file list the
 * fleet loader reads (see `sources/combine.ts`).
 */
import type { FleetError } from '../errors.ts';
import {
  API_SOURCES_PREFIX,
  apiSourceFile,
  type CombinedTree,
  combineSources,
  type FailedSource,
  type FleetSourceDocument,
  type FleetSourceSpec,
  loadSourceSpecs,
  SOURCES_FOLDER,
  type SourceSnapshot,
  sourceOfPath,
} from '../sources/index.ts';

/** Reads the declared sources (isomorphic-git in the hub). */
export interface SourceFetcher {
  /**
   * The files of `source` at its ref, under its `path` and relative to it, and the commit.
   * Throws when it cannot, with a message that says why (and never holds a credential).
   */
  fetch(source: FleetSourceSpec): Promise<SourceSnapshot>;
}

/** What the hub stores of a source declared through the admin API. */
export interface DeclaredSourceRecord {
  readonly name: string;
  /** The FleetSource document as JSON, as validated when it was declared. */
  readonly document: FleetSourceDocument;
  readonly createdAt: string;
  /** Who declared it: an IAM ARN, or `admin-key`. */
  readonly createdBy?: string;
}

/** The sources declared through the admin API. */
export interface SourceDeclarationStore {
  /** @throws ConflictError when a source of this name is declared already. */
  create(record: DeclaredSourceRecord): Promise<void>;
  list(): Promise<DeclaredSourceRecord[]>;
  /** Removes it; false when there was none. */
  delete(name: string): Promise<boolean>;
}

/**
 * The admin API's declarations as files of the combined tree (`api:sources/<name>`, the
 * JSON document), which the sync adds to the platform's files: the loader, the tenant
 * scopes and every later reader of the sync's snapshot then see the very same sources.
 */
export async function declaredSourceFiles(
  store: Pick<SourceDeclarationStore, 'list'>,
): Promise<{ path: string; content: string }[]> {
  return (await store.list())
    .map((r) => ({ path: apiSourceFile(r.name), content: JSON.stringify(r.document) }))
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** What a sync records of one source. */
export interface SourceRecord {
  /** The commit its bundles come from (the last good one when `error` is set); '' when none ever was read. */
  readonly commit: string;
  /** When it was last read successfully ('' when never). */
  readonly fetchedAt: string;
  readonly error?: string;
  /** Its repository, ref and path as declared when read: a change fetches it again at once. */
  readonly key: string;
}

/** The combined tree of this sync, with each source's record. */
export interface FetchedSources {
  readonly files: CombinedTree['files'];
  readonly sources: Readonly<Record<string, SourceRecord>>;
  /** Sources that could not be read (their last good files are in `files`). */
  readonly errors: readonly FleetError[];
  /** What team sources hold that the hub ignores. */
  readonly warnings: readonly FleetError[];
}

/** What the last sync left: its source records and a way to read its files. */
export interface PreviousSources {
  readonly sources?: Readonly<Record<string, SourceRecord>>;
  /** The last sync's combined files (its snapshot), read when a source needs its last good files. */
  readonly files: () => Promise<readonly { path: string; content: string }[] | undefined>;
}

/** Sources fetched at once; a fleet of many sources does not open a connection per source at the same moment. */
const fetchConcurrency = 8;

/**
 * Fetches every source the platform declares and combines them with the platform's files.
 *
 * 1. Read `sources/` of the platform files and the admin API's declarations among them
 *    (`api:sources/<name>`, see {@link declaredSourceFiles}); their errors are the fleet
 *    loader's to report.
 * 2. Per source, concurrently: fetch it, unless `respectIntervals` and its last fetch is
 *    younger than its `interval` (then its last files stand). A fetch that fails keeps the
 *    source's last good files (from the previous snapshot) and records the error. A source
 *    whose declaration now has errors is not fetched: its last files stand, held by the
 *    loader, so a typo in a declaration never removes a team's bundles from the clusters.
 * 3. Combine: the platform's files, and each source's `bundles/` as `<source>:bundles/...`.
 *
 * @example
 * const tree = await fetchFleetSources(platform, fetcher, previous, { now, respectIntervals: false });
 * loadFleet(tree.files);
 */
export async function fetchFleetSources(
  platform: SourceSnapshot,
  fetcher: SourceFetcher | undefined,
  previous: PreviousSources,
  opts: { readonly now: Date; readonly respectIntervals: boolean },
): Promise<FetchedSources> {
  const sourceFiles = platform.files.filter(
    (f) => f.path.startsWith(`${SOURCES_FOLDER}/`) || f.path.startsWith(API_SOURCES_PREFIX),
  );
  const { sources: specs } = loadSourceSpecs(sourceFiles);
  const before = previous.sources ?? {};
  const declaredNames = new Set(
    sourceFiles.map((f) =>
      f.path.startsWith(API_SOURCES_PREFIX)
        ? f.path.slice(API_SOURCES_PREFIX.length)
        : f.path.slice(SOURCES_FOLDER.length + 1).replace(/\.ya?ml$/, ''),
    ),
  );
  const broken = Object.keys(before).filter((n) => !specs.has(n) && declaredNames.has(n));
  if (specs.size === 0 && broken.length === 0)
    return { files: [...platform.files], sources: {}, errors: [], warnings: [] };

  let lastFiles: Promise<Map<string, { path: string; content: string }[]>> | undefined;
  const lastGood = async (name: string): Promise<SourceSnapshot | undefined> => {
    const record = before[name];
    if (!record?.commit) return undefined;
    lastFiles ??= previous.files().then((files) => {
      const out = new Map<string, { path: string; content: string }[]>();
      for (const f of files ?? []) {
        const source = sourceOfPath(f.path);
        if (source === undefined || f.path.startsWith(API_SOURCES_PREFIX)) continue;
        const list = out.get(source) ?? [];
        list.push({ path: f.path.slice(source.length + 1), content: f.content });
        out.set(source, list);
      }
      return out;
    });
    return { commit: record.commit, files: (await lastFiles).get(name) ?? [] };
  };

  const now = opts.now.toISOString();
  const records: Record<string, SourceRecord> = {};
  const results = new Map<string, SourceSnapshot | FailedSource>();
  const keep = async (name: string, error: string, key: string) => {
    const good = await lastGood(name);
    results.set(name, good ? { error, lastGood: good } : { error });
    records[name] = { commit: good?.commit ?? '', fetchedAt: before[name]?.fetchedAt ?? '', error, key };
  };
  for (const name of broken) {
    const at = sourceFiles.some((f) => f.path === apiSourceFile(name))
      ? apiSourceFile(name)
      : `sources/${name}.yaml`;
    await keep(name, `its declaration (${at}) has errors`, before[name]?.key ?? '');
  }

  const queue = [...specs.values()];
  const worker = async () => {
    for (let spec = queue.shift(); spec; spec = queue.shift()) {
      const key = sourceKey(spec);
      const last = before[spec.name];
      if (
        opts.respectIntervals &&
        last &&
        last.error === undefined &&
        last.key === key &&
        opts.now.getTime() - Date.parse(last.fetchedAt) < spec.intervalMs
      ) {
        const good = await lastGood(spec.name);
        if (good) {
          results.set(spec.name, good);
          records[spec.name] = last;
          continue;
        }
      }
      if (!fetcher) {
        await keep(spec.name, 'this hub has no source fetcher configured', key);
        continue;
      }
      try {
        const snapshot = await fetcher.fetch(spec);
        results.set(spec.name, snapshot);
        records[spec.name] = { commit: snapshot.commit, fetchedAt: now, key };
      } catch (err) {
        await keep(spec.name, err instanceof Error ? err.message : String(err), key);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(fetchConcurrency, queue.length) }, worker));

  const combined = combineSources(
    platform,
    results,
    (name) => specs.get(name)?.file ?? `${SOURCES_FOLDER}/${name}.yaml`,
  );
  const sorted: Record<string, SourceRecord> = {};
  for (const name of Object.keys(records).sort()) sorted[name] = records[name] as SourceRecord;
  return { files: combined.files, sources: sorted, errors: combined.errors, warnings: combined.warnings };
}

/** A source's repository, ref and path, as one string. */
function sourceKey(spec: FleetSourceSpec): string {
  return JSON.stringify([spec.repo, spec.ref, spec.path, spec.secretRef ?? null]);
}
