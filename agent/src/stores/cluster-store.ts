import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { KubeClient } from '../kube/client.ts';

/** A ConfigMap or Secret as the store writes and reads it. */
interface StoreObject {
  readonly metadata: {
    readonly name: string;
    readonly labels?: Record<string, string>;
    readonly annotations?: Record<string, string>;
  };
  readonly data?: Record<string, string>;
  readonly binaryData?: Record<string, string>;
}

export interface ClusterStoreOptions {
  readonly namespace: string;
  /** ConfigMaps for what may be read by anyone with access to the namespace; Secrets for the rest. */
  readonly kind: 'ConfigMap' | 'Secret';
  /** Name prefix of the objects, and the value of their `<group>/store` label. */
  readonly prefix: string;
  readonly fieldManager: string;
  readonly labelGroup: string;
  /** Bytes per object before splitting. Default 512 KiB: well under the API's 1 MiB per object, base64 included. */
  readonly chunkBytes?: number;
}

/** Values above this are gzipped before they are stored. */
const gzipAboveBytes = 64 * 1024;

/**
 * Text values kept in the spoke cluster itself, one value per key, in ConfigMaps or Secrets
 * of the agent's namespace. A value too large for one object is gzipped and split into
 * chunks; the first chunk, written last, holds the count and the value's SHA-256, so a
 * write cut short leaves either the old value readable or the key unreadable, never a
 * wrong value.
 */
export class ClusterStore {
  readonly #client: KubeClient;
  readonly #opts: Required<ClusterStoreOptions>;
  readonly #collection: string;
  /** Chunk counts of the keys as last read or written. */
  readonly #chunks = new Map<string, number>();
  /** Keys that {@link readAll} found incomplete or corrupt. */
  problems: string[] = [];

  constructor(client: KubeClient, opts: ClusterStoreOptions) {
    this.#client = client;
    this.#opts = { chunkBytes: 512 * 1024, ...opts };
    const resource = opts.kind === 'ConfigMap' ? 'configmaps' : 'secrets';
    this.#collection = `/api/v1/namespaces/${encodeURIComponent(opts.namespace)}/${resource}`;
  }

  #label(name: string): string {
    return `${this.#opts.labelGroup}/${name}`;
  }

  #name(key: string, chunk: number): string {
    return chunk === 0 ? `${this.#opts.prefix}-${key}` : `${this.#opts.prefix}-${key}-c${chunk}`;
  }

  /** Every readable value, by key (one list request). */
  async readAll(): Promise<Map<string, string>> {
    const items = await this.#client.list<StoreObject>(this.#collection, {
      labelSelector: `${this.#label('store')}=${this.#opts.prefix}`,
    });
    const byKey = new Map<string, Map<number, StoreObject>>();
    for (const item of items) {
      const key = item.metadata.labels?.[this.#label('key')];
      if (!key) continue;
      const chunk = Number(item.metadata.annotations?.[this.#label('chunk')] ?? '0');
      const chunks = byKey.get(key) ?? new Map<number, StoreObject>();
      chunks.set(chunk, item);
      byKey.set(key, chunks);
    }
    const out = new Map<string, string>();
    this.problems = [];
    this.#chunks.clear();
    for (const [key, chunks] of byKey) {
      const head = chunks.get(0);
      const count = Number(head?.metadata.annotations?.[this.#label('chunks')] ?? '0');
      this.#chunks.set(key, Math.max(Number.isInteger(count) ? count : 0, Math.max(...chunks.keys()) + 1));
      if (!head || !Number.isInteger(count) || count < 1) {
        this.problems.push(`${key}: first chunk missing`);
        continue;
      }
      const parts: Buffer[] = [];
      for (let i = 0; i < count; i++) {
        const part = chunks.get(i);
        if (!part) break;
        parts.push(this.#payload(part));
      }
      if (parts.length !== count) {
        this.problems.push(`${key}: ${parts.length} of ${count} chunks`);
        continue;
      }
      let bytes = Buffer.concat(parts);
      try {
        if (head.metadata.annotations?.[this.#label('encoding')] === 'gzip') bytes = gunzipSync(bytes);
      } catch {
        this.problems.push(`${key}: not valid gzip`);
        continue;
      }
      const sum = createHash('sha256').update(bytes).digest('hex');
      if (sum !== head.metadata.annotations?.[this.#label('sha256')]) {
        this.problems.push(`${key}: checksum mismatch`);
        continue;
      }
      out.set(key, bytes.toString('utf8'));
    }
    return out;
  }

  #payload(item: StoreObject): Buffer {
    const plainConfigMap = this.#opts.kind === 'ConfigMap' && item.data?.content !== undefined;
    if (plainConfigMap) return Buffer.from(item.data?.content ?? '', 'utf8');
    const encoded = this.#opts.kind === 'ConfigMap' ? item.binaryData?.content : item.data?.content;
    return Buffer.from(encoded ?? '', 'base64');
  }

  /** Stores a value under `key` (a label value: at most 63 characters), replacing what was there. */
  async write(key: string, text: string): Promise<void> {
    const raw = Buffer.from(text, 'utf8');
    const gzip = raw.length > gzipAboveBytes;
    const bytes = gzip ? gzipSync(raw) : raw;
    const size = this.#opts.chunkBytes;
    const count = Math.max(1, Math.ceil(bytes.length / size));
    const sum = createHash('sha256').update(raw).digest('hex');
    // Later chunks first: the head, which makes the new value visible, goes last.
    for (let i = count - 1; i >= 0; i--) {
      const part = bytes.subarray(i * size, (i + 1) * size);
      const annotations: Record<string, string> =
        i === 0
          ? {
              [this.#label('chunks')]: String(count),
              [this.#label('encoding')]: gzip ? 'gzip' : 'plain',
              [this.#label('sha256')]: sum,
            }
          : { [this.#label('chunk')]: String(i) };
      await this.#apply(this.#name(key, i), key, annotations, part, gzip);
    }
    const before = this.#chunks.get(key) ?? 0;
    for (let i = count; i < before; i++) await this.#delete(this.#name(key, i));
    this.#chunks.set(key, count);
  }

  async #apply(
    name: string,
    key: string,
    annotations: Record<string, string>,
    part: Buffer,
    binary: boolean,
  ) {
    const content =
      this.#opts.kind === 'Secret'
        ? { data: { content: part.toString('base64') } }
        : binary
          ? { binaryData: { content: part.toString('base64') } }
          : { data: { content: part.toString('utf8') } };
    const object = {
      apiVersion: 'v1',
      kind: this.#opts.kind,
      metadata: {
        name,
        namespace: this.#opts.namespace,
        labels: {
          [this.#label('store')]: this.#opts.prefix,
          [this.#label('key')]: key,
          'app.kubernetes.io/managed-by': this.#opts.fieldManager,
        },
        annotations,
      },
      ...(this.#opts.kind === 'Secret' ? { type: 'Opaque' } : {}),
      ...content,
    };
    await this.#client.request(
      'PATCH',
      `${this.#collection}/${encodeURIComponent(name)}?fieldManager=${encodeURIComponent(this.#opts.fieldManager)}&force=true`,
      { body: object, contentType: 'application/apply-patch+yaml' },
    );
  }

  async #delete(name: string): Promise<void> {
    try {
      await this.#client.request('DELETE', `${this.#collection}/${encodeURIComponent(name)}`);
    } catch (e) {
      if ((e as { status?: number }).status !== 404) throw e;
    }
  }

  /** Removes a key and all its chunks. */
  async remove(key: string): Promise<void> {
    const count = Math.max(1, this.#chunks.get(key) ?? 1);
    // The head first: from then on the key reads as absent, whatever is left of it.
    for (let i = 0; i < count; i++) await this.#delete(this.#name(key, i));
    this.#chunks.delete(key);
  }
}
