/**
 * Opens a bundle's SOPS files just before apply, in memory: the data key unwrapped with one
 * of the cluster's age identities, every value authenticated with its path, the file's MAC
 * checked. The hub and the agent's cache only ever hold the ciphertext. Namespace defaulting
 * and the agent's labels come after decryption (in `prepare`), so the file reaches the
 * decryption exactly as committed.
 */
import type { KubeJson, SealedFile } from '@flotilla/shared/agent';
import type { SecretKeysPort } from './ports.ts';

/** A bundle whose SOPS files cannot be opened on this cluster: the bundle fails, nothing of it is applied. */
export class SealedFileError extends Error {
  readonly file: string;
  /** The library's reasons (`not-encrypted-for-this-cluster`, `tampered`, `mac-mismatch`, `malformed`), or the agent's own. */
  readonly reason: string;
  constructor(file: string, reason: SealedFileError['reason'], message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'SealedFileError';
    this.file = file;
    this.reason = reason;
  }
}

/**
 * The plaintext objects of a bundle's SOPS files, in file order, each with the namespace
 * the hub recorded for it when the file leaves it out.
 *
 * @throws {SealedFileError} naming the file and why (not encrypted for this cluster,
 *   tampered, MAC mismatch, malformed); never the values.
 */
export async function openSealedFiles(
  files: readonly SealedFile[],
  keys: SecretKeysPort | undefined,
  signal?: AbortSignal,
): Promise<KubeJson[]> {
  if (files.length === 0) return [];
  const first = files[0] as SealedFile;
  if (!keys)
    throw new SealedFileError(
      first.file,
      'no-key',
      `${first.file}: SOPS-encrypted, and this agent has no age key to open it`,
    );
  // Loaded on first use: an agent whose bundles have no SOPS files never holds the age and SOPS code.
  const { decryptSopsFile, SopsDecryptError } = await import('@flotilla/shared/sops');
  const identities = await keys.identities(signal);
  if (identities.length === 0)
    throw new SealedFileError(
      first.file,
      'no-key',
      `${first.file}: SOPS-encrypted, and this agent has no age key yet`,
    );
  const out: KubeJson[] = [];
  for (const file of files) {
    let docs: Record<string, unknown>[];
    try {
      docs = await decryptSopsFile(file.content, file.format, identities, { file: file.file });
    } catch (e) {
      if (e instanceof SopsDecryptError)
        throw new SealedFileError(file.file, e.reason, e.message, { cause: e });
      throw e;
    }
    if (docs.length !== file.objects.length)
      throw new SealedFileError(
        file.file,
        'identity-mismatch',
        `${file.file}: decrypted to ${docs.length} objects where the hub recorded ${file.objects.length}`,
      );
    docs.forEach((doc, i) => {
      const want = file.objects[i] as SealedFile['objects'][number];
      const object = doc as unknown as KubeJson;
      const meta = (object.metadata ?? {}) as { name?: unknown; namespace?: unknown };
      if (object.apiVersion !== want.apiVersion || object.kind !== want.kind || meta.name !== want.name)
        throw new SealedFileError(
          file.file,
          'identity-mismatch',
          `${file.file}: document ${i + 1} is not the ${want.kind} "${want.name}" the hub recorded`,
        );
      out.push(
        want.namespace !== undefined && meta.namespace === undefined
          ? ({ ...object, metadata: { ...object.metadata, namespace: want.namespace } } as KubeJson)
          : object,
      );
    });
  }
  return out;
}
