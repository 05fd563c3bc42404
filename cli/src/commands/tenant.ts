import { age } from '../core/args.ts';
import type { Command } from '../core/command.ts';
import { UsageError } from '../core/errors.ts';
import { formatTable } from '../core/output.ts';

const tenantName = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

function tenantArg(value: string | undefined): string {
  if (value === undefined || !tenantName.test(value))
    throw new UsageError(
      `"${value ?? ''}" is not a tenant name (a DNS-1123 label, as in tenants/<name>.yaml)`,
    );
  return value;
}

export const tenantKeyCreateCommand: Command = {
  name: 'tenant key create',
  summary: "issue an admin key for a tenant (platform admin): it reaches only the tenant's routes",
  usage: 'tenant key create <tenant> [--description text]',
  description: [
    'Prints the key on stdout (and only there; the hub keeps its SHA-256). Its holder acts as the',
    "tenant's admin: `FLOTILLA_ADMIN_KEY=flt_t_<tenant>.… flotilla status` shows the tenant's bundles on the",
    'clusters its clusterSelector matches, and `rollout`, `sync`, `history` and `clusters` are scoped the same',
    'way. The tenant must be declared in the fleet (tenants/<tenant>.yaml) at the last synced commit.',
  ].join('\n'),
  positionals: [1, 1],
  options: {
    description: {
      type: 'string',
      valueName: 'text',
      description: 'what the key is for (shown in tenant key list)',
    },
  },
  examples: [
    'flotilla tenant key create team-a --description "team-a CI"',
    'KEY=$(flotilla tenant key create team-a)',
  ],
  async run(ctx, { positionals, values }) {
    const tenant = tenantArg(positionals[0]);
    const description = values.description as string | undefined;
    const created = await ctx.hub().createTenantKey(tenant, description ? { description } : {});
    if (ctx.output === 'table') {
      ctx.io.stdout(`${created.key}\n`);
      ctx.progress(
        `tenant key ${created.tenantKey.id} for tenant ${tenant}: revoke with flotilla tenant key revoke ${tenant} ${created.tenantKey.id}`,
      );
      return undefined;
    }
    ctx.print(created, () => '');
    return undefined;
  },
};

export const tenantKeyListCommand: Command = {
  name: 'tenant key list',
  summary: "list a tenant's admin keys by id (never the keys themselves)",
  usage: 'tenant key list <tenant>',
  positionals: [1, 1],
  options: {},
  examples: ['flotilla tenant key list team-a', 'flotilla tenant key list team-a -o json'],
  async run(ctx, { positionals }) {
    const tenant = tenantArg(positionals[0]);
    const keys = await ctx.hub().listTenantKeys(tenant);
    const now = ctx.now();
    ctx.print({ tenantKeys: keys }, () =>
      keys.length === 0
        ? `tenant ${tenant} has no keys\n`
        : formatTable(
            ['id', 'created', 'created-by', 'description'],
            keys.map((k) => [k.id, `${age(k.createdAt, now)} ago`, k.createdBy, k.description]),
          ),
    );
    return undefined;
  },
};

export const tenantKeyRevokeCommand: Command = {
  name: 'tenant key revoke',
  summary: "revoke a tenant's admin key by its id: it stops working at once",
  usage: 'tenant key revoke <tenant> <id>',
  positionals: [2, 2],
  options: {},
  examples: ['flotilla tenant key revoke team-a 3f9a0c12b7de'],
  async run(ctx, { positionals }) {
    const tenant = tenantArg(positionals[0]);
    const id = positionals[1] as string;
    await ctx.hub().revokeTenantKey(tenant, id);
    ctx.print({ revoked: id, tenant }, () => `tenant key ${id} of tenant ${tenant} revoked\n`);
    return undefined;
  },
};
