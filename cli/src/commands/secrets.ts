/**
 * `flotilla secrets …`: the clusters' age keys for SOPS files in the fleet repo. Each
 * command is one `Command` value; `index.ts` lists them.
 */
import type { AgeRecipient } from '@flotilla/shared';
import { stringify } from 'yaml';
import { parseClusterName, parseDuration } from '../core/args.ts';
import type { Command } from '../core/command.ts';
import { CliError, UsageError } from '../core/errors.ts';
import { ExitCode } from '../core/exit-codes.ts';
import { formatTable } from '../core/output.ts';
import type { ClusterView } from '../hub/hub-client.ts';
import { checkSelector } from './cluster.ts';

/** The recipient of the cluster's own key, as the hub shows it. */
function clusterRecipient(cluster: ClusterView): string | undefined {
  return cluster.recipients?.find((r) => r.name === 'cluster')?.recipient;
}

/** Every distinct recipient of the clusters, in first-seen order (a group key shared by many appears once). */
export function distinctRecipients(clusters: readonly ClusterView[]): string[] {
  return [...new Set(clusters.flatMap((c) => (c.recipients ?? []).map((r) => r.recipient)))];
}

/**
 * A `.sops.yaml` with one creation rule that encrypts to `recipients`: `sops` (and
 * `flotilla secrets encrypt`) then encrypt the values of a Secret's `data` and `stringData`.
 */
export function sopsCreationRules(recipients: readonly string[], pathRegex?: string): string {
  const rule = {
    ...(pathRegex !== undefined ? { path_regex: pathRegex } : {}),
    encrypted_regex: '^(data|stringData)$',
    age: recipients.join(','),
  };
  return stringify({ creation_rules: [rule] }, { lineWidth: 0 });
}

export const secretsRecipientsCommand: Command = {
  name: 'secrets recipients',
  summary: "print the clusters' age recipients, for encrypting SOPS files to them",
  usage: 'secrets recipients [-l <selector> | --cluster <name>] [--sops-yaml [--path-regex <regex>]]',
  description: [
    "Each cluster's agent makes an age key in the cluster and reports only its public recipient",
    '(`cluster`), with those of group keys an operator installed there (`group/<secret-name>`).',
    'A cluster whose agent has not reported yet has none. --sops-yaml prints a .sops.yaml creation',
    'rule with every distinct recipient of the matched clusters, comma-joined.',
  ].join('\n'),
  positionals: [0, 0],
  options: {
    selector: {
      type: 'string',
      short: 'l',
      valueName: 'selector',
      description: 'label selector, kubectl syntax: env=prod,region in (eu,us)',
    },
    cluster: { type: 'string', valueName: 'name', description: 'one cluster by name' },
    'sops-yaml': { type: 'boolean', description: 'print a .sops.yaml creation rule instead of a table' },
    'path-regex': {
      type: 'string',
      valueName: 'regex',
      description: 'the path_regex of the creation rule (with --sops-yaml)',
    },
  },
  examples: [
    'flotilla secrets recipients -l env=prod',
    'flotilla secrets recipients --cluster prod-eu-1 -o json',
    "flotilla secrets recipients -l env=prod --sops-yaml --path-regex '^bundles/prod-.*/secrets/' > .sops.yaml",
  ],
  async run(ctx, { values }) {
    const selector = checkSelector(values.selector as string | undefined);
    const name = values.cluster as string | undefined;
    if (name !== undefined && selector !== undefined) throw new UsageError('give -l or --cluster, not both');
    if (values['path-regex'] !== undefined && !values['sops-yaml'])
      throw new UsageError('--path-regex goes with --sops-yaml');
    let clusters: ClusterView[];
    if (name !== undefined) {
      const id = parseClusterName(name);
      const cluster = await ctx.hub().getCluster(id);
      if (!cluster) throw new CliError(ExitCode.NotFound, `cluster "${id}" is not registered at the hub`);
      clusters = [cluster];
    } else {
      clusters = await ctx.hub().listClusters(selector);
    }
    const missing = clusters.filter((c) => (c.recipients ?? []).length === 0).map((c) => c.id);
    if (missing.length > 0)
      ctx.progress(
        `warning: no recipients yet for ${missing.join(', ')} (their agents have not reported a key; files encrypted now will not reach them)`,
      );
    if (values['sops-yaml']) {
      const recipients = distinctRecipients(clusters);
      if (recipients.length === 0)
        throw new CliError(
          ExitCode.NotFound,
          'the matched clusters have no recipients: nothing to encrypt to',
        );
      ctx.io.stdout(sopsCreationRules(recipients, values['path-regex'] as string | undefined));
      return undefined;
    }
    const rows = clusters.map((c) => ({ cluster: c.id, recipients: c.recipients ?? [] }));
    ctx.print({ clusters: rows }, () =>
      formatTable(
        ['cluster', 'name', 'recipient'],
        rows.flatMap((r) =>
          r.recipients.length === 0
            ? [[r.cluster, undefined, undefined]]
            : r.recipients.map((k: AgeRecipient) => [r.cluster, k.name, k.recipient]),
        ),
      ),
    );
    return undefined;
  },
};

export const secretsRotateCommand: Command = {
  name: 'secrets rotate',
  summary: "have a cluster's agent make a new age key, and wait for its recipient",
  usage: 'secrets rotate <cluster> [--timeout <duration>] [--no-wait]',
  description: [
    'The hub passes the request to the agent in the answer to its next status report (within its',
    'heartbeat interval, 1m by default). The agent keeps its previous keys (two of them), so files',
    'still encrypted to the old recipient keep decrypting until they are encrypted again.',
  ].join('\n'),
  positionals: [1, 1],
  options: {
    timeout: {
      type: 'string',
      default: '2m',
      valueName: 'duration',
      description: 'how long to wait for the new recipient',
    },
    'no-wait': { type: 'boolean', description: 'ask for the rotation and return' },
  },
  examples: ['flotilla secrets rotate prod-eu-1', 'flotilla secrets rotate edge-42 --timeout 10m -o json'],
  async run(ctx, { positionals, values }) {
    const id = parseClusterName(positionals[0]);
    const timeoutMs = parseDuration(values.timeout as string, '--timeout') * 1000;
    const hub = ctx.hub();
    const { cluster, rotation } = await hub.rotateClusterKey(id);
    const before = clusterRecipient(cluster);
    ctx.progress(`asked the agent of "${id}" for a new age key (request ${rotation.id})`);
    if (values['no-wait']) {
      ctx.print(
        { cluster: id, rotation, previous: before ?? null, recipient: null },
        () =>
          `rotation of "${id}" requested; \`flotilla secrets recipients --cluster ${id}\` shows the new recipient once its agent reported it\n`,
      );
      return undefined;
    }
    const deadline = ctx.now().getTime() + timeoutMs;
    for (;;) {
      const now = await hub.getCluster(id);
      if (!now) throw new CliError(ExitCode.NotFound, `cluster "${id}" is no longer registered at the hub`);
      const recipient = clusterRecipient(now);
      // The request closes when the agent reported it done, with its new recipient.
      if (now.keyRotation?.id !== rotation.id && recipient !== undefined && recipient !== before) {
        ctx.print({ cluster: id, rotation, previous: before ?? null, recipient }, () =>
          [
            recipient,
            `age key of "${id}" rotated; encrypt its SOPS files again to the new recipient (the previous key keeps decrypting until then)`,
          ]
            .map((l) => `${l}\n`)
            .join(''),
        );
        return undefined;
      }
      if (ctx.now().getTime() >= deadline) {
        throw new CliError(
          ExitCode.Timeout,
          `the agent of "${id}" did not report a new age key within ${values.timeout as string}`,
          {
            hint: `the request stays open: the agent rotates at its next status report; check it with flotilla secrets recipients --cluster ${id}`,
          },
        );
      }
      await ctx.sleep(1000);
    }
  },
};
