import { age } from '../core/args.ts';
import type { Command } from '../core/command.ts';
import { UsageError } from '../core/errors.ts';
import { formatTable } from '../core/output.ts';
import type { SourceView } from '../hub/hub-client.ts';
import { reportFleetErrors } from './fleet-errors.ts';
import { syncText } from './status.ts';

const sourceName = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

function sourceArg(value: string | undefined): string {
  if (value === undefined || !sourceName.test(value))
    throw new UsageError(
      `"${value ?? ''}" is not a source name (a DNS-1123 label, as in sources/<name>.yaml)`,
    );
  return value;
}

/** `branch main`, `tag v1.2.0`, `semver ^1.0.0`. */
function refText(ref: SourceView['document']['spec']['ref']): string {
  return Object.entries(ref)
    .map(([k, v]) => `${k} ${v}`)
    .join('');
}

/** The last fetch in a word: `a1b2c3d4e5f6 (2m ago)`, `never`, or the error. */
function fetchText(s: SourceView, now: Date): string {
  if (!s.lastFetch) return 'not synced yet';
  const commit = s.lastFetch.commit ? s.lastFetch.commit.slice(0, 12) : '<none>';
  const when = s.lastFetch.fetchedAt ? ` (${age(s.lastFetch.fetchedAt, now)} ago)` : '';
  return `${commit}${when}`;
}

export const sourceListCommand: Command = {
  name: 'source list',
  summary: 'list the fleet sources: from sources/ of the platform repository and from the admin API',
  usage: 'source list',
  description: [
    'Every source the hub reads besides its own repository, with where it is declared (repo: the',
    "platform repository's sources/<name>.yaml as of the last sync; api: `flotilla source add`), its",
    'repository and ref, and its last fetch (commit, age, error). With a tenant key, or --tenant, only',
    "the tenant's sources.",
  ].join('\n'),
  positionals: [0, 0],
  options: {},
  examples: ['flotilla source list', 'flotilla source list -o json'],
  async run(ctx) {
    const sources = await ctx.hub().listSources();
    const now = ctx.now();
    ctx.print({ sources }, () => {
      if (sources.length === 0) return 'no sources: the hub reads its own repository only\n';
      const table = formatTable(
        ['name', 'origin', 'tenant', 'repo', 'ref', 'path', 'last fetch'],
        sources.map((s) => [
          s.name,
          s.origin,
          s.tenant,
          s.document.spec.repo,
          refText(s.document.spec.ref),
          s.document.spec.path,
          fetchText(s, now),
        ]),
      );
      const failing = sources.filter((s) => s.lastFetch?.error);
      return `${table}${failing.map((s) => `source ${s.name}: ${s.lastFetch?.error}\n`).join('')}`;
    });
    return undefined;
  },
};

export const sourceAddCommand: Command = {
  name: 'source add',
  summary: 'declare a fleet source through the admin API (platform admin)',
  usage:
    'source add <name> --repo url (--branch b | --tag t | --semver range) [--path p] [--tenant t] [--interval 1m] [--secret-ref name]',
  description: [
    'The hub stores the declaration and reads the source from the next sync on: its bundles/ under --path',
    'reach the clusters as <name>/<bundle>. It takes the same fields as sources/<name>.yaml (checked by the',
    'same rules; a problem names its field), and a name declared there is refused. --tenant holds the',
    "source's bundles to a tenant's boundary (tenants/<tenant>.yaml). Run `flotilla source sync <name>`",
    'to read it now.',
  ].join('\n'),
  positionals: [1, 1],
  options: {
    repo: { type: 'string', valueName: 'url', description: 'the http(s) git URL of the repository' },
    branch: { type: 'string', valueName: 'name', description: 'read the tip of this branch' },
    tag: { type: 'string', valueName: 'name', description: 'read this tag' },
    semver: {
      type: 'string',
      valueName: 'range',
      description: "read the highest of the repository's tags in this semver range",
    },
    path: {
      type: 'string',
      valueName: 'folder',
      description: 'the folder that holds bundles/ (default: the root)',
    },
    interval: {
      type: 'string',
      valueName: 'duration',
      description: 'how often the hub polls it (default 1m, at least 10s)',
    },
    'secret-ref': {
      type: 'string',
      valueName: 'name',
      description: "the name of the secret holding the repository's credentials",
    },
  },
  examples: [
    'flotilla source add team-x --repo https://git.example.com/team-x/apps.git --branch main --tenant team-x',
    'flotilla source add tools --repo https://git.example.com/tools.git --semver "^1.0.0" --path deploy',
  ],
  async run(ctx, { positionals, values }) {
    const name = sourceArg(positionals[0]);
    const str = (k: string) => values[k] as string | undefined;
    const repo = str('repo');
    if (repo === undefined) throw new UsageError('--repo is required (the http(s) git URL of the source)');
    const refs = (['branch', 'tag', 'semver'] as const).filter((k) => str(k) !== undefined);
    if (refs.length !== 1)
      throw new UsageError(
        `give exactly one of --branch, --tag, --semver${refs.length > 1 ? ` (got ${refs.map((r) => `--${r}`).join(', ')})` : ''}`,
      );
    const ref = refs[0] as 'branch' | 'tag' | 'semver';
    const spec: Record<string, unknown> = { repo, ref: { [ref]: str(ref) } };
    if (str('path') !== undefined) spec.path = str('path');
    if (str('tenant') !== undefined) spec.tenant = str('tenant');
    if (str('interval') !== undefined) spec.interval = str('interval');
    if (str('secret-ref') !== undefined) spec.credentials = { secretRef: str('secret-ref') };
    const source = await ctx.hub().declareSource({
      apiVersion: 'flotilla.dev/v1alpha1',
      kind: 'FleetSource',
      metadata: { name },
      spec,
    });
    ctx.print(
      { source },
      () =>
        `source ${name} declared (${source.document.spec.repo}, ${refText(source.document.spec.ref)}): the next sync reads it; flotilla source sync ${name} to sync now\n`,
    );
    return undefined;
  },
};

export const sourceRemoveCommand: Command = {
  name: 'source remove',
  summary: 'remove a fleet source declared through the admin API (platform admin)',
  usage: 'source remove <name>',
  description:
    "Its bundles leave the clusters at the next sync. A source declared in the platform repository's sources/<name>.yaml is removed there, not here.",
  positionals: [1, 1],
  options: {},
  examples: ['flotilla source remove team-x'],
  async run(ctx, { positionals }) {
    const name = sourceArg(positionals[0]);
    await ctx.hub().removeSource(name);
    ctx.print(
      { removed: name },
      () => `source ${name} removed: its bundles leave the clusters at the next sync\n`,
    );
    return undefined;
  },
};

export const sourceSyncCommand: Command = {
  name: 'source sync',
  summary: 'sync the hub now and show what became of one source',
  usage: 'source sync <name>',
  description:
    "A sync reads every source; this one answers with the source's fetch (commit or error) after it. Exit 10 when the fleet has errors.",
  positionals: [1, 1],
  options: {},
  examples: ['flotilla source sync team-x', 'flotilla source sync team-x -o json'],
  async run(ctx, { positionals }) {
    const name = sourceArg(positionals[0]);
    const report = await ctx.hub().syncSource(name);
    const now = ctx.now();
    ctx.print(report, () => {
      const s = report.source;
      const fetched = s.lastFetch?.error
        ? `source ${name}: ${s.lastFetch.error}${s.lastFetch.commit ? ` (its bundles stay at ${s.lastFetch.commit.slice(0, 12)})` : ''}\n`
        : `source ${name}: ${fetchText(s, now)}\n`;
      return `${syncText(report)}${fetched}`;
    });
    return reportFleetErrors(ctx, report.errors);
  },
};
