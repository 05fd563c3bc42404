/**
 * A cluster's age recipients as its agent reports them: how the hub validates them, keeps
 * them on the cluster record only when they change, shows them, and carries an admin's
 * key-rotation request to the agent until the agent says it was done.
 */
import { ageRecipientProblem, recipientLimits, recipientsProblems } from '@flotilla/shared';
import {
  type ClusterRecord,
  clusterView,
  parseStatusReport,
  recordClusterStatus,
  requestKeyRotation,
} from '@flotilla/shared/hub';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import type { Context } from 'aws-lambda';
import { beforeAll, describe, expect, it } from 'vitest';
import { createApiHandler } from '../../../functions/src/http/api.ts';
import { toApiGatewayEvent } from '../../../functions/src/local/event.ts';
import {
  addCluster,
  adminKey,
  fakeApiDeps,
  type MemoryClusterStore,
  statusReport,
  statusReportProblems,
} from './fakes.ts';

let a: string;
let b: string;
let c: string;

beforeAll(async () => {
  const made = await Promise.all([1, 2, 3].map(async () => identityToRecipient(await generateIdentity())));
  [a, b, c] = made as [string, string, string];
});

/** `value` with the character at `i` replaced by another bech32 character. */
function flip(value: string, i: number): string {
  const ch = value[i] === 'q' ? 'p' : 'q';
  return `${value.slice(0, i)}${ch}${value.slice(i + 1)}`;
}

describe('an age recipient', () => {
  it('is taken as age writes it: age1 and 58 bech32 characters', () => {
    expect(a).toMatch(/^age1[02-9ac-hj-np-z]{58}$/);
    expect(ageRecipientProblem(a)).toBeUndefined();
  });

  it.each([
    ['a mistyped character', (r: string) => flip(r, 20), /not valid bech32/],
    ['a missing character', (r: string) => r.slice(0, -1), /not valid bech32/],
    ['uppercase', (r: string) => r.toUpperCase(), /expected an age X25519 recipient|lowercase/],
    ['an identity instead', () => 'AGE-SECRET-KEY-1QQQQ', /expected an age X25519 recipient/],
    ['an SSH key', () => 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI', /expected an age X25519 recipient/],
    ['a post-quantum recipient', (r: string) => `age1pq1${r.slice(4)}`, /not valid bech32|prefix/],
    ['too long', (r: string) => `${r}${'q'.repeat(40)}`, /at most 90 characters/],
    ['not a string', () => 42, /expected a string/],
  ])('is refused when %s', (_what, make, message) => {
    expect(ageRecipientProblem((make as (r: string) => unknown)(a))).toMatch(message);
  });

  it('refuses a list with too many, a name twice, bad names and unknown fields, each by its field', () => {
    const many = Array.from({ length: recipientLimits.recipients + 1 }, (_, i) => ({
      name: i === 0 ? 'cluster' : `group/g${i}`,
      recipient: a,
    }));
    expect(recipientsProblems(many)).toEqual([
      { field: 'recipients', message: 'at most 8 recipients (got 9)' },
    ]);
    const problems = recipientsProblems([
      { name: 'cluster', recipient: a },
      { name: 'cluster', recipient: b },
      { name: 'group/Prod', recipient: c },
      { name: 'team', recipient: c },
      { name: 'group/prod', recipient: flip(c, 30), extra: 1 },
    ]);
    expect(problems.map((p) => p.field)).toEqual([
      'recipients[1].name',
      'recipients[2].name',
      'recipients[3].name',
      'recipients[4].extra',
      'recipients[4].recipient',
    ]);
    expect(problems[0]?.message).toBe('"cluster" is listed twice');
    expect(recipientsProblems('age1…')).toEqual([
      { field: 'recipients', message: 'expected an array of {name, recipient}' },
    ]);
  });
});

describe('recipients in a status report', () => {
  it('are optional, and taken with a key-rotation id', () => {
    expect(parseStatusReport(statusReport()).recipients).toBeUndefined();
    const parsed = parseStatusReport(
      statusReport({
        recipients: [
          { name: 'cluster', recipient: a },
          { name: 'group/prod-key', recipient: b },
        ],
        keyRotation: 'rot_0123456789',
      }),
    );
    expect(parsed.recipients).toHaveLength(2);
    expect(parsed.keyRotation).toBe('rot_0123456789');
  });

  it('are refused by field when malformed, with the other problems', () => {
    const problems = statusReportProblems(
      statusReport({ recipients: [{ name: 'cluster', recipient: flip(a, 10) }], keyRotation: 'x y' }),
    );
    expect(problems.map((p) => p.field)).toEqual(['recipients[0].recipient', 'keyRotation']);
  });
});

describe('the hub keeps the recipients and carries a rotation request', () => {
  async function setUp() {
    const deps = fakeApiDeps();
    await addCluster(deps.clusters, 'edge');
    const record = async () => (await deps.clusters.get('edge')) as ClusterRecord;
    // As the agent route does: the record read to authenticate the report goes with it.
    const post = async (extra: Record<string, unknown>) =>
      recordClusterStatus(deps, await record(), parseStatusReport(statusReport(extra)));
    return { deps, record, post };
  }

  it('writes recipients only when they change, and shows the cluster key first', async () => {
    const { deps, record, post } = await setUp();
    expect(clusterView(await record()).recipients).toEqual([]);
    const list = [
      { name: 'group/prod', recipient: b },
      { name: 'cluster', recipient: a },
    ];
    expect((await post({ recipients: list })).recipientsChanged).toBe(true);
    expect(await post({ recipients: [...list].reverse() })).not.toHaveProperty('recipientsChanged');
    // An older agent sends none: the stored ones stay.
    expect(await post({})).not.toHaveProperty('recipientsChanged');
    expect((deps.clusters as MemoryClusterStore).heartbeatWrites.map((w) => w.recipients?.length)).toEqual([
      2,
      undefined,
      undefined,
    ]);
    expect(clusterView(await record()).recipients).toEqual([
      { name: 'cluster', recipient: a },
      { name: 'group/prod', recipient: b },
    ]);
  });

  it('answers with the open request until a report says it was done', async () => {
    const { deps, record, post } = await setUp();
    expect(await post({})).not.toHaveProperty('rotateKey');
    const { rotation } = await requestKeyRotation(deps, 'edge');
    expect(rotation).toEqual({
      id: expect.stringMatching(/^[A-Za-z0-9_-]{16}$/),
      requestedAt: '2024-05-01T12:00:00.000Z',
    });
    expect(clusterView(await record()).keyRotation).toEqual(rotation);
    expect((await post({ recipients: [{ name: 'cluster', recipient: a }] })).rotateKey).toEqual({
      id: rotation.id,
    });
    // Done: the answer stops asking and the record forgets the request.
    const done = await post({ recipients: [{ name: 'cluster', recipient: b }], keyRotation: rotation.id });
    expect(done).not.toHaveProperty('rotateKey');
    expect(clusterView(await record()).keyRotation).toBeNull();
    expect(clusterView(await record()).recipients).toEqual([{ name: 'cluster', recipient: b }]);
  });

  it('keeps a newer request open when the agent reports the older one done', async () => {
    const { deps, record } = await setUp();
    const first = await requestKeyRotation(deps, 'edge');
    const seenByAgent = await record();
    const second = await requestKeyRotation(deps, 'edge');
    const receipt = await recordClusterStatus(
      deps,
      seenByAgent,
      parseStatusReport(statusReport({ keyRotation: first.rotation.id })),
    );
    expect(receipt).not.toHaveProperty('rotateKey');
    expect((await record()).keyRotation?.id).toBe(second.rotation.id);
  });

  it('goes through the admin route (202, 404 for an unknown cluster) and the status answer', async () => {
    const { deps } = await setUp();
    const token = await addCluster(deps.clusters, 'edge-2');
    const handler = createApiHandler(deps);
    const call = async (path: string, auth: string, body?: unknown) => {
      const event = toApiGatewayEvent({
        method: 'POST',
        url: path,
        headers: {
          authorization: `Bearer ${auth}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: Buffer.from(body === undefined ? '' : JSON.stringify(body)),
        sourceIp: '127.0.0.1',
        requestId: 'req-1',
        now: new Date('2024-05-01T12:00:00Z'),
      });
      const res = await handler(event, { awsRequestId: 'lambda' } as Context);
      return { status: res.statusCode, body: JSON.parse(res.body ?? 'null') as Record<string, unknown> };
    };
    const ok = await call('/v1/admin/clusters/edge-2/rotate-key', adminKey);
    expect(ok.status).toBe(202);
    expect(ok.body).toMatchObject({
      cluster: { id: 'edge-2', recipients: [], keyRotation: { id: expect.any(String) } },
      rotation: { id: expect.any(String) },
    });
    const id = (ok.body.rotation as { id: string }).id;
    expect((await call('/v1/admin/clusters/nowhere/rotate-key', adminKey)).status).toBe(404);
    const answer = await call('/v1/clusters/edge-2/status', token, statusReport());
    expect(answer.status).toBe(200);
    expect(answer.body.rotateKey).toEqual({ id });
    const after = await call(
      '/v1/clusters/edge-2/status',
      token,
      statusReport({ recipients: [{ name: 'cluster', recipient: c }], keyRotation: id }),
    );
    expect(after.body).not.toHaveProperty('rotateKey');
  });
});
