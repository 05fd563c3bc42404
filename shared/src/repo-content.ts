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
