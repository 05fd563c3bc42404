import { LabelSelectorSyntaxError, parseLabelSelector } from '@flotilla/shared';
import { agentManifests, agentNames, objectRef, secretChecksum, secretKeys } from '../bootstrap/manifests.ts';
import { age, formatLabels, parseClusterName, parseLabelChanges } from '../core/args.ts';
import type { Command, CommandContext } from '../core/command.ts';
import { CliError, UsageError } from '../core/errors.ts';
import { ExitCode } from '../core/exit-codes.ts';
import { formatTable } from '../core/output.ts';
import { type ClusterView, HubApiError } from '../hub/hub-client.ts';

/** Checks a `-l` selector here, so a typo is a usage error with its column, before the hub sees it. */
export function checkSelector(text: string | undefined): string | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  try {
    parseLabelSelector(text);
  } catch (err) {
    if (err instanceof LabelSelectorSyntaxError) {
      throw new UsageError(`-l: ${err.message}`);
    }
    throw err;
  }
  return text;
}

export function clustersTable(clusters: readonly ClusterView[], now: Date): string {
  return formatTable(
    ['name', 'labels', 'agent', 'kubernetes', 'heartbeat', 'generation', 'registered'],
    clusters.map((c) => [
      c.id,
      formatLabels(c.labels),
      c.agentVersion,
      c.kubeVersion, // absent from hubs older than the field: shown as <none>
      c.lastHeartbeatAt ? `${age(c.lastHeartbeatAt, now)} ago` : '<never>',
      c.desiredState?.generation,
      `${age(c.registeredAt, now)} ago`,
    ]),
  );
}

export const clustersCommand: Command = {
  name: 'clusters',
  aliases: ['cluster list'],
  summary: 'list registered clusters, optionally by label selector',
  usage: 'clusters [-l <selector>]',
  positionals: [0, 0],
  options: {
    selector: {
      type: 'string',
      short: 'l',
      valueName: 'selector',
      description: 'label selector, kubectl syntax: env=prod,region in (eu,us),!legacy',
    },
  },
  examples: [
    'flotilla clusters',
    "flotilla clusters -l 'env=prod,region in (eu,us)'",
    'flotilla clusters -o yaml',
  ],
  async run(ctx, { values }) {
    const selector = checkSelector(values.selector as string | undefined);
    const clusters = await ctx.hub().listClusters(selector);
    ctx.print({ clusters }, () => clustersTable(clusters, ctx.now()));
    return undefined;
  },
};

export const clusterGetCommand: Command = {
  name: 'cluster get',
  summary: 'show one registered cluster',
  usage: 'cluster get <cluster>',
  positionals: [1, 1],
  options: {},
  examples: ['flotilla cluster get prod-eu-1 -o yaml'],
  async run(ctx, { positionals }) {
    const id = parseClusterName(positionals[0]);
    const cluster = await ctx.hub().getCluster(id);
    if (!cluster) throw new CliError(ExitCode.NotFound, `cluster "${id}" is not registered at the hub`);
    ctx.print({ cluster }, () => clustersTable([cluster], ctx.now()));
    return undefined;
  },
};

export const labelCommand: Command = {
  name: 'label',
  summary: 'set (k=v) and remove (k-) labels of a cluster; bundles move at once',
  usage: 'label <cluster> <k=v | k-> ...',
  description:
    'As `kubectl label`: key=value sets a label, key- removes it. The hub re-plans the cluster at the last synced commit right away.',
  positionals: [2, 1000],
  options: {},
  examples: ['flotilla label prod-eu-1 tier=gold canary-', 'flotilla label edge-42 site=berlin-3 -o json'],
  async run(ctx, { positionals }) {
    const id = parseClusterName(positionals[0]);
    const change = parseLabelChanges(positionals.slice(1));
    const result = await ctx.hub().relabelCluster(id, {
      ...(Object.keys(change.set).length ? { set: change.set } : {}),
      ...(change.remove.length ? { remove: change.remove } : {}),
    });
    ctx.print(result, () => {
      const changed = result.sync.changed.length > 0;
      return `cluster "${id}" labelled: ${formatLabels(result.cluster.labels) || '<none>'}\n${
        changed
          ? `its desired state moved to generation ${result.sync.changed[0]?.generation}\n`
          : 'its desired state did not change\n'
      }`;
    });
    return undefined;
  },
};

/** The agent's Secret in the spoke, checked to belong to `cluster`; undefined when absent. */
async function agentSecretFor(
  ctx: CommandContext,
  cluster: string,
  namespace: string,
  force: boolean,
): Promise<Record<string, string> | undefined> {
  const spoke = ctx.spoke();
  const secret = await spoke.readSecret(namespace, agentNames.secret);
  const holder = secret?.[secretKeys.clusterId];
  if (holder && holder !== cluster && !force) {
    throw new CliError(
      ExitCode.Conflict,
      `${spoke.description} runs the agent of cluster "${holder}", not "${cluster}"`,
      { hint: 'check --context; --force acts on it anyway' },
    );
  }
  return secret;
}

export const rotateTokenCommand: Command = {
  name: 'cluster rotate-token',
  summary: 'issue a new cluster token; the old one stops working at once',
  usage: 'cluster rotate-token <cluster> [--context <name> | --kubeconfig <path>] [--show-token]',
  description: [
    "With --context or --kubeconfig, the agent's Secret in that cluster gets the new token and the agent",
    'restarts with it (a local agent too). Without them the new token is not stored anywhere: the agent is',
    'locked out until bootstrap runs again (use that to cut off a leaked token), unless --show-token prints it.',
  ].join('\n'),
  positionals: [1, 1],
  options: {
    namespace: {
      type: 'string',
      default: agentNames.namespace,
      valueName: 'name',
      description: "the agent's namespace",
    },
    'show-token': { type: 'boolean', description: 'print the new token on stdout' },
    force: { type: 'boolean', description: 'update the Secret even if it names another cluster' },
  },
  examples: [
    'flotilla cluster rotate-token prod-eu-1 --context prod-eu-1',
    'flotilla cluster rotate-token edge-42   # revoke now; bootstrap again later',
  ],
  async run(ctx, { positionals, values }) {
    const id = parseClusterName(positionals[0]);
    const namespace = values.namespace as string;
    const secret = ctx.spokeExplicit
      ? await agentSecretFor(ctx, id, namespace, Boolean(values.force))
      : undefined;
    if (ctx.spokeExplicit && !secret) {
      throw new CliError(
        ExitCode.NotFound,
        `no agent Secret ${namespace}/${agentNames.secret} in ${ctx.spoke().description}`,
        {
          hint: `install the agent with: flotilla bootstrap ${id} --context ${ctx.spoke().context}`,
        },
      );
    }
    const token = await ctx.hub().rotateClusterToken(id);
    ctx.progress(`token of "${id}" rotated: the old one no longer works`);
    let secretUpdated = false;
    let restarted: 'in-cluster' | 'local' | 'none' = 'none';
    if (secret) {
      const spoke = ctx.spoke();
      const data = { ...secret, [secretKeys.token]: token, [secretKeys.clusterId]: id };
      const [secretObject] = agentManifests({ clusterId: id, namespace, image: '', secretData: data }).filter(
        (o) => o.kind === 'Secret',
      );
      if (secretObject) await spoke.apply(secretObject);
      secretUpdated = true;
      ctx.progress(
        `${objectRef(secretObject ?? { kind: 'Secret', metadata: { name: agentNames.secret, namespace } })} updated`,
      );
      if (
        await spoke.annotatePodTemplate(
          namespace,
          agentNames.deployment,
          'flotilla.dev/secret-checksum',
          secretChecksum(data),
        )
      ) {
        restarted = 'in-cluster';
      }
      const local = ctx.localAgents().get(id);
      if (local?.running && local.env && local.pod) {
        await ctx.localAgents().ensure(id, { secret: data, env: local.env, pod: local.pod });
        restarted = 'local';
        ctx.progress(`local agent restarted with the new token`);
      }
    }
    const result = {
      cluster: id,
      rotated: true,
      secretUpdated,
      restarted,
      ...(values['show-token'] ? { token } : {}),
    };
    ctx.print(result, () =>
      [
        values['show-token'] ? token : undefined,
        secretUpdated
          ? `token of "${id}" rotated; Secret ${namespace}/${agentNames.secret} updated${restarted === 'none' ? '' : `, ${restarted} agent restarted`}`
          : `token of "${id}" rotated; no cluster was given, so its agent is locked out until \`flotilla bootstrap ${id}\` runs again`,
      ]
        .filter(Boolean)
        .map((l) => `${l}\n`)
        .join(''),
    );
    return undefined;
  },
};

export const removeCommand: Command = {
  name: 'cluster remove',
  summary: 'deregister a cluster: its token stops working at once; --uninstall removes the agent too',
  usage: 'cluster remove <cluster> [--uninstall [--context <name> | --kubeconfig <path>]]',
  description: [
    'The hub forgets the cluster, its queue, desired-state history and status; its token is refused from',
    "the next request on. --uninstall then deletes the agent's Deployment, RBAC and namespace from the",
    'cluster (and stops a local agent). What the agent applied from the fleet repo stays in place.',
  ].join('\n'),
  positionals: [1, 1],
  options: {
    uninstall: { type: 'boolean', description: 'also remove the agent from the cluster' },
    namespace: {
      type: 'string',
      default: agentNames.namespace,
      valueName: 'name',
      description: "the agent's namespace",
    },
    force: {
      type: 'boolean',
      description:
        'uninstall even if no agent Secret for this cluster is found there (or it names another cluster)',
    },
  },
  examples: ['flotilla cluster remove edge-42', 'flotilla cluster remove dev-1 --uninstall --context dev-1'],
  async run(ctx, { positionals, values }) {
    const id = parseClusterName(positionals[0]);
    const namespace = values.namespace as string;
    let uninstall = Boolean(values.uninstall);
    if (uninstall && !(await agentSecretFor(ctx, id, namespace, Boolean(values.force))) && !values.force) {
      // Without the agent's Secret there is no sign this cluster runs our agent: delete nothing there.
      ctx.progress(
        `warning: no agent Secret ${namespace}/${agentNames.secret} in ${ctx.spoke().description}; nothing uninstalled there (--force deletes the agent's objects anyway)`,
      );
      uninstall = false;
    }
    let deregistered = true;
    try {
      await ctx.hub().deregisterCluster(id);
      ctx.progress(`"${id}" removed from the hub: its token no longer works`);
    } catch (err) {
      if (!(uninstall && err instanceof HubApiError && err.status === 404)) throw err;
      deregistered = false;
      ctx.progress(`"${id}" was not registered at the hub; uninstalling anyway`);
    }
    const deleted: { object: string; result: string }[] = [];
    let localAgentStopped = false;
    if (uninstall) {
      const spoke = ctx.spoke();
      const objects = agentManifests({ clusterId: id, namespace, image: '', secretData: {} });
      // Stop the agent first, then what it runs with; the namespace takes the Secret, its
      // stores, its Lease and its namespaced RBAC along.
      const order = ['Deployment', 'ClusterRoleBinding', 'ClusterRole', 'Namespace'];
      for (const kind of order) {
        const object = objects.find((o) => o.kind === kind);
        if (!object) continue;
        const result = await spoke.delete(object);
        ctx.progress(`${objectRef(object)} ${result}`);
        deleted.push({ object: objectRef(object), result });
      }
      localAgentStopped = await ctx.localAgents().stop(id);
      if (localAgentStopped) ctx.progress('local agent stopped');
    }
    if (!uninstall && values.uninstall) {
      localAgentStopped = await ctx.localAgents().stop(id);
      if (localAgentStopped) ctx.progress('local agent stopped');
    }
    const result = { cluster: id, deregistered, uninstalled: uninstall, objects: deleted, localAgentStopped };
    ctx.print(
      result,
      () =>
        `${deregistered ? `cluster "${id}" removed; its token no longer works` : `cluster "${id}" was not registered`}\n${
          uninstall
            ? formatTable(
                ['object', 'result'],
                deleted.map((d) => [d.object, d.result]),
              )
            : ''
        }`,
    );
    return undefined;
  },
};
