/**
 * Sources declared through the admin API: one validator for `sources/<name>.yaml` and the
 * API's JSON (file:line for the one, the JSON field for the other), the combined
 * declarations (the file wins a name in both), and the routes' auth, 400, 409 and 403
 * answers, on in-memory ports.
 */
import { formatFleetError, parseDesiredState } from '@flotilla/shared';
import {
  ConflictError,
  createTenantKey,
  type DeclaredSourceRecord,
  type FleetSourceFile,
  type SourceDeclarationStore,
  type SourceFetcher,
  snapshotTenantScopes,
  type TenantKeyRecord,
  type TenantKeyStore,
} from '@flotilla/shared/hub';
import {
  type FleetSourceSpec,
  loadSourceSpecs,
  parseFleetSourceJson,
  type SourceSnapshot,
} from '@flotilla/shared/sources';
import type { Context } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { createApiHandler } from '../../../functions/src/http/api.ts';
import { toApiGatewayEvent } from '../../../functions/src/local/event.ts';
import { addCluster, adminKey, fakeApiDeps, MemoryFleetSource } from './fakes.ts';

const yamlSource = (name: string, spec: string) => `apiVersion: flotilla.dev/v1alpha1
kind: FleetSource
metadata:
  name: ${name}
spec:
${spec}`;

describe('one validator for files and the admin API', () => {
  const cases: {
    name: string;
    yaml: string;
    json: unknown;
    file: string[];
    api: { field: string; message: string }[];
  }[] = [
    {
      name: 'two refs',
      yaml: '  repo: https://git.example.com/x.git\n  ref: { branch: main, tag: v1 }\n',
      json: { repo: 'https://git.example.com/x.git', ref: { branch: 'main', tag: 'v1' } },
      file: ['sources/team-x.yaml:7: spec.ref: exactly one of branch, tag, semver (got branch, tag)'],
      api: [{ field: 'spec.ref', message: 'exactly one of branch, tag, semver (got branch, tag)' }],
    },
    {
      name: 'an unknown field, credentials in the URL and a short interval',
      yaml: '  repo: https://me:pw@git.example.com/x.git\n  ref: { branch: main }\n  interval: 1s\n  branch: main\n',
      json: {
        repo: 'https://me:pw@git.example.com/x.git',
        ref: { branch: 'main' },
        interval: '1s',
        branch: 'main',
      },
      file: [
        'sources/team-x.yaml:6: spec.repo: credentials do not go in the URL: use credentials.secretRef',
        'sources/team-x.yaml:8: spec.interval: at least 10s (got 1s)',
        'sources/team-x.yaml:9: spec: unknown field "branch" (expected repo, ref, path, tenant, interval, credentials)',
      ],
      api: [
        {
          field: 'spec.branch',
          message: 'unknown field "branch" (expected repo, ref, path, tenant, interval, credentials)',
        },
        { field: 'spec.repo', message: 'credentials do not go in the URL: use credentials.secretRef' },
        { field: 'spec.interval', message: 'at least 10s (got 1s)' },
      ],
    },
    {
      name: 'a number where a string goes',
      yaml: '  repo: https://git.example.com/x.git\n  ref: { tag: 1.0 }\n',
      json: { repo: 'https://git.example.com/x.git', ref: { tag: 1.0 } },
      file: ['sources/team-x.yaml:7: spec.ref.tag: expected a string, got a number (quote it: "1")'],
      api: [{ field: 'spec.ref.tag', message: 'expected a string, got a number (quote it: "1")' }],
    },
  ];
  for (const c of cases) {
    it(`reports ${c.name} at file:line in a file and by JSON field in the API`, () => {
      const { sources, errors } = loadSourceSpecs([
        { path: 'sources/team-x.yaml', content: yamlSource('team-x', c.yaml) },
      ]);
      expect(sources.size).toBe(0);
      expect(errors.map(formatFleetError)).toEqual(c.file);
      const parsed = parseFleetSourceJson({ metadata: { name: 'team-x' }, spec: c.json });
      expect(parsed.source).toBeUndefined();
      expect(parsed.problems).toEqual(c.api);
    });
  }

  it('reads the same declaration from either, and reserves the names platform and api', () => {
    const json = parseFleetSourceJson({
      metadata: { name: 'team-x' },
      spec: {
        repo: 'https://git.example.com/x.git',
        ref: { semver: '^1' },
        path: './deploy/',
        tenant: 'team-a',
        interval: '2m',
      },
    });
    const { sources } = loadSourceSpecs([
      {
        path: 'sources/team-x.yaml',
        content: yamlSource(
          'team-x',
          '  repo: https://git.example.com/x.git\n  ref: { semver: "^1" }\n  path: ./deploy/\n  tenant: team-a\n  interval: 2m\n',
        ),
      },
    ]);
    const { file: _f, pos: _p, tenantPos: _t, ...fromJson } = json.source as FleetSourceSpec;
    const { file: _f2, pos: _p2, tenantPos: _t2, ...fromFile } = sources.get('team-x') as FleetSourceSpec;
    expect(fromJson).toEqual(fromFile);
    expect(json.source?.file).toBe('api:sources/team-x');
    expect(
      parseFleetSourceJson({
        metadata: { name: 'api' },
        spec: { repo: 'https://g/x.git', ref: { branch: 'main' } },
      }).problems,
    ).toEqual([
      {
        field: 'metadata.name',
        message: '"api" is reserved (the admin API\'s declarations are at api:sources/<name>)',
      },
    ]);
    expect(
      parseFleetSourceJson({
        metadata: { name: 'platform' },
        spec: { repo: 'https://g/x.git', ref: { branch: 'main' } },
      }).problems,
    ).toEqual([{ field: 'metadata.name', message: '"platform" is the hub\'s own repository' }]);
    expect(parseFleetSourceJson([]).problems).toEqual([
      { field: 'body', message: 'expected a mapping, got a list' },
    ]);
  });

  it('combines the admin API’s declarations with the files: a name in both is the file’s, with an error naming both', () => {
    const api = (name: string) => ({
      path: `api:sources/${name}`,
      content: JSON.stringify({
        apiVersion: 'flotilla.dev/v1alpha1',
        kind: 'FleetSource',
        metadata: { name },
        spec: { repo: `https://git.example.com/${name}-api.git`, ref: { branch: 'main' } },
      }),
    });
    const { sources, errors } = loadSourceSpecs([
      {
        path: 'sources/team-a.yaml',
        content: yamlSource(
          'team-a',
          '  repo: https://git.example.com/team-a.git\n  ref: { branch: main }\n',
        ),
      },
      api('team-a'),
      api('team-x'),
    ]);
    expect([...sources.keys()].sort()).toEqual(['team-a', 'team-x']);
    expect(sources.get('team-a')?.repo).toBe('https://git.example.com/team-a.git');
    expect(sources.get('team-x')?.file).toBe('api:sources/team-x');
    expect(errors.map(formatFleetError)).toEqual([
      'sources/team-a.yaml:1: source "team-a" is declared both in sources/team-a.yaml and through the admin API (api:sources/team-a): the file\'s declaration is read; remove one of them',
    ]);
  });
});

class MemorySourceStore implements SourceDeclarationStore {
  readonly items = new Map<string, DeclaredSourceRecord>();
  async create(record: DeclaredSourceRecord) {
    if (this.items.has(record.name)) throw new ConflictError('exists');
    this.items.set(record.name, record);
  }
  async list() {
    return [...this.items.values()];
  }
  async delete(name: string) {
    return this.items.delete(name);
  }
}

class MemoryTenantKeyStore implements TenantKeyStore {
  readonly items = new Map<string, TenantKeyRecord>();
  async create(record: TenantKeyRecord) {
    this.items.set(record.keyHash, record);
  }
  async get(keyHash: string) {
    return this.items.get(keyHash);
  }
  async list() {
    return [...this.items.values()];
  }
  async delete(keyHash: string) {
    this.items.delete(keyHash);
  }
}

/** Serves one bundle `app` per source, at commit `c-<source>`. */
const fetcher: SourceFetcher = {
  async fetch(source: FleetSourceSpec): Promise<SourceSnapshot> {
    return {
      commit: `c-${source.name}`.padEnd(40, '0'),
      files: [
        {
          path: 'bundles/app/bundle.yaml',
          content: `namespace: ${source.name}\ntargets: [{clusterSelector: {}}]\n`,
        },
        {
          path: 'bundles/app/cm.yaml',
          content: `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata: {from: ${source.name}}\n`,
        },
      ],
    };
  },
};

const platformFiles: FleetSourceFile[] = [
  {
    path: 'tenants/team-a.yaml',
    content:
      'apiVersion: flotilla.dev/v1alpha1\nkind: Tenant\nmetadata: {name: team-a}\nspec:\n  namespaces: ["team-a", "team-x"]\n  clusterSelector: {}\n',
  },
  {
    path: 'sources/team-a.yaml',
    content: yamlSource(
      'team-a',
      '  repo: https://git.example.com/team-a.git\n  ref: { branch: main }\n  tenant: team-a\n',
    ),
  },
  { path: 'bundles/web/bundle.yaml', content: 'namespace: web\ntargets: [{clusterSelector: {}}]\n' },
  {
    path: 'bundles/web/cm.yaml',
    content: 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndata: {v: "1"}\n',
  },
];

function hub() {
  const declaredSources = new MemorySourceStore();
  const tenantKeys = new MemoryTenantKeyStore();
  const base = fakeApiDeps({
    source: new MemoryFleetSource('p'.repeat(40), platformFiles),
    sourceFetcher: fetcher,
  });
  const deps = { ...base, declaredSources, tenantKeys, tenantScopes: snapshotTenantScopes(base) };
  let n = 0;
  const call = async (method: string, url: string, body?: unknown, token = adminKey) => {
    const event = toApiGatewayEvent({
      method,
      url,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body: Buffer.from(body === undefined ? '' : JSON.stringify(body)),
      sourceIp: '127.0.0.1',
      requestId: `req-${++n}`,
      now: new Date('2024-05-01T12:00:00Z'),
    });
    const result = await createApiHandler(deps)(event, { awsRequestId: 'l' } as Context);
    return {
      status: result.statusCode,
      json: (result.body ? JSON.parse(result.body) : {}) as Record<string, unknown>,
    };
  };
  return { deps, call };
}

const teamX = {
  metadata: { name: 'team-x' },
  spec: { repo: 'https://git.example.com/team-x.git', ref: { branch: 'main' }, tenant: 'team-a' },
};

describe('the /v1/admin/sources routes', () => {
  it('declare, list, sync and remove a source; refuse a taken name, a bad field and a repo source', async () => {
    const { deps, call } = hub();
    await addCluster(deps.clusters, 'dev-1');
    expect((await call('POST', '/v1/admin/sync')).status).toBe(200);

    expect((await call('GET', '/v1/admin/sources', undefined, '')).status).toBe(401);
    const bad = await call('POST', '/v1/admin/sources', {
      metadata: { name: 'team-x' },
      spec: { repo: 'ftp://x', ref: {} },
    });
    expect(bad.status).toBe(400);
    expect((bad.json.error as { problems: unknown }).problems).toEqual([
      { field: 'spec.repo', message: '"ftp://x": only http(s) git URLs are supported' },
      { field: 'spec.ref', message: 'exactly one of branch, tag, semver' },
    ]);
    const taken = await call('POST', '/v1/admin/sources', { ...teamX, metadata: { name: 'team-a' } });
    expect(taken.status).toBe(409);
    expect((taken.json.error as { message: string }).message).toBe(
      'source "team-a" is declared in sources/team-a.yaml of the platform repository',
    );

    const created = await call('POST', '/v1/admin/sources', teamX);
    expect(created.status).toBe(201);
    expect(created.json.source).toMatchObject({
      name: 'team-x',
      origin: 'api',
      declaredAt: 'api:sources/team-x',
      lastFetch: null,
      createdBy: 'admin-key',
    });
    expect((await call('POST', '/v1/admin/sources', teamX)).status).toBe(409);
    // A preview of the repository's tip reads it too, before any sync has.
    const preview = await call('POST', '/v1/admin/preview', { commit: 'HEAD' });
    expect(preview.status).toBe(200);
    expect((preview.json.bundles as { name: string }[]).map((b) => b.name)).toEqual([
      'team-a/app',
      'team-x/app',
      'web',
    ]);

    const synced = await call('POST', '/v1/admin/sources/team-x/sync');
    expect(synced.status).toBe(200);
    expect(synced.json.source).toMatchObject({
      name: 'team-x',
      lastFetch: { commit: 'c-team-x'.padEnd(40, '0'), error: null },
    });
    const state = await deps.desiredStates.current('dev-1');
    expect(parseDesiredState(JSON.parse(state?.manifest ?? '{}')).bundles.map((b) => b.name)).toEqual([
      'team-a/app',
      'team-x/app',
      'web',
    ]);

    const listed = await call('GET', '/v1/admin/sources');
    expect(
      (listed.json.sources as { name: string; origin: string; document: { spec: unknown } }[]).map((s) => [
        s.name,
        s.origin,
      ]),
    ).toEqual([
      ['team-a', 'repo'],
      ['team-x', 'api'],
    ]);
    expect((listed.json.sources as { document: unknown }[])[1]?.document).toEqual({
      apiVersion: 'flotilla.dev/v1alpha1',
      kind: 'FleetSource',
      metadata: { name: 'team-x' },
      spec: {
        repo: 'https://git.example.com/team-x.git',
        ref: { branch: 'main' },
        tenant: 'team-a',
        interval: '1m',
      },
    });

    const repoOne = await call('DELETE', '/v1/admin/sources/team-a');
    expect(repoOne.status).toBe(409);
    expect((repoOne.json.error as { message: string }).message).toBe(
      'source "team-a" is declared in sources/team-a.yaml: remove it there',
    );
    expect((await call('DELETE', '/v1/admin/sources/team-x')).status).toBe(204);
    expect((await call('DELETE', '/v1/admin/sources/team-x')).status).toBe(404);
    expect((await call('POST', '/v1/admin/sources/team-x/sync')).status).toBe(404);
    expect((await call('POST', '/v1/admin/sync')).status).toBe(200);
    const after = await deps.desiredStates.current('dev-1');
    expect(parseDesiredState(JSON.parse(after?.manifest ?? '{}')).bundles.map((b) => b.name)).toEqual([
      'team-a/app',
      'web',
    ]);
  });

  it('give a tenant its own sources only, and refuse it the admin routes and others’ sources', async () => {
    const { deps, call } = hub();
    await call('POST', '/v1/admin/sources', { ...teamX, spec: { ...teamX.spec, tenant: undefined } });
    expect((await call('POST', '/v1/admin/sync')).status).toBe(200);
    const { key } = await createTenantKey(deps, { tenant: 'team-a' });

    const mine = await call('GET', '/v1/tenants/team-a/sources', undefined, key);
    expect(mine.status).toBe(200);
    expect((mine.json.sources as { name: string }[]).map((s) => s.name)).toEqual(['team-a']);
    expect((await call('POST', '/v1/tenants/team-a/sources/team-a/sync', undefined, key)).status).toBe(200);
    const other = await call('POST', '/v1/tenants/team-a/sources/team-x/sync', undefined, key);
    expect(other.status).toBe(403);
    expect((other.json.error as { message: string }).message).toBe(
      'tenant "team-a" may not act on source "team-x"',
    );
    expect((await call('GET', '/v1/admin/sources', undefined, key)).status).toBe(403);
    expect((await call('POST', '/v1/admin/sources', teamX, key)).status).toBe(403);
  });
});
