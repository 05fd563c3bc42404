import { type BootstrapResult, bootstrap, type NotifyMode } from '../bootstrap/bootstrap.ts';
import { agentNames, defaultAgentImage } from '../bootstrap/manifests.ts';
import { tenantsOfCheckout } from '../bootstrap/tenants.ts';
import { formatLabels, parseClusterName, parseDuration, parseLabels } from '../core/args.ts';
import type { Command } from '../core/command.ts';
import { UsageError } from '../core/errors.ts';
import { formatTable } from '../core/output.ts';

function keyValues(pairs: readonly (readonly [string, string])[]): string {
  const width = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `  ${k.padEnd(width)}   ${v}\n`).join('');
}

export function bootstrapTable(r: BootstrapResult): string {
  const agent =
    r.agent.mode === 'local'
      ? `local process, pid ${r.agent.pid} (${r.agent.started ? 'started' : 'already running'}; log ${r.agent.logFile})`
      : `Deployment ${agentNames.deployment} in the cluster`;
  const registration = {
    registered: 'registered',
    unchanged: 'already registered; the token in the cluster works',
    'token-rotated': 'token rotated (the one in the cluster no longer worked)',
    're-registered': 'registered again (it had been removed from the hub)',
  }[r.registration];
  const via = {
    admin: 'admin credentials',
    'registration-token': 'registration token',
    'existing-token': 'cluster token',
  }[r.via];
  const pairs: [string, string][] = [
    ['registration', `${registration} (${via})`],
    ['labels', `${formatLabels(r.labels) || '<none>'}${r.labelsUpdated ? ' (updated)' : ''}`],
    ['hub key pinned', r.hubPublicKeyId],
    ['notifications', r.notifications === 'sqs' ? 'SQS queue' : 'HTTPS polling'],
    ['agent', agent],
    [
      'heartbeat',
      r.heartbeat ? `${r.heartbeat.at} (agent ${r.heartbeat.agentVersion ?? 'unknown'})` : 'not waited for',
    ],
  ];
  const objects = formatTable(
    ['object', 'result'],
    r.objects.map((o) => [o.object, o.result]),
  );
  return `cluster "${r.cluster}" bootstrapped (context ${r.context}, Kubernetes ${r.kubernetesVersion})\n${keyValues(pairs)}\n${objects}`;
}

export const bootstrapCommand: Command = {
  name: 'bootstrap',
  summary: 'register a cluster with the hub, install its agent, and wait for its first heartbeat',
  usage: 'bootstrap <cluster> [--label k=v ...] [--context <name>] [flags]',
  description: [
    'Registers <cluster> with the hub (admin credentials, or --registration-token), installs the agent into',
    'the kubeconfig context by server-side apply (namespace, RBAC, a Secret with the cluster token and the',
    "pinned hub public key, the Deployment), and waits until the hub has the agent's heartbeat.",
    '',
    'Idempotent: a rerun finds the Secret in the cluster, checks its token with the hub (rotating it when',
    'it no longer works, with admin credentials) and re-applies everything; it never registers twice. A name',
    'that the hub already has for another cluster is refused (exit 5).',
  ].join('\n'),
  positionals: [1, 1],
  options: {
    label: { type: 'string', multiple: true, valueName: 'k=v', description: 'a label of the cluster' },
    'registration-token': {
      type: 'string',
      valueName: 'token',
      description:
        'register with this one-time token instead of admin credentials (env FLOTILLA_REGISTRATION_TOKEN)',
    },
    namespace: {
      type: 'string',
      default: agentNames.namespace,
      valueName: 'name',
      description: "the agent's namespace",
    },
    image: {
      type: 'string',
      default: defaultAgentImage,
      valueName: 'ref',
      description: "the agent's container image",
    },
    'agent-hub-url': {
      type: 'string',
      valueName: 'url',
      description: 'hub URL as the agent reaches it (default: the --hub URL)',
    },
    notify: {
      type: 'string',
      default: 'auto',
      valueName: 'auto|sqs|poll',
      description:
        'how the agent learns of changes: its SQS queue, or polling the hub (auto: SQS for local queues, polling in AWS)',
    },
    'sqs-region': { type: 'string', valueName: 'region', description: "region for the agent's SQS client" },
    'service-account-annotation': {
      type: 'string',
      multiple: true,
      valueName: 'k=v',
      description: "an annotation of the agent's service account (e.g. eks.amazonaws.com/role-arn=...)",
    },
    'run-agent': {
      type: 'string',
      default: 'none',
      valueName: 'none|local',
      description: 'local: also run the agent as a process on this machine (development; kwok clusters)',
    },
    'agent-env': {
      type: 'string',
      multiple: true,
      valueName: 'K=V',
      description: 'an extra variable for a local agent (e.g. FLOTILLA_HEARTBEAT_INTERVAL=10s)',
    },
    'take-over': {
      type: 'boolean',
      description:
        'take over a name the hub already has (admin): for a cluster whose agent was uninstalled; its old token stops working',
    },
    timeout: {
      type: 'string',
      default: '5m',
      valueName: 'duration',
      description: 'how long to wait for the heartbeat',
    },
    'no-wait': { type: 'boolean', description: 'do not wait for the heartbeat' },
    repo: {
      type: 'string',
      valueName: 'checkout',
      description:
        'a fleet repo checkout whose tenants/ the agent acts for: a service account and RBAC per tenant (rerun after adding a tenant)',
    },
  },
  examples: [
    'flotilla bootstrap prod-eu-1 --label env=prod --label region=eu --context prod-eu-1',
    'flotilla bootstrap edge-42 --registration-token "$(cat token.txt)" --label site=42',
    'flotilla bootstrap dev-1 --kubeconfig ./dev.kubeconfig --run-agent local --label env=dev',
    'flotilla bootstrap prod-eu-1 --label env=prod --repo ./fleet   # with the tenants of the checkout',
  ],
  async run(ctx, { values, positionals }) {
    const cluster = parseClusterName(positionals[0]);
    const labels = parseLabels(values.label as string[] | undefined);
    const notify = values.notify as string;
    if (!['auto', 'sqs', 'poll'].includes(notify))
      throw new UsageError(`--notify "${notify}": expected auto, sqs or poll`);
    const runAgent = values['run-agent'] as string;
    if (runAgent !== 'none' && runAgent !== 'local')
      throw new UsageError(`--run-agent "${runAgent}": expected none or local`);
    const agentHubUrl = (values['agent-hub-url'] as string | undefined) ?? ctx.hub().baseUrl;
    if (!URL.canParse(agentHubUrl)) throw new UsageError(`--agent-hub-url "${agentHubUrl}": not a URL`);
    const localAgentEnv: Record<string, string> = {};
    for (const pair of (values['agent-env'] as string[] | undefined) ?? []) {
      const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/s.exec(pair);
      if (!m) throw new UsageError(`--agent-env "${pair}": expected NAME=value`);
      if (runAgent !== 'local') throw new UsageError('--agent-env needs --run-agent local');
      localAgentEnv[m[1] as string] = m[2] as string;
    }
    const serviceAccountAnnotations: Record<string, string> = {};
    for (const pair of (values['service-account-annotation'] as string[] | undefined) ?? []) {
      const eq = pair.indexOf('=');
      if (eq <= 0) throw new UsageError(`--service-account-annotation "${pair}": expected key=value`);
      serviceAccountAnnotations[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
    const namespace = values.namespace as string;
    if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(namespace)) {
      throw new UsageError(`--namespace "${namespace}" is not a namespace name`);
    }
    const repo = values.repo as string | undefined;
    const tenants = repo === undefined ? undefined : tenantsOfCheckout(repo, ctx.io.cwd);
    const registrationToken =
      (values['registration-token'] as string | undefined) ?? ctx.config.registrationToken;
    const result = await bootstrap(
      {
        hub: ctx.hub(),
        kube: ctx.spoke(),
        ...(runAgent === 'local' ? { localAgents: ctx.localAgents() } : {}),
        progress: ctx.progress,
        now: ctx.now,
        sleep: ctx.sleep,
      },
      {
        cluster,
        labels,
        namespace,
        image: values.image as string,
        agentHubUrl,
        registrationToken,
        notify: notify as NotifyMode,
        sqsRegion: values['sqs-region'] as string | undefined,
        serviceAccountAnnotations,
        tenants,
        takeOver: Boolean(values['take-over']),
        runAgent,
        localAgentEnv,
        wait: !values['no-wait'],
        timeoutMs: parseDuration(values.timeout as string, '--timeout') * 1000,
      },
    );
    ctx.print(result, () => bootstrapTable(result));
    return undefined;
  },
};
