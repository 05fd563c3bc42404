/**
 * `flotilla rollout list | status <bundle> | pause | resume | promote | abort <bundle>`:
 * progressive rollouts as the hub runs them (bundles with `rollout:` in bundle.yaml).
 */
import type { RolloutView } from '@flotilla/shared/hub';
import { age } from '../core/args.ts';
import type { Command } from '../core/command.ts';
import { formatTable } from '../core/output.ts';

function waveLine(r: RolloutView): string {
  return r.waves
    .map((w) => `${w.name} ${w.done}/${w.clusters}${w.inFlight ? ` (+${w.inFlight} in flight)` : ''}`)
    .join(', ');
}

export function rolloutsTable(rollouts: readonly RolloutView[], now: Date): string {
  if (rollouts.length === 0)
    return 'no rollouts (bundles with rollout: in bundle.yaml start one when they change)\n';
  return formatTable(
    ['bundle', 'revision', 'phase', 'wave', 'done per wave', 'updated'],
    rollouts.map((r) => [
      r.bundle,
      r.revision.slice(0, 12),
      r.phase + (r.pauseReason ? ` (${r.pauseReason})` : r.revertReason ? ` (${r.revertReason})` : ''),
      r.currentWave ?? '-',
      waveLine(r),
      `${age(r.updatedAt, now)} ago`,
    ]),
  );
}

export function rolloutTable(r: RolloutView, now: Date): string {
  const head = `bundle ${r.bundle}, revision ${r.revision.slice(0, 12)}: ${r.phase}${
    r.pauseReason ? ` (${r.pauseReason})` : r.revertReason ? ` (${r.revertReason})` : ''
  }${r.waitingForWindow ? ', waiting for a window' : ''}${r.nextWakeAt ? `; next step at ${r.nextWakeAt}` : ''}\n\n`;
  const waves = formatTable(
    ['wave', 'clusters', 'done', 'in-flight', 'waiting', 'failed', 'skipped', 'reverted', 'opened', 'baked'],
    r.waves.map((w) => [
      w.name,
      w.clusters,
      w.done,
      w.inFlight,
      w.waiting,
      w.failed,
      w.skipped,
      w.reverted,
      w.openedAt ? `${age(w.openedAt, now)} ago` : '-',
      w.bakedAt ? `${age(w.bakedAt, now)} ago` : '-',
    ]),
  );
  const events = r.events.length ? `\n${r.events.map((e) => `${e.at}  ${e.message}`).join('\n')}\n` : '';
  return head + waves + events;
}

const bundleArg = { positionals: [1, 1] as const };

export const rolloutListCommand: Command = {
  name: 'rollout list',
  summary: 'every progressive rollout: phase, wave, clusters done per wave',
  usage: 'rollout list',
  positionals: [0, 0],
  options: {},
  examples: ['flotilla rollout list', 'flotilla rollout list -o json'],
  async run(ctx) {
    const { rollouts } = await ctx.hub().listRollouts();
    ctx.print({ rollouts }, () => rolloutsTable(rollouts, ctx.now()));
    return undefined;
  },
};

export const rolloutStatusCommand: Command = {
  name: 'rollout status',
  summary: "one bundle's rollout, wave by wave, with its latest events",
  usage: 'rollout status <bundle>',
  ...bundleArg,
  options: {},
  examples: ['flotilla rollout status web'],
  async run(ctx, { positionals }) {
    const r = await ctx.hub().getRollout(positionals[0] as string);
    ctx.print(r, () => rolloutTable(r, ctx.now()));
    return undefined;
  },
};

function commandOf(name: 'pause' | 'resume' | 'promote' | 'abort', summary: string): Command {
  return {
    name: `rollout ${name}`,
    summary,
    usage: `rollout ${name} <bundle>`,
    ...bundleArg,
    options: {},
    examples: [`flotilla rollout ${name} web`],
    async run(ctx, { positionals }) {
      const result = await ctx.hub().rolloutCommand(positionals[0] as string, name);
      ctx.print(result, () => {
        const moved = [
          result.released.length ? `released to ${result.released.join(', ')}` : '',
          result.reverted.length ? `reverted on ${result.reverted.join(', ')}` : '',
        ]
          .filter(Boolean)
          .join('; ');
        return `${rolloutTable(result.rollout, ctx.now())}${moved ? `\n${moved}\n` : ''}`;
      });
      return undefined;
    },
  };
}

export const rolloutPauseCommand = commandOf(
  'pause',
  'hold a rollout where it is: no cluster gets the revision until resume',
);
export const rolloutResumeCommand = commandOf(
  'resume',
  'carry on a paused rollout (failures that paused it are forgiven)',
);
export const rolloutPromoteCommand = commandOf(
  'promote',
  'open the next wave now, without waiting for the bake',
);
export const rolloutAbortCommand = commandOf(
  'abort',
  'end a rollout now: every cluster it released goes back',
);
