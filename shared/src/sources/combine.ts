/**
 * The combined tree: the files of every fleet source as one file list, which the fleet
 * loader reads as one fleet. The platform source's files keep their paths; a team
 * source's `bundles/` enter behind its name (`team-a:bundles/web/bundle.yaml`), so that
 * its bundles are named `team-a/web` and every error names the source's file. Nothing
 * else of a team source enters: policies, groups and settings are the platform's.
 */
import { type FleetError, fleetError, normalizeFleetErrors } from '../errors.ts';
import { FLEET_REPO_FOLDERS, FLEET_REPO_ROOT_FILES } from '../repo-content.ts';

/** A source's files at one commit, paths relative to the source's `path`. */
export interface SourceSnapshot {
  readonly commit: string;
  readonly files: readonly { readonly path: string; readonly content: string }[];
}

/** A source that could not be read this time, with what it held last time, if anything. */
export interface FailedSource {
  readonly error: string;
  readonly lastGood?: SourceSnapshot;
}

/** What the sync records of one source: the commit its bundles come from, and why it is stale. */
export interface SourceOutcome {
  /** The commit read (the last good one when this fetch failed); '' when it never was. */
  readonly commit: string;
  readonly error?: string;
}

/** The combined file list and what became of each source. */
export interface CombinedTree {
  readonly files: { path: string; content: string }[];
  readonly sources: Readonly<Record<string, SourceOutcome>>;
  /** A source that could not be fetched, at its declaration. */
  readonly errors: readonly FleetError[];
  /** What a team source holds that the hub does not read, one per top-level folder. */
  readonly warnings: readonly FleetError[];
}

/** The path of a source's file in the combined tree (`team-a:bundles/web/x.yaml`). */
export function sourcePath(source: string, path: string): string {
  return `${source}:${path}`;
}

/** The `bundle.yaml` of a bundle by full name: `bundles/web/bundle.yaml`, `team-a:bundles/web/bundle.yaml`. */
export function bundleFileOf(name: string): string {
  const slash = name.indexOf('/');
  return slash < 0
    ? `bundles/${name}/bundle.yaml`
    : sourcePath(name.slice(0, slash), `bundles/${name.slice(slash + 1)}/bundle.yaml`);
}

/**
 * Combines the platform source with the team sources. A source that failed contributes
 * its last good files and an error at its declaration (`sources/<name>.yaml`); one that
 * never succeeded contributes nothing (it never delivered a bundle to keep).
 *
 * @example
 * combineSources({ commit: 'c1', files: platformFiles },
 *   new Map([['team-a', { commit: 'c2', files: [{ path: 'bundles/web/bundle.yaml', content }] }]]));
 * // files: [...platformFiles, { path: 'team-a:bundles/web/bundle.yaml', content }]
 */
export function combineSources(
  platform: SourceSnapshot,
  sources: ReadonlyMap<string, SourceSnapshot | FailedSource>,
  declaredAt: (source: string) => string = (s) => `sources/${s}.yaml`,
): CombinedTree {
  const files = platform.files.map((f) => ({ path: f.path, content: f.content }));
  const outcomes: Record<string, SourceOutcome> = {};
  const errors: FleetError[] = [];
  const warnings: FleetError[] = [];
  for (const name of [...sources.keys()].sort()) {
    const entry = sources.get(name) as SourceSnapshot | FailedSource;
    let snapshot: SourceSnapshot | undefined;
    if ('error' in entry) {
      snapshot = entry.lastGood;
      const kept = snapshot ? `; its bundles stay at commit ${snapshot.commit.slice(0, 12)}` : '';
      errors.push(
        fleetError({ file: declaredAt(name), line: 1, column: 1 }, `source "${name}": ${entry.error}${kept}`),
      );
      outcomes[name] = { commit: snapshot?.commit ?? '', error: entry.error };
    } else {
      snapshot = entry;
      outcomes[name] = { commit: entry.commit };
    }
    if (!snapshot) continue;
    const ignored = new Map<string, string>();
    for (const f of snapshot.files) {
      const path = f.path.replace(/^\/+/, '');
      if (path.startsWith('bundles/')) {
        files.push({ path: sourcePath(name, path), content: f.content });
        continue;
      }
      const slash = path.indexOf('/');
      const top = slash < 0 ? path : path.slice(0, slash + 1);
      const meaningful =
        slash < 0
          ? (FLEET_REPO_ROOT_FILES as readonly string[]).includes(path)
          : (FLEET_REPO_FOLDERS as readonly string[]).includes(path.slice(0, slash));
      if (meaningful && !ignored.has(top)) ignored.set(top, path);
    }
    for (const [top, first] of ignored) {
      warnings.push(
        fleetError(
          { file: sourcePath(name, first), line: 1, column: 1 },
          `${top} of source "${name}" is ignored: a team source carries only bundles/ (${top.endsWith('/') ? 'folders' : 'files'} like it belong to the platform source)`,
        ),
      );
    }
  }
  return {
    files,
    sources: outcomes,
    errors: normalizeFleetErrors(errors),
    warnings: normalizeFleetErrors(warnings),
  };
}
