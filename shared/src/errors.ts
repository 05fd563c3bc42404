/** Where something sits in the fleet repo: a file path and a 1-based line and column. */
export interface SourcePos {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

/**
 * A problem found in the fleet repo, as a value. `file` is the repo-relative path and
 * `line` is 1-based; `bundle` names the bundle the problem belongs to, when it belongs
 * to one.
 */
export interface FleetError {
  readonly file: string;
  readonly line: number;
  readonly column?: number;
  readonly message: string;
  readonly bundle?: string;
}

/**
 * Formats an error the way compilers do: `file:line: message`.
 *
 * @example
 * formatFleetError({ file: 'bundles/web/bundle.yaml', line: 7, message: 'paused: expected a boolean' });
 * // 'bundles/web/bundle.yaml:7: paused: expected a boolean'
 */
export function formatFleetError(error: FleetError): string {
  return `${error.file}:${error.line}: ${error.message}`;
}

/** Orders errors by file, line, column, then message, so that lists of errors are deterministic. */
export function compareFleetErrors(a: FleetError, b: FleetError): number {
  if (a.file !== b.file) return a.file < b.file ? -1 : 1;
  if (a.line !== b.line) return a.line - b.line;
  const ac = a.column ?? 0;
  const bc = b.column ?? 0;
  if (ac !== bc) return ac - bc;
  if (a.message !== b.message) return a.message < b.message ? -1 : 1;
  const ab = a.bundle ?? '';
  const bb = b.bundle ?? '';
  return ab < bb ? -1 : ab > bb ? 1 : 0;
}

/** Sorts and de-duplicates errors (same file, line, column, message and bundle). */
export function normalizeFleetErrors(errors: Iterable<FleetError>): FleetError[] {
  const seen = new Map<string, FleetError>();
  for (const e of errors) {
    const key = `${e.file}\0${e.line}\0${e.column ?? 0}\0${e.message}\0${e.bundle ?? ''}`;
    if (!seen.has(key)) seen.set(key, e);
  }
  return [...seen.values()].sort(compareFleetErrors);
}

/** Builds an error value at a position, optionally attributed to a bundle. */
export function fleetError(pos: SourcePos, message: string, bundle?: string): FleetError {
  return bundle === undefined
    ? { file: pos.file, line: pos.line, column: pos.column, message }
    : { file: pos.file, line: pos.line, column: pos.column, message, bundle };
}

/** Thrown by {@link parseLabelSelector} when a string selector is not valid kubectl `-l` syntax. */
export class LabelSelectorSyntaxError extends Error {
  /** 0-based offset in the selector text where the problem was found. */
  readonly position: number;
  constructor(message: string, position: number, options?: ErrorOptions) {
    super(message, options);
    this.name = 'LabelSelectorSyntaxError';
    this.position = position;
  }
}

/** Thrown when a desired-state manifest does not have the documented shape. */
export class InvalidDesiredStateError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'InvalidDesiredStateError';
  }
}

/** Thrown when a desired-state manifest's signature does not verify with the pinned key. */
export class DesiredStateSignatureError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'DesiredStateSignatureError';
  }
}

/** Thrown when a rendered bundle's bytes do not match their content hash or shape. */
export class RenderedBundleIntegrityError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'RenderedBundleIntegrityError';
  }
}

/** Thrown when the files handed to the core are themselves inconsistent (a caller bug, not a repo error). */
export class FleetInputError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'FleetInputError';
  }
}
