import type { KeyObject } from 'node:crypto';
import {
  type ContentHash,
  type DesiredState,
  manifestEtag,
  openSignedDesiredState,
  parseRenderedBundle,
} from '@flotilla/shared/agent';
import type { CachedDesiredState, HubPort, VerifiedBundle, VerifiedDesiredState } from './ports.ts';

/** A desired state that must not be applied: it failed verification, or it is older than one already verified. */
export class RefusedDesiredStateError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'RefusedDesiredStateError';
  }
}

/**
 * Checks what the hub (or the cache) hands the agent before any of it is applied: the
 * manifest's Ed25519 signature with the key pinned at bootstrap, that it is this
 * cluster's, and every bundle against the hash the manifest names.
 */
export class DesiredStateVerifier {
  readonly #clusterId: string;
  readonly #key: KeyObject | string;
  readonly #hub: Pick<HubPort, 'fetchBundle'>;

  constructor(opts: {
    clusterId: string;
    hubPublicKey: KeyObject | string;
    hub: Pick<HubPort, 'fetchBundle'>;
  }) {
    this.#clusterId = opts.clusterId;
    this.#key = opts.hubPublicKey;
    this.#hub = opts.hub;
  }

  /**
   * The manifest of a signed desired state, once its signature verifies and it names this cluster.
   *
   * @throws anything when it must be refused.
   */
  open(signed: unknown): DesiredState {
    const manifest = openSignedDesiredState(signed, this.#key);
    if (manifest.cluster !== this.#clusterId) {
      throw new RefusedDesiredStateError(
        `the desired state is for cluster "${manifest.cluster}", not for "${this.#clusterId}"`,
      );
    }
    return manifest;
  }

  #bundle(name: string, hash: ContentHash, canonical: string): VerifiedBundle {
    const document = parseRenderedBundle(canonical, hash);
    if (document.bundle !== name) {
      throw new RefusedDesiredStateError(
        `bundle ${hash} is "${document.bundle}", but the manifest calls it "${name}"`,
      );
    }
    // Only the text is kept: parsed, a thousand objects take several megabytes more for the
    // whole time the agent idles, and a reconcile parses them again in milliseconds.
    return { hash, canonical, parse: () => parseRenderedBundle(canonical, hash) };
  }

  /**
   * Verifies the bundles of an opened manifest, fetching from the hub those not in `known`
   * (four at a time).
   *
   * @throws {HubError} when a bundle cannot be fetched (the hub's fault, retried later).
   * @throws anything else when the desired state must be refused.
   */
  async complete(
    manifest: DesiredState,
    signed: unknown,
    known: VerifiedDesiredState | undefined,
    signal?: AbortSignal,
  ): Promise<VerifiedDesiredState> {
    const have = known?.bundles ?? new Map<string, VerifiedBundle>();
    const bundles = new Map<string, VerifiedBundle>();
    for (const r of manifest.bundles) {
      const b = have.get(r.hash);
      if (b) bundles.set(r.hash, this.#bundle(r.name, r.hash, b.canonical));
    }
    const refs = manifest.bundles.filter((r) => !have.has(r.hash));
    let next = 0;
    const worker = async () => {
      while (next < refs.length) {
        const ref = refs[next++];
        if (!ref) break;
        const canonical = await this.#hub.fetchBundle(ref.hash, signal);
        bundles.set(ref.hash, this.#bundle(ref.name, ref.hash, canonical));
      }
    };
    await Promise.all(Array.from({ length: Math.min(4, refs.length) }, worker));
    return { manifest, etag: manifestEtag(manifest), signed, bundles };
  }

  /**
   * A desired state from the cluster's cache, verified as one from the hub would be.
   *
   * @throws anything when it does not verify.
   */
  fromCache(cached: CachedDesiredState): VerifiedDesiredState {
    const manifest = this.open(cached.signed);
    const bundles = new Map<string, VerifiedBundle>();
    for (const ref of manifest.bundles) {
      const canonical = cached.bundles.get(ref.hash);
      if (canonical === undefined)
        throw new RefusedDesiredStateError(`bundle ${ref.name} (${ref.hash}) is not in the cache`);
      bundles.set(ref.hash, this.#bundle(ref.name, ref.hash, canonical));
    }
    return { manifest, etag: manifestEtag(manifest), signed: cached.signed, bundles };
  }
}
