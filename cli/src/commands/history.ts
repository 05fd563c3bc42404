import type { GenerationView, PinView } from '@flotilla/shared/hub';
import { age, parseClusterName } from '../core/args.ts';
import type { Command } from '../core/command.ts';
import { UsageError } from '../core/errors.ts';
import { formatTable } from '../core/output.ts';
import type { ClusterHistory, RollbackResult } from '../hub/hub-client.ts';

/** `sha256:<hex>` as its first 12 hex digits, as git shortens commits. */
export function shortHash(hash: string | null): string {
  if (hash === null) return '<absent>';
  return hash.replace(/^sha256:/, '').slice(0, 12);
}

const changeMark = { added: '+', changed: '~', unchanged: '', removed: '-' } as const;

function why(g: GenerationView): string {
  let text: string = g.reason;
  if (g.rollback)
    text += ` to ${g.rollback.toGeneration}${g.rollback.bundle ? ` (${g.rollback.bundle})` : ''}`;
  if (g.pinsEnded?.length) text += `; pin ended: ${g.pinsEnded.join(', ')}`;
  return text;
}

export function historyTable(h: ClusterHistory, now: Date): string {
  if (h.generations.length === 0) return `cluster "${h.clusterId}" has no desired state yet\n`;
  const rows = h.generations.map((g) => [
    `${g.generation}${g.current ? '*' : ''}`,
    g.commit.slice(0, 12),
    `${age(g.createdAt, now)} ago`,
    why(g),
    [
      ...g.bundles.map((b) => `${b.change ? changeMark[b.change] : ''}${b.name}@${shortHash(b.hash)}`),
      ...g.removed.map((name) => `${changeMark.removed}${name}`),
    ].join(' ') || '<no bundles>',
  ]);
  return [
    formatTable(['generation', 'commit', 'age', 'why', 'bundles'], rows),
    `\n* current   + added   ~ changed   - removed (against the generation before)\n`,
    h.nextBefore !== null ? `older: flotilla history ${h.clusterId} --before ${h.nextBefore}\n` : '',
    `the hub keeps the last ${h.historyDepth} generations of each cluster\n`,
  ].join('');
}

function positiveInt(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[1-9][0-9]{0,14}$/.test(text))
    throw new UsageError(`${flag} "${text}": expected a whole number from 1`);
  return Number(text);
}

export const historyCommand: Command = {
  name: 'history',
  summary: "a cluster's desired-state generations: commit, bundles, when and why",
  usage: 'history <cluster> [--limit <n>] [--before <generation>]',
  description: [
    'Newest first. Each generation shows the fleet-repo commit, when the hub wrote it and why (sync,',
    'register, labels, kube-version, rollback, rollback-clear), and its bundles with their content hashes,',
    'marked + added, ~ changed or - removed against the generation before. Roll back to one with',
    '`flotilla rollback <cluster> --to-generation N`.',
  ].join('\n'),
  positionals: [1, 1],
  options: {
    limit: {
      type: 'string',
      valueName: 'n',
      description: 'at most this many generations (default 20, at most 100)',
    },
    before: {
      type: 'string',
      valueName: 'generation',
      description: 'only generations below this one (the next page)',
    },
  },
  examples: ['flotilla history edge-42', 'flotilla history edge-42 --limit 5 -o json'],
  async run(ctx, { positionals, values }) {
    const id = parseClusterName(positionals[0]);
    const limit = positiveInt(values.limit as string | undefined, '--limit');
    const before = positiveInt(values.before as string | undefined, '--before');
    const history = await ctx.hub().clusterHistory(id, {
      ...(limit === undefined ? {} : { limit }),
      ...(before === undefined ? {} : { before }),
    });
    ctx.print(history, () => historyTable(history, ctx.now()));
    return undefined;
  },
};

export function pinsTable(rows: readonly { cluster: string; pin: PinView }[], now: Date): string {
  return formatTable(
    ['cluster', 'bundle', 'pinned-at', 'from-generation', 'planned', 'by', 'since'],
    rows.map(({ cluster, pin }) => [
      cluster,
      pin.bundle,
      shortHash(pin.hash),
      pin.fromGeneration,
      shortHash(pin.plannedHash),
      pin.pinnedBy,
      `${age(pin.pinnedAt, now)} ago`,
    ]),
  );
}

function rollbackText(id: string, r: RollbackResult, request: { to?: number; clear: boolean }): string {
  const lines: string[] = [];
  if (!r.changed) {
    lines.push(
      request.clear
        ? `cluster "${id}" has no pins: nothing to clear (generation ${r.generation})`
        : `cluster "${id}" already runs what generation ${request.to} had: nothing written (generation ${r.generation})`,
    );
  } else if (request.clear) {
    lines.push(
      `cluster "${id}" is back on the hub's plan as generation ${r.generation}; pins cleared: ${r.cleared?.join(', ') || 'none'}`,
    );
  } else {
    lines.push(
      `cluster "${id}" rolled back to generation ${request.to}'s bundles as generation ${r.generation}`,
    );
  }
  if (r.changed)
    lines.push(r.notified ? 'its agent was notified' : 'its agent will pick it up on its next poll');
  if (r.pins.length > 0) {
    lines.push(
      `pinned until their next change (or flotilla rollback ${id} --clear): ${r.pins
        .map((p) => `${p.bundle}@${shortHash(p.hash)}`)
        .join(', ')}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

export const rollbackCommand: Command = {
  name: 'rollback',
  summary: 'put a cluster back on an earlier generation’s bundles, pinned until they change',
  usage: 'rollback <cluster> (--to-generation <n> [--bundle <name>] | --clear)',
  description: [
    'The hub writes a new, higher generation whose bundle references are those of generation N (all',
    'bundles, or only --bundle; the others stay as they are), signs it and notifies the cluster. The',
    "rolled-back bundles are pinned: syncs and label changes keep them there until the hub's plan for",
    'that bundle changes (its next commit), which ends the pin. --clear ends every pin of the cluster',
    'now, with a new generation of the current plan. `flotilla history <cluster>` lists the generations.',
  ].join('\n'),
  positionals: [1, 1],
  options: {
    'to-generation': { type: 'string', valueName: 'n', description: 'the generation to roll back to' },
    bundle: { type: 'string', valueName: 'name', description: 'roll back this bundle only' },
    clear: { type: 'boolean', description: "end the cluster's pins: back to the hub's plan" },
  },
  examples: [
    'flotilla rollback edge-42 --to-generation 7',
    'flotilla rollback edge-42 --to-generation 7 --bundle ingress',
    'flotilla rollback edge-42 --clear',
  ],
  async run(ctx, { positionals, values }) {
    const id = parseClusterName(positionals[0]);
    const clear = Boolean(values.clear);
    const to = positiveInt(values['to-generation'] as string | undefined, '--to-generation');
    const bundle = values.bundle as string | undefined;
    if (clear && (to !== undefined || bundle !== undefined)) {
      throw new UsageError('--clear takes no --to-generation or --bundle');
    }
    if (!clear && to === undefined) throw new UsageError('give --to-generation <n> (or --clear)');
    const result = await ctx
      .hub()
      .rollbackCluster(
        id,
        clear ? { clear: true } : { toGeneration: to as number, ...(bundle === undefined ? {} : { bundle }) },
      );
    ctx.print(result, () => rollbackText(id, result, { clear, ...(to === undefined ? {} : { to }) }));
    return undefined;
  },
};
