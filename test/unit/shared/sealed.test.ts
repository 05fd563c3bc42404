/**
 * SOPS-encrypted files in the fleet repo pass through the hub as committed: rendered,
 * hashed and signed as ciphertext, never filled or overlaid. The hub does not decrypt, so a
 * file with SOPS's shape is enough here; decryption is tested in test/unit/sops and on the bed.
 */
import { canonicalJson, loadFleet, parseRenderedBundle, sha256Hash } from '@flotilla/shared';
import { describe, expect, it } from 'vitest';
import { formatted, passThroughEngine, repo } from './helpers.ts';

const SOPS_META = `sops:
  age:
    - recipient: age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq
      enc: |
        -----BEGIN AGE ENCRYPTED FILE-----
        YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSBhYmMK
        -----END AGE ENCRYPTED FILE-----
  lastmodified: "2026-12-07T00:00:00Z"
  mac: ENC[AES256_GCM,data:bWFj,iv:aXY=,tag:dGFn,type:str]
  encrypted_regex: ^(data|stringData)$
  version: 3.10.2
`;

const SECRET = `apiVersion: v1
kind: Secret
metadata:
  name: db-credentials
type: Opaque
stringData:
  password: ENC[AES256_GCM,data:c2VjcmV0,iv:aXY=,tag:dGFn,type:str]
${SOPS_META}`;

const DEPLOYMENT = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
`;

const BUNDLE = 'namespace: web\ntargets: [{ clusterSelector: {} }]\n';

function render(files: Record<string, string>) {
  const fleet = loadFleet(repo(files));
  const plan = fleet.planCluster({ name: 'c1', labels: { env: 'prod' } });
  return { fleet, plan };
}

describe('SOPS files in a bundle', () => {
  it('travel as committed beside the plain objects, with their identity and the namespace defaulted', () => {
    const { fleet, plan } = render({
      'bundles/db/bundle.yaml': BUNDLE,
      'bundles/db/deployment.yaml': DEPLOYMENT,
      'bundles/db/secret.enc.yaml': SECRET,
    });
    expect(formatted(fleet.errors)).toEqual([]);
    const rendered = plan.bundles[0]?.rendered;
    if (!rendered) throw new Error(`not rendered: ${JSON.stringify(plan.held)}`);
    const doc = parseRenderedBundle(rendered.canonical, rendered.hash);
    expect(doc.objects.map((o) => o.kind)).toEqual(['Deployment']);
    expect(doc.sealed).toEqual([
      {
        file: 'bundles/db/secret.enc.yaml',
        format: 'yaml',
        content: SECRET,
        objects: [{ apiVersion: 'v1', kind: 'Secret', name: 'db-credentials', namespace: 'web' }],
      },
    ]);
    // The canonical form is the document's canonical JSON (keys sorted, sealed last).
    expect(rendered.canonical).toBe(canonicalJson(doc));
    expect(rendered.hash).toBe(sha256Hash(rendered.canonical));
    expect(rendered.objects.map((o) => o.id)).toEqual([
      'apps/Deployment/web/web',
      '/Secret/web/db-credentials',
    ]);
  });

  it('leave a bundle without them hashed as before', () => {
    const { plan } = render({ 'bundles/db/bundle.yaml': BUNDLE, 'bundles/db/deployment.yaml': DEPLOYMENT });
    const rendered = plan.bundles[0]?.rendered;
    if (!rendered) throw new Error('not rendered');
    expect(Object.keys(JSON.parse(rendered.canonical)).sort()).toEqual([
      'apiVersion',
      'bundle',
      'kind',
      'objects',
    ]);
  });

  it('read JSON SOPS files too', () => {
    const json = JSON.stringify(
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'token' },
        data: { token: 'ENC[AES256_GCM,data:c2VjcmV0,iv:aXY=,tag:dGFn,type:str]' },
        sops: { age: [], lastmodified: '2026-12-07T00:00:00Z', mac: 'ENC[x]', version: '3.10.2' },
      },
      null,
      2,
    );
    const { fleet, plan } = render({ 'bundles/db/bundle.yaml': BUNDLE, 'bundles/db/token.enc.json': json });
    expect(formatted(fleet.errors)).toEqual([]);
    const rendered = plan.bundles[0]?.rendered;
    if (!rendered) throw new Error('not rendered');
    const doc = parseRenderedBundle(rendered.canonical, rendered.hash);
    expect(doc.sealed?.[0]).toMatchObject({ format: 'json', content: json, objects: [{ name: 'token' }] });
  });

  it('refuse an encrypted identity, naming the field and the file:line', () => {
    const { fleet } = render({
      'bundles/db/bundle.yaml': BUNDLE,
      'bundles/db/secret.enc.yaml': SECRET.replace(
        'name: db-credentials',
        'name: ENC[AES256_GCM,data:eA==,iv:aXY=,tag:dGFn,type:str]',
      ),
    });
    expect(formatted(fleet.bundles.find((b) => b.name === 'db')?.errors ?? [])).toEqual([
      "bundles/db/secret.enc.yaml:4: metadata.name is encrypted: the hub places and prunes objects by apiVersion, kind and metadata, so keep them in clear (encrypt only the values: sops --encrypted-regex '^(data|stringData)$')",
    ]);
  });

  it('refuse a variable in the file, which nothing may fill', () => {
    const { fleet } = render({
      'bundles/db/bundle.yaml': BUNDLE,
      'bundles/db/secret.enc.yaml': SECRET.replace('type: Opaque', 'type: ${values.kind}'),
    });
    expect(formatted(fleet.bundles.find((b) => b.name === 'db')?.errors ?? [])).toEqual([
      'bundles/db/secret.enc.yaml:5: ${values.kind}: variables are not filled in a SOPS-encrypted file (its MAC covers the file as committed); write the value in the file',
    ]);
  });

  it('refuse a file that mixes encrypted and plain documents', () => {
    const { fleet } = render({
      'bundles/db/bundle.yaml': BUNDLE,
      'bundles/db/secret.enc.yaml': `${SECRET}---\n${DEPLOYMENT}`,
    });
    expect(formatted(fleet.bundles.find((b) => b.name === 'db')?.errors ?? [])).toEqual([
      'bundles/db/secret.enc.yaml:20: bundles/db/secret.enc.yaml mixes SOPS-encrypted and plain documents; encrypt every document of the file, or move the plain ones to another file',
    ]);
  });

  it('refuse a plain object with the identity of an encrypted one', () => {
    const { plan } = render({
      'bundles/db/bundle.yaml': BUNDLE,
      'bundles/db/secret.enc.yaml': SECRET,
      'bundles/db/plain.yaml': 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: db-credentials\n',
    });
    expect(formatted(plan.held.flatMap((h) => h.errors))).toEqual([
      'bundles/db/secret.enc.yaml:1: duplicate object Secret "web/db-credentials" (also at bundles/db/plain.yaml:1)',
    ]);
  });

  it('refuse an overlay patch of an encrypted object', async () => {
    const fleet = loadFleet(
      repo({
        'bundles/db/bundle.yaml': `${BUNDLE}customizations:\n  - clusterSelector: env=prod\n    overlay: prod\n`,
        'bundles/db/secret.enc.yaml': SECRET,
        'bundles/db/overlays/prod/secret.yaml':
          'apiVersion: v1\nkind: Secret\nmetadata:\n  name: db-credentials\nstringData:\n  user: admin\n',
      }),
    );
    const cluster = { name: 'c1', labels: { env: 'prod' } };
    await fleet.prepare([cluster], { engine: passThroughEngine });
    expect(formatted(fleet.planCluster(cluster).held.flatMap((h) => h.errors))).toEqual([
      'bundles/db/overlays/prod/secret.yaml:1: this patch targets an object of bundles/db/secret.enc.yaml, which is SOPS-encrypted: overlays cannot change an encrypted file (its MAC covers it as committed); keep secrets that differ per target in bundles of their own',
    ]);
  });
});

describe('plain Secrets in the fleet repo', () => {
  const PLAIN = 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: api-token\nstringData:\n  token: hunter2\n';

  it('draw a warning at their file and line, and still render', () => {
    const { fleet, plan } = render({
      'bundles/db/bundle.yaml': BUNDLE,
      'bundles/db/token.yaml': PLAIN,
      'bundles/db/secret.enc.yaml': SECRET,
      'bundles/db/empty.yaml': 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: filled-later\n',
    });
    expect(formatted(fleet.errors)).toEqual([]);
    expect(formatted(fleet.warnings)).toEqual([
      'bundles/db/token.yaml:1: Secret "api-token" holds plain data in the fleet repo: encrypt it for the clusters it goes to (flotilla secrets encrypt bundles/db/token.yaml --for db; docs/secrets.md)',
    ]);
    expect(plan.bundles.map((b) => b.ref.name)).toEqual(['db']);
  });

  it('hold their bundle when fleet.yaml refuses them', () => {
    const { fleet, plan } = render({
      'fleet.yaml': 'secrets:\n  plaintext: refuse\n',
      'bundles/db/bundle.yaml': BUNDLE,
      'bundles/db/token.yaml': PLAIN,
    });
    expect(fleet.warnings).toEqual([]);
    expect(formatted(plan.held.flatMap((h) => h.errors))).toEqual([
      'bundles/db/token.yaml:1: Secret "api-token" holds plain data in the fleet repo: encrypt it for the clusters it goes to (flotilla secrets encrypt bundles/db/token.yaml --for db; docs/secrets.md); fleet.yaml refuses plain Secrets (secrets.plaintext: refuse)',
    ]);
  });

  it('name a wrong setting in fleet.yaml', () => {
    const { fleet } = render({
      'fleet.yaml': 'secrets:\n  plaintext: deny\n',
      'bundles/db/bundle.yaml': BUNDLE,
      'bundles/db/d.yaml': DEPLOYMENT,
    });
    expect(formatted(fleet.errors)).toEqual([
      'fleet.yaml:2: secrets.plaintext: expected warn or refuse, got "deny"',
    ]);
  });
});

describe('SOPS files with Helm', () => {
  const chart = {
    'bundles/grafana/chart/Chart.yaml': 'apiVersion: v2\nname: grafana\nversion: 1.0.0\n',
    'bundles/grafana/chart/templates/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n',
  };

  it('refuse an encrypted values file, with the supported pattern as hint', () => {
    const fleet = loadFleet(
      repo({
        ...chart,
        'bundles/grafana/bundle.yaml':
          'targets: [{ clusterSelector: {} }]\nhelm:\n  chart: chart\n  valuesFiles: [secret-values.yaml]\n',
        'bundles/grafana/secret-values.yaml': `adminPassword: ENC[AES256_GCM,data:c2VjcmV0,iv:aXY=,tag:dGFn,type:str]\n${SOPS_META}`,
      }),
    );
    expect(formatted(fleet.bundles.find((b) => b.name === 'grafana')?.errors ?? [])).toEqual([
      'bundles/grafana/secret-values.yaml:1: bundles/grafana/secret-values.yaml is SOPS-encrypted: Helm values are rendered at the hub, which never decrypts. Put the secret in a SOPS-encrypted Secret next to bundle.yaml and have the chart read it (an existingSecret value)',
    ]);
  });

  it('carry the SOPS files next to bundle.yaml beside the chart', () => {
    const fleet = loadFleet(
      repo({
        ...chart,
        'bundles/grafana/bundle.yaml': 'targets: [{ clusterSelector: {} }]\nhelm:\n  chart: chart\n',
        'bundles/grafana/admin.sops.yaml': SECRET,
      }),
    );
    expect(formatted(fleet.errors)).toEqual([]);
    const state = fleet.bundles.find((b) => b.name === 'grafana');
    expect(state?.errors).toEqual([]);
  });
});
