import { age, formatDuration, formatLabels, parseDuration, parseLabels } from '../core/args.ts';
import type { Command } from '../core/command.ts';
import { UsageError } from '../core/errors.ts';
import { formatTable } from '../core/output.ts';

export const tokenCreateCommand: Command = {
  name: 'token create',
  summary: 'issue a one-time registration token (admin), for bootstrapping without admin rights',
  usage: 'token create [--ttl 1h] [--label k=v ...] [--description text]',
  description: [
    'Prints the token on stdout (and only there; the hub keeps its SHA-256). It registers exactly one',
    'cluster, within its lifetime: `flotilla bootstrap <cluster> --registration-token <token>`. The cluster',
    "gets the token's labels; the operator may add labels but not change these.",
  ].join('\n'),
  positionals: [0, 0],
  options: {
    ttl: {
      type: 'string',
      default: '1h',
      valueName: 'duration',
      description: 'lifetime, 1m to 30d (e.g. 15m, 1h, 7d)',
    },
    label: {
      type: 'string',
      multiple: true,
      valueName: 'k=v',
      description: 'a label the registered cluster gets',
    },
    description: {
      type: 'string',
      valueName: 'text',
      description: 'what the token is for (shown in token list)',
    },
  },
  examples: [
    'flotilla token create --ttl 1h --label env=edge --label site=berlin-3',
    'TOKEN=$(flotilla token create --ttl 30m --description "store 42")',
  ],
  async run(ctx, { values }) {
    const ttlSeconds = parseDuration(values.ttl as string, '--ttl');
    if (ttlSeconds < 60 || ttlSeconds > 30 * 86400)
      throw new UsageError(`--ttl ${values.ttl}: must be from 1m to 30d`);
    const labels = parseLabels(values.label as string[] | undefined);
    const description = values.description as string | undefined;
    const created = await ctx
      .hub()
      .createRegistrationToken({ ttlSeconds, labels, ...(description ? { description } : {}) });
    if (ctx.output === 'table') {
      ctx.io.stdout(`${created.token}\n`);
      const t = created.registrationToken;
      ctx.progress(
        `registration token ${t.id}: registers one cluster until ${t.expiresAt} (${formatDuration(ttlSeconds)})${
          Object.keys(t.labels).length ? `, with labels ${formatLabels(t.labels)}` : ''
        }`,
      );
      return undefined;
    }
    ctx.print(created, () => '');
    return undefined;
  },
};

export const tokenListCommand: Command = {
  name: 'token list',
  summary: 'list registration tokens: active, used and expired (never the tokens themselves)',
  usage: 'token list',
  positionals: [0, 0],
  options: {},
  examples: ['flotilla token list', 'flotilla token list -o json'],
  async run(ctx) {
    const tokens = await ctx.hub().listRegistrationTokens();
    const now = ctx.now();
    ctx.print({ registrationTokens: tokens }, () =>
      formatTable(
        ['id', 'state', 'labels', 'expires', 'used-by', 'description'],
        tokens.map((t) => [
          t.id,
          t.state,
          formatLabels(t.labels),
          Date.parse(t.expiresAt) > now.getTime()
            ? `in ${formatDuration((Date.parse(t.expiresAt) - now.getTime()) / 1000)}`
            : `${age(t.expiresAt, now)} ago`,
          t.usedBy,
          t.description,
        ]),
      ),
    );
    return undefined;
  },
};

export const tokenRevokeCommand: Command = {
  name: 'token revoke',
  summary: 'revoke a registration token by its id (from token list)',
  usage: 'token revoke <id>',
  positionals: [1, 1],
  options: {},
  examples: ['flotilla token revoke 3f9a0c12b7de'],
  async run(ctx, { positionals }) {
    const id = positionals[0] as string;
    await ctx.hub().revokeRegistrationToken(id);
    ctx.print({ revoked: id }, () => `registration token ${id} revoked\n`);
    return undefined;
  },
};
