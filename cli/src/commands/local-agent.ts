import { parseClusterName } from '../core/args.ts';
import type { Command } from '../core/command.ts';
import { CliError } from '../core/errors.ts';
import { ExitCode } from '../core/exit-codes.ts';
import { formatTable } from '../core/output.ts';

export const localAgentListCommand: Command = {
  name: 'local-agent list',
  summary: 'list agents started on this machine by bootstrap --run-agent local',
  usage: 'local-agent list',
  positionals: [0, 0],
  options: {},
  examples: ['flotilla local-agent list'],
  async run(ctx) {
    const agents = ctx.localAgents().list();
    ctx.print({ agents }, () =>
      formatTable(
        ['cluster', 'pid', 'running', 'started', 'hub', 'log'],
        agents.map((a) => [a.cluster, a.pid, a.running ? 'yes' : 'no', a.startedAt, a.hubUrl, a.logFile]),
      ),
    );
    return undefined;
  },
};

export const localAgentStopCommand: Command = {
  name: 'local-agent stop',
  summary: 'stop a local agent (or all of them with --all)',
  usage: 'local-agent stop <cluster> | --all',
  positionals: [0, 1],
  options: { all: { type: 'boolean', description: 'stop every local agent' } },
  examples: ['flotilla local-agent stop dev-1', 'flotilla local-agent stop --all'],
  async run(ctx, { positionals, values }) {
    const agents = ctx.localAgents();
    if (values.all && positionals.length > 0)
      throw new CliError(ExitCode.Usage, 'give a cluster or --all, not both');
    const names = values.all ? agents.list().map((a) => a.cluster) : [parseClusterName(positionals[0])];
    const stopped: string[] = [];
    for (const name of names) {
      const known = agents.get(name);
      if (!known && !values.all)
        throw new CliError(ExitCode.NotFound, `no local agent recorded for "${name}"`);
      if (await agents.stop(name)) stopped.push(name);
      ctx.progress(`${name}: ${known?.running ? 'stopped' : 'was not running; record removed'}`);
    }
    ctx.print({ stopped }, () =>
      stopped.length ? `stopped: ${stopped.join(', ')}\n` : 'no local agent was running\n',
    );
    return undefined;
  },
};
