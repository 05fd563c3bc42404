/**
 * Why a SOPS file was refused. Each reason is a different fix for the fleet admin:
 * re-encrypt for this cluster's recipient, restore the file from Git, or repair it.
 */
export const sopsDecryptReasons = [
  'not-encrypted-for-this-cluster',
  'tampered',
  'mac-mismatch',
  'malformed',
] as const;
export type SopsDecryptReason = (typeof sopsDecryptReasons)[number];

/**
 * A SOPS file that cannot be decrypted, or read, with its reason. Messages name the
 * file, the value's path and the file's (public) recipients; they never hold a
 * plaintext value or an identity, so they are safe for logs and status.
 */
export class SopsDecryptError extends Error {
  readonly reason: SopsDecryptReason;
  readonly file: string;
  /** Where in the document the problem is (`data.password`), when it is about one value. */
  readonly path: string | undefined;

  constructor(
    reason: SopsDecryptReason,
    file: string,
    message: string,
    opts: { path?: string; cause?: unknown } = {},
  ) {
    super(`${file}: ${message}`, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'SopsDecryptError';
    this.reason = reason;
    this.file = file;
    this.path = opts.path;
  }
}

/** Plaintext that cannot be encrypted as a SOPS file (unparseable, already encrypted, bad options). */
export class SopsEncryptError extends Error {
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'SopsEncryptError';
  }
}
