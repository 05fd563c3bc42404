import { GetQueueAttributesCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { KubeClient } from '../../../agent/src/kube/client.ts';
import { bedSqs } from '../../support/aws-clients.ts';
import { AgentHarness, cleanUp, controlPlane, eventually, kubeClientOf, uniqueName } from './harness.ts';
import { AgentProcess } from './process.ts';

const bed = inject('bed');
const plane = controlPlane(bed, 2);
let h: AgentHarness;
let kube: KubeClient;
let sqs: SQSClient;
const cluster = uniqueName('sqs');
const ns = uniqueName('sqs-ns');
const agentNs = uniqueName('sqs-agent');
let agent: AgentProcess | undefined;

beforeAll(async () => {
  h = await AgentHarness.start(bed, 'sqs');
  kube = await kubeClientOf(plane.kubeconfigPath);
  sqs = bedSqs(bed);
});

afterAll(async () => {
  await agent?.stop();
  await cleanUp(kube, [ns, agentNs]);
  kube.close();
  sqs.destroy();
  await h?.stop();
});

const config = (value: string) =>
  `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  value: "${value}"\n`;

async function queueDepth(queueUrl: string): Promise<number> {
  const res = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return (
    Number(res.Attributes?.ApproximateNumberOfMessages ?? 0) +
    Number(res.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0)
  );
}

const value = async () =>
  (await kube.get<{ data: { value: string } }>(`/api/v1/namespaces/${ns}/configmaps/settings`))?.data.value;

describe('notifications over SQS', () => {
  it('applies a change as soon as the hub notifies it, without polling, and deletes the message after', async () => {
    const { token, queueUrl } = await h.register(cluster);
    await h.push({ [`${cluster}-app`]: { cluster, namespace: ns, manifests: config('one') } });
    agent = AgentProcess.start(
      h.agentEnv(cluster, token, {
        kubeconfigPath: plane.kubeconfigPath,
        namespace: agentNs,
        env: {
          ...h.sqsEnv(queueUrl),
          // Long enough that only a notification can explain a prompt apply.
          FLOTILLA_POLL_INTERVAL: '10m',
          FLOTILLA_RESYNC_INTERVAL: '10m',
          FLOTILLA_DRIFT_INTERVAL: '10m',
        },
      }),
    );
    const started = await agent.waitForLog('flotilla agent started');
    expect(started.notifications).toBe('sqs');
    await eventually(async () => ((await value()) === 'one' ? true : undefined), 20_000, 'the first apply');
    // The sync's notification is consumed once applied.
    await eventually(
      async () => ((await queueDepth(queueUrl)) === 0 ? true : undefined),
      20_000,
      'an empty queue',
    );

    const t0 = Date.now();
    await h.push({ [`${cluster}-app`]: { cluster, namespace: ns, manifests: config('two') } });
    await eventually(
      async () => ((await value()) === 'two' ? true : undefined),
      15_000,
      'the notified change',
    );
    expect(Date.now() - t0).toBeLessThan(15_000);
    await eventually(
      async () => ((await queueDepth(queueUrl)) === 0 ? true : undefined),
      20_000,
      'an empty queue',
    );
  });

  it('takes duplicate and stray notifications in its stride', async () => {
    const view = await h.clusterStatus(cluster);
    const queueUrl = (
      (await (await h.admin(`/v1/admin/clusters/${cluster}`)).json()) as { cluster: { queueUrl: string } }
    ).cluster.queueUrl;
    const etag = (
      (await (await h.admin(`/v1/admin/clusters/${cluster}`)).json()) as {
        cluster: { desiredState: { etag: string } };
      }
    ).cluster.desiredState.etag;
    const body = JSON.stringify({
      kind: 'desired-state-changed',
      clusterId: cluster,
      generation: view?.desired?.generation,
      etag,
    });
    for (const b of [body, body, 'not even JSON'])
      await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: b }));
    await eventually(
      async () => ((await queueDepth(queueUrl)) === 0 ? true : undefined),
      20_000,
      'an empty queue',
    );
    expect(await value()).toBe('two');
    expect(agent?.lines.filter((l) => l.level === 'error')).toEqual([]);
  });
});
