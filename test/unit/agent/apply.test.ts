import type { KubeJson } from '@flotilla/shared/agent';
import { describe, expect, it } from 'vitest';
import { KubeApiError, type KubeClient, type KubeResponse } from '../../../agent/src/kube/client.ts';
import type { RestMapper } from '../../../agent/src/kube/discovery.ts';
import { ResourceManager } from '../../../agent/src/ssa/resource-manager.ts';

type Json = Record<string, unknown>;

/** The fields a body sets, as the API server writes them in managedFields (lists as leaves: enough here). */
function fieldsOf(value: unknown): Json {
  const out: Json = {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return out;
  for (const [k, v] of Object.entries(value)) {
    if (k === 'apiVersion' || k === 'kind' || (k === 'metadata' && typeof v === 'object')) {
      if (k !== 'metadata') continue;
      const { name: _n, namespace: _ns, ...rest } = v as Json;
      if (Object.keys(rest).length > 0) out['f:metadata'] = fieldsOf(rest);
      continue;
    }
    out[`f:${k}`] = fieldsOf(v);
  }
  return out;
}

/**
 * A hand-written stand-in for the API server's answers to the requests the apply path
 * makes (read, apply, dry run, JSON patch, delete), for counting requests per path. The
 * real semantics are the integration tests' business.
 */
class FakeApi {
  readonly objects = new Map<string, Json>();
  readonly requests: string[] = [];
  immutable = false;
  #rv = 1;

  client(): KubeClient {
    const request = async <T>(method: string, path: string, opts: { body?: unknown } = {}) =>
      this.handle(method, path, opts.body) as Promise<KubeResponse<T>>;
    const get = async <T>(path: string) => {
      try {
        return (await request<T>('GET', path)).body;
      } catch (e) {
        if (e instanceof KubeApiError && e.status === 404) return undefined;
        throw e;
      }
    };
    return { request, get, list: async () => [] } as unknown as KubeClient;
  }

  async handle(method: string, full: string, body: unknown): Promise<KubeResponse<unknown>> {
    const [path = '', query = ''] = full.split('?');
    const dryRun = query.includes('dryRun=All');
    this.requests.push(
      `${method}${dryRun ? ' dry-run' : ''}${body && Array.isArray(body) ? ' json-patch' : ''}`,
    );
    const live = this.objects.get(path);
    if (method === 'GET') {
      if (!live) throw new KubeApiError(404, 'not found', 'NotFound');
      return { status: 200, body: structuredClone(live), date: undefined };
    }
    if (method === 'DELETE') {
      this.objects.delete(path);
      return { status: 200, body: {}, date: undefined };
    }
    if (method === 'PATCH' && Array.isArray(body)) {
      const replace = body.find((op: Json) => op.op === 'replace') as Json;
      const next = structuredClone(live) as Json;
      (next.metadata as Json).managedFields = replace.value;
      this.objects.set(path, next);
      return { status: 200, body: structuredClone(next), date: undefined };
    }
    const applied = body as Json;
    if (live && this.immutable && JSON.stringify(live.data) !== JSON.stringify(applied.data)) {
      throw new KubeApiError(
        422,
        'ConfigMap "c" is invalid: data: Invalid value: ...: field is immutable',
        'Invalid',
        {
          causes: [
            { reason: 'FieldValueInvalid', message: 'Invalid value: ...: field is immutable', field: 'data' },
          ],
        },
      );
    }
    const others = ((live?.metadata as Json | undefined)?.managedFields as Json[] | undefined)?.filter(
      (m) => m.manager !== 'flotilla-agent',
    );
    const next: Json = {
      ...applied,
      metadata: {
        ...(applied.metadata as Json),
        uid: live ? (live.metadata as Json).uid : `uid-${this.#rv}`,
        resourceVersion: String(this.#rv++),
        managedFields: [
          ...(others ?? []),
          {
            manager: 'flotilla-agent',
            operation: 'Apply',
            fieldsType: 'FieldsV1',
            fieldsV1: fieldsOf(applied),
          },
        ],
      },
    };
    if (!dryRun) this.objects.set(path, next);
    return { status: live ? 200 : 201, body: structuredClone(next), date: undefined };
  }
}

const mapper = {
  find: async () => ({ resource: 'configmaps', namespaced: true }),
  invalidate() {},
} as unknown as RestMapper;

const configMap = (data: Record<string, string>, annotations?: Record<string, string>): KubeJson => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'c', namespace: 'app', ...(annotations ? { annotations } : {}) },
  data,
});

function setUp() {
  const api = new FakeApi();
  const manager = new ResourceManager({ client: api.client(), mapper });
  const apply = async (object: KubeJson, previous?: Map<string, string>) => {
    api.requests.length = 0;
    const [p] = await manager.prepare([object]);
    const changes = await manager.applyPrepared(p ? [p] : [], previous ? { previous } : {});
    return {
      changes,
      action: changes.entries[0]?.action,
      digest: p?.digest ?? '',
      requests: [...api.requests],
    };
  };
  return { api, apply };
}

const ID = '/ConfigMap/app/c';

describe('apply: unchanged is decided by a dry run, and new objects cost one request', () => {
  it('creates an object the inventory does not know with one apply, and skips it by digest afterwards', async () => {
    const { apply } = setUp();
    const first = await apply(configMap({ a: '1' }), new Map());
    expect(first.action).toBe('created');
    expect(first.requests).toEqual(['PATCH']);
    const again = await apply(configMap({ a: '1' }), new Map([[ID, first.digest]]));
    expect(again.action).toBe('unchanged');
    expect(again.requests).toEqual([]);
  });

  it('reads and dry-runs an object whose digest changed, and applies only when the result differs', async () => {
    const { apply } = setUp();
    await apply(configMap({ a: '1' }), new Map());
    // Another digest, same result on the server (a form-only change, or labels moved): no real apply.
    const same = await apply(configMap({ a: '1' }), new Map([[ID, 'another-digest']]));
    expect(same.action).toBe('unchanged');
    expect(same.requests).toEqual(['GET', 'PATCH dry-run']);
    const changed = await apply(configMap({ a: '2' }), new Map([[ID, 'another-digest']]));
    expect(changed.action).toBe('configured');
    expect(changed.requests).toEqual(['GET', 'PATCH dry-run', 'PATCH']);
    // A key removed from git changes the set of fields the agent owns: applied.
    const removed = await apply(configMap({}), new Map([[ID, 'another-digest']]));
    expect(removed.action).toBe('configured');
  });

  it("takes over kubectl's client-side fields when it adopts an object, then applies again", async () => {
    const { api, apply } = setUp();
    api.objects.set('/api/v1/namespaces/app/configmaps/c', {
      ...configMap({ a: '1', extra: 'x' }),
      metadata: {
        name: 'c',
        namespace: 'app',
        uid: 'u0',
        resourceVersion: '100',
        annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}' },
        managedFields: [
          {
            manager: 'kubectl-client-side-apply',
            operation: 'Update',
            fieldsType: 'FieldsV1',
            fieldsV1: { 'f:data': { 'f:a': {}, 'f:extra': {} } },
          },
        ],
      },
    });
    const adopted = await apply(configMap({ a: '1' }), new Map());
    expect(adopted.action).toBe('configured');
    expect(adopted.requests).toEqual(['PATCH', 'PATCH json-patch', 'PATCH']);
    const live = api.objects.get('/api/v1/namespaces/app/configmaps/c') as {
      metadata: { managedFields: Json[] };
    };
    expect(live.metadata.managedFields.map((m) => m.manager)).toEqual(['flotilla-agent']);
  });

  it('names the immutable field, or re-creates the object when it is annotated flotilla.dev/force', async () => {
    const { api, apply } = setUp();
    await apply(configMap({ a: '1' }), new Map());
    api.immutable = true;
    const refused = await apply(configMap({ a: '2' }), new Map([[ID, 'another-digest']]));
    expect(refused.changes.failures).toEqual([
      {
        id: ID,
        ref: { apiVersion: 'v1', kind: 'ConfigMap', namespace: 'app', name: 'c' },
        message:
          'cannot change immutable field data of ConfigMap app/c: annotate it flotilla.dev/force: "true" to have the agent delete it and create it again',
        status: 422,
        reason: 'Invalid',
      },
    ]);
    const forced = await apply(configMap({ a: '2' }, { 'flotilla.dev/force': 'true' }), new Map([[ID, 'x']]));
    expect(forced.action).toBe('created');
    expect(forced.requests).toEqual(['GET', 'PATCH dry-run', 'PATCH', 'GET', 'DELETE', 'GET', 'PATCH']);
  });
});
