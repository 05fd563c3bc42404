import type { FleetStatus } from '@flotilla/shared/hub';
import { age } from '../core/args.ts';
import type { Command } from '../core/command.ts';
import { formatTable } from '../core/output.ts';
import type { SyncReportView } from '../hub/hub-client.ts';
import { checkSelector } from './cluster.ts';
import { reportFleetErrors } from './fleet-errors.ts';
import { pinsTable } from './history.ts';
import { rolloutsTable } from './rollout.ts';

/** With at most this many distinct bundles the table has a column per bundle: clusters x bundles. */
const matrixColumns = 8;

export function statusTable(s: FleetStatus, now: Date, opts: { bundles?: boolean } = {}): string {
  const lines: string[] = [];
  lines.push(
    s.sync
      ? `fleet repo at ${s.sync.commit.slice(0, 12)}, synced ${age(s.sync.syncedAt, now)} ago${s.sync.errors.length ? `, ${s.sync.errors.length} error(s)` : ''}\n`
      : 'the hub has not synced the fleet repo yet\n',
  );
  const sum = s.summary;
  lines.push(
    `${sum.clusters} cluster(s): ${sum.online} online, ${sum.offline} offline, ${sum.inSync} in sync\n\n`,
  );
  const names = [...new Set(s.clusters.flatMap((c) => c.bundles.map((b) => b.name)))].sort();
  const matrix = names.length > 0 && names.length <= matrixColumns;
  const headers = [
    'cluster',
    'connection',
    'state',
    'in-sync',
    'generation',
    'heartbeat',
    ...(matrix ? names : ['bundles']),
  ];
  const rows = s.clusters.map((c) => {
    const byName = new Map(c.bundles.map((b) => [b.name, b]));
    const generation = c.desired ? `${c.appliedGeneration ?? '-'}/${c.desired.generation}` : '-';
    const counts = new Map<string, number>();
    for (const b of c.bundles) counts.set(b.state, (counts.get(b.state) ?? 0) + 1);
    const summary = [...counts].map(([state, n]) => `${n} ${state}`).join(', ') || '-';
    return [
      c.id,
      c.connection,
      c.state,
      c.inSync ? 'yes' : 'no',
      generation,
      c.lastHeartbeatAt ? `${age(c.lastHeartbeatAt, now)} ago` : '<never>',
      ...(matrix ? names.map((n) => byName.get(n)?.state ?? '-') : [summary]),
    ];
  });
  lines.push(s.clusters.length ? formatTable(headers, rows) : 'no clusters\n');

  // Bundle detail: every bundle with --bundles, otherwise the ones that need attention.
  const detail = s.clusters.flatMap((c) =>
    c.bundles
      .filter(
        (b) =>
          opts.bundles ||
          !['Ready', 'Pending'].includes(b.state) ||
          (b.state === 'Pending' && c.connection === 'Offline' && b.reportedState),
      )
      .map((b) => [
        c.id,
        b.name,
        b.state,
        b.upToDate ? 'yes' : 'no',
        b.drift?.map((d) => `${d.object}${d.fields?.length ? ` (${d.fields.join(', ')})` : ''}`).join('; '),
        b.message ?? (b.failedObject ? `failed: ${b.failedObject}` : undefined),
      ]),
  );
  if (detail.length > 0)
    lines.push('\n', formatTable(['cluster', 'bundle', 'state', 'up-to-date', 'drift', 'message'], detail));
  // Pins from `flotilla rollback`: these bundles do not follow the fleet repo until they change or are cleared.
  const pins = s.clusters.flatMap((c) => (c.pins ?? []).map((pin) => ({ cluster: c.id, pin })));
  if (pins.length > 0) lines.push('\npinned by rollback:\n', pinsTable(pins, now));
  if (s.rollouts?.length) lines.push('\nrollouts in progress:\n', rolloutsTable(s.rollouts, now));
  return lines.join('');
}

export const statusCommand: Command = {
  name: 'status',
  summary: 'fleet status: clusters x bundles with their states, drift and offline clusters',
  usage: 'status [-l <selector>] [--bundles]',
  description: [
    "One row per cluster: connection (Offline when no heartbeat came within the hub's interval), its worst",
    "bundle state, whether it is in sync, applied/desired generation, and each bundle's state (a column per",
    'bundle for up to 8 bundles). Below, bundles that need attention (Failed, Drifted, NotReady) with drift and',
    'messages; --bundles lists every bundle. Errors of the last sync are listed on stderr as file:line: message,',
    'with exit code 10: the bundles they affect keep their last good state.',
  ].join('\n'),
  positionals: [0, 0],
  options: {
    selector: {
      type: 'string',
      short: 'l',
      valueName: 'selector',
      description: 'only clusters matching this label selector',
    },
    bundles: { type: 'boolean', description: 'one row per cluster and bundle' },
  },
  examples: ['flotilla status', "flotilla status -l 'env=prod' --bundles", 'flotilla status -o json'],
  async run(ctx, { values }) {
    const status = await ctx.hub().status<FleetStatus>(checkSelector(values.selector as string | undefined));
    ctx.print(status, () => statusTable(status, ctx.now(), { bundles: Boolean(values.bundles) }));
    return reportFleetErrors(ctx, status.sync?.errors ?? []);
  },
};

export function syncText(r: SyncReportView): string {
  if (r.status === 'queued') return 'another sync is running; it will run once more when it is done\n';
  if (r.status === 'dispatched') {
    return `dispatched ${r.commit?.slice(0, 12) ?? ''}: ${r.clusters} cluster(s) in ${r.job?.windows ?? 0} windows to sync workers; \`flotilla status\` shows the commit once every window is done\n`;
  }
  const changed = r.changed.map((c) => `${c.clusterId} (generation ${c.generation})`).join(', ');
  return `synced ${r.commit?.slice(0, 12) ?? ''}: ${r.clusters} cluster(s), ${r.changed.length} changed${
    changed ? `: ${changed}` : ''
  }${r.notified !== undefined ? `; ${r.notified} notified` : ''}\n${
    r.notifyFailures?.length
      ? `notification failed for: ${r.notifyFailures.map((f) => f.clusterId).join(', ')}\n`
      : ''
  }`;
}

export const syncCommand: Command = {
  name: 'sync',
  summary: 'sync the hub with the fleet repo now',
  usage: 'sync',
  description:
    'Asks the hub to fetch the fleet repo and update every cluster whose desired state changed. Exit 10 when the repo has errors (the last good state of the affected bundles stays in force).',
  positionals: [0, 0],
  options: {},
  examples: ['flotilla sync', 'flotilla sync -o json'],
  async run(ctx) {
    const report = await ctx.hub().sync();
    ctx.print(report, () => syncText(report));
    return reportFleetErrors(ctx, report.errors);
  },
};
