/**
 * Fleet repo files travel as strings (`RepoFile.content`). Text files are their UTF-8
 * text; a file that is not valid UTF-8 (a packaged subchart in a chart's `charts/`, an
 * image a chart ships) is carried as base64 behind a marker no text file starts with, so
 * the render engines get its exact bytes. Readers of YAML never see such a file: none
 * ends in `.yaml`.
 */

const BINARY_MARKER = '\u0000flotilla:base64:';
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** A file's bytes as repo-file content: its text, or marked base64 when it is not UTF-8. */
export function repoFileContent(bytes: Uint8Array): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return BINARY_MARKER + Buffer.from(bytes).toString('base64');
  }
}

/** Whether repo-file content holds a binary file. */
export function isBinaryContent(content: string): boolean {
  return content.startsWith(BINARY_MARKER);
}

/** A file's exact bytes as base64, for the render engines. */
export function contentBase64(content: string): string {
  return isBinaryContent(content)
    ? content.slice(BINARY_MARKER.length)
    : Buffer.from(content, 'utf8').toString('base64');
}

/**
 * The folders of a fleet repo that mean something to Flotilla; everything else (READMEs,
 * CI configuration) is never read. `lib/` holds what Helm and Kustomize bundles share,
 * `policies/` the admission policies, `notifications/` the notifier's providers and alerts,
 * `tenants/` the tenants and `sources/` the other fleet sources (platform source only).
 */
export const FLEET_REPO_FOLDERS = [
  'bundles',
  'groups',
  'clusters',
  'rollouts',
  'lib',
  'policies',
  'notifications',
  'tenants',
  'sources',
] as const;

/** Files at the repo's root that mean something: the fleet-wide settings. */
export const FLEET_REPO_ROOT_FILES = ['fleet.yaml'] as const;

/** Whether a repo path is one the hub and the CLI read (hidden path segments aside). */
export function isFleetRepoPath(path: string): boolean {
  const slash = path.indexOf('/');
  if (slash < 0) return (FLEET_REPO_ROOT_FILES as readonly string[]).includes(path);
  return (FLEET_REPO_FOLDERS as readonly string[]).includes(path.slice(0, slash));
}
