/**
 * The `flotilla` command line: finds the command in argv, parses its flags with
 * node:util parseArgs, loads the configuration once, runs the command and maps what
 * it throws to a message on stderr and an exit code (docs/cli.md).
 */
import { readFileSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { type LocalAgents, ProcessLocalAgents } from './bootstrap/local-agent.ts';
import { agentNames } from './bootstrap/manifests.ts';
import { commands, groups } from './commands/index.ts';
import type { CliIo, Command, CommandArgs, CommandContext, OptionSpec } from './core/command.ts';
import { type CliConfig, loadConfig, requireHubUrl } from './core/config.ts';
import { CliError, UsageError } from './core/errors.ts';
import { ExitCode } from './core/exit-codes.ts';
import { formatData, formatTable, parseOutputFormat } from './core/output.ts';
import { HubClient, type HubClientOptions } from './hub/hub-client.ts';
import { iamSigner } from './hub/iam-signer.ts';
import { openSpokeCluster, type SpokeCluster, type SpokeClusterOptions } from './kube/spoke-cluster.ts';
import { cliVersion } from './version.ts';

export const globalOptions = {
  hub: {
    type: 'string',
    valueName: 'url',
    description: 'hub API URL (env FLOTILLA_HUB_URL, or "hub" in the config file)',
  },
  'admin-key-file': {
    type: 'string',
    valueName: 'path',
    description: 'file holding the admin key (env FLOTILLA_ADMIN_KEY, FLOTILLA_ADMIN_KEY_FILE)',
  },
  tenant: {
    type: 'string',
    valueName: 'name',
    description:
      "act as this tenant's admin: status, sync, rollouts, clusters, history and previews use its routes (env FLOTILLA_TENANT; implied by a tenant key)",
  },
  config: {
    type: 'string',
    valueName: 'path',
    description: 'config file (env FLOTILLA_CONFIG; default ~/.config/flotilla/config.yaml)',
  },
  kubeconfig: {
    type: 'string',
    valueName: 'path',
    description: 'kubeconfig file (env KUBECONFIG; default ~/.kube/config)',
  },
  context: {
    type: 'string',
    valueName: 'name',
    description: 'kubeconfig context (default: the current one)',
  },
  output: {
    type: 'string',
    short: 'o',
    valueName: 'format',
    description: 'output format: table, json or yaml',
  },
  quiet: { type: 'boolean', short: 'q', description: 'no progress lines on stderr' },
  help: { type: 'boolean', short: 'h', description: 'show help' },
} as const satisfies Record<string, OptionSpec>;

/** What the CLI talks to; tests replace these. */
export interface CliDeps {
  readonly fetch: typeof fetch;
  readonly openSpoke: (opts: SpokeClusterOptions) => SpokeCluster;
  readonly localAgents: (stateDir: string, env: CliIo['env']) => LocalAgents;
  readonly readFile: (path: string) => string;
  /** A file's permission bits, when it can tell. */
  readonly fileMode: (path: string) => number | undefined;
  readonly now: () => Date;
  readonly sleep: (ms: number) => Promise<void>;
}

const defaultDeps: CliDeps = {
  fetch: (...args) => fetch(...args),
  openSpoke: openSpokeCluster,
  localAgents: (stateDir, env) =>
    new ProcessLocalAgents({
      stateDir,
      baseEnv: env,
      ...(env.FLOTILLA_AGENT_MAIN ? { agentMain: env.FLOTILLA_AGENT_MAIN } : {}),
    }),
  readFile: (path) => readFileSync(path, 'utf8'),
  fileMode: (path) => {
    try {
      return statSync(path).mode & 0o777;
    } catch {
      return undefined;
    }
  },
  now: () => new Date(),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
};

const valueOptions = new Set(
  Object.entries(globalOptions).flatMap(([name, o]) =>
    o.type === 'string' ? [`--${name}`, ...('short' in o ? [`-${o.short}`] : [])] : [],
  ),
);

/** Splits argv into the command's words (`token create`) and everything else, global flags included. */
export function splitCommand(argv: readonly string[]): { words: string[]; rest: string[] } {
  const words: string[] = [];
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    if (arg.startsWith('-') && arg !== '-') {
      rest.push(arg);
      if (valueOptions.has(arg) && i + 1 < argv.length) rest.push(argv[++i] as string);
      continue;
    }
    const isGroup = words.length >= 1 && groups.some((g) => g.name === words.join(' '));
    if (words.length === 0 || isGroup) words.push(arg);
    else rest.push(arg);
  }
  return { words, rest };
}

export function findCommand(words: readonly string[]): Command | undefined {
  const name = words.join(' ');
  return commands.find((c) => c.name === name || c.aliases?.includes(name));
}

function parseOptions(spec: Readonly<Record<string, OptionSpec>>) {
  return Object.fromEntries(
    Object.entries(spec).map(([name, o]) => [
      name,
      {
        type: o.type,
        ...(o.short ? { short: o.short } : {}),
        ...(o.multiple ? { multiple: true } : {}),
        ...(o.default !== undefined ? { default: o.default } : {}),
      },
    ]),
  ) as Parameters<typeof parseArgs>[0] extends infer C
    ? C extends { options?: infer O }
      ? O
      : never
    : never;
}

/** Parses a command's arguments; a wrong flag or argument count is a UsageError. */
export function parseCommandArgs(command: Command, rest: readonly string[]): CommandArgs {
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({
      args: [...rest],
      options: parseOptions({ ...globalOptions, ...command.options }),
      allowPositionals: true,
      strict: true,
    }) as typeof parsed;
  } catch (err) {
    const message = (err as Error).message.replace(/\. To specify a positional argument.*$/s, '');
    throw new UsageError(message, { cause: err });
  }
  const [min, max] = command.positionals;
  const n = parsed.positionals.length;
  if (!parsed.values.help) {
    if (n < min) throw new UsageError(`missing argument: flotilla ${command.usage}`);
    if (n > max)
      throw new UsageError(`unexpected argument "${parsed.positionals[max]}": flotilla ${command.usage}`);
  }
  return { values: parsed.values as CommandArgs['values'], positionals: parsed.positionals };
}

function optionLines(options: Readonly<Record<string, OptionSpec>>): string[] {
  const rows = Object.entries(options)
    .filter(([, o]) => !o.hidden)
    .map(([name, o]) => {
      const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ` <${o.valueName ?? 'value'}>` : ''}`;
      const extra = [
        o.multiple ? 'repeatable' : '',
        o.default !== undefined && o.default !== false ? `default ${o.default}` : '',
      ]
        .filter(Boolean)
        .join('; ');
      return [flag, `${o.description}${extra ? ` (${extra})` : ''}`] as const;
    });
  const width = Math.max(0, ...rows.map(([f]) => f.length));
  return rows.map(([f, d]) => `  ${f.padEnd(width)}   ${d}`);
}

export function commandHelp(command: Command): string {
  const lines = [`Usage: flotilla ${command.usage}`, '', command.summary];
  if (command.description) lines.push('', command.description);
  if (Object.keys(command.options).length > 0) lines.push('', 'Flags:', ...optionLines(command.options));
  lines.push('', 'Global flags:', ...optionLines(globalOptions));
  if (command.examples?.length) lines.push('', 'Examples:', ...command.examples.map((e) => `  ${e}`));
  return `${lines.join('\n')}\n`;
}

export function mainHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  const lines = [
    'flotilla: bootstrap spoke clusters and administer the fleet',
    '',
    'Usage: flotilla <command> [flags]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}   ${c.summary}`),
    '',
    'Global flags:',
    ...optionLines(globalOptions),
    '',
    'Run "flotilla <command> --help" for a command\'s flags and examples; docs/cli.md has them all, with the exit codes.',
  ];
  return `${lines.join('\n')}\n`;
}

function groupHelp(group: (typeof groups)[number]): string {
  const members = commands.filter((c) => c.name.startsWith(`${group.name} `));
  const width = Math.max(...members.map((c) => c.name.length));
  return `${[
    `Usage: flotilla ${group.name} <command> [flags]`,
    '',
    group.summary,
    '',
    'Commands:',
    ...members.map((c) => `  ${c.name.padEnd(width)}   ${c.summary}`),
  ].join('\n')}\n`;
}

/**
 * Runs one `flotilla` invocation and returns its exit code; writes only through `io`.
 *
 * @example
 * process.exitCode = await runCli(process.argv.slice(2), nodeIo());
 */
export async function runCli(
  argv: readonly string[],
  io: CliIo,
  overrides: Partial<CliDeps> = {},
): Promise<number> {
  const deps: CliDeps = { ...defaultDeps, ...overrides };
  const { words, rest } = splitCommand(argv);
  const wantsHelp = rest.includes('--help') || rest.includes('-h');
  if (words.length === 0) {
    if (rest.includes('--version')) {
      io.stdout(`flotilla ${cliVersion}\n`);
      return ExitCode.Ok;
    }
    (wantsHelp ? io.stdout : io.stderr)(mainHelp());
    return wantsHelp ? ExitCode.Ok : ExitCode.Usage;
  }
  if (words[0] === 'help') {
    const target = findCommand(words.slice(1).concat(rest.filter((r) => !r.startsWith('-'))));
    io.stdout(target ? commandHelp(target) : mainHelp());
    return ExitCode.Ok;
  }
  if (words[0] === 'version') {
    io.stdout(`flotilla ${cliVersion}\n`);
    return ExitCode.Ok;
  }
  const command = findCommand(words);
  if (!command) {
    const group =
      groups.find((g) => g.name === words.join(' ')) ??
      groups.find((g) => g.name === words.slice(0, -1).join(' '));
    if (group) {
      if (group.name === words.join(' ')) {
        (wantsHelp ? io.stdout : io.stderr)(groupHelp(group));
        return wantsHelp ? ExitCode.Ok : ExitCode.Usage;
      }
      io.stderr(`error: unknown command "${words.join(' ')}"\n\n${groupHelp(group)}`);
      return ExitCode.Usage;
    }
    io.stderr(`error: unknown command "${words[0]}"\nRun "flotilla --help" for the list of commands.\n`);
    return ExitCode.Usage;
  }

  try {
    const args = parseCommandArgs(command, rest);
    if (args.values.help) {
      io.stdout(commandHelp(command));
      return ExitCode.Ok;
    }
    const outputFlag = args.values.output as string | undefined;
    if (command.outputFormats) {
      if (outputFlag !== undefined && !command.outputFormats.includes(outputFlag)) {
        throw new UsageError(
          `-o/--output "${outputFlag}": expected one of ${command.outputFormats.join(', ')}`,
        );
      }
    } else parseOutputFormat(outputFlag);
    const config = loadConfig({
      flags: {
        hub: args.values.hub as string | undefined,
        config: args.values.config as string | undefined,
        kubeconfig: args.values.kubeconfig as string | undefined,
        context: args.values.context as string | undefined,
        output: command.outputFormats ? undefined : outputFlag,
        adminKeyFile: args.values['admin-key-file'] as string | undefined,
        tenant: args.values.tenant as string | undefined,
      },
      env: io.env,
      cwd: io.cwd,
      homeDir: io.homeDir,
      readFile: deps.readFile,
      fileMode: deps.fileMode,
    });
    for (const warning of config.warnings) io.stderr(`warning: ${warning}\n`);
    const ctx = commandContext(config, io, deps, args);
    return (await command.run(ctx, args)) ?? ExitCode.Ok;
  } catch (err) {
    return reportError(err, io, command);
  }
}

function commandContext(config: CliConfig, io: CliIo, deps: CliDeps, args: CommandArgs): CommandContext {
  let hub: HubClient | undefined;
  let spoke: SpokeCluster | undefined;
  let agents: LocalAgents | undefined;
  const quiet = Boolean(args.values.quiet);
  return {
    io,
    config,
    output: config.output,
    hub: () => {
      if (hub) return hub;
      const baseUrl = requireHubUrl(config);
      const auth = config.adminAuth;
      const admin: HubClientOptions['admin'] =
        auth.kind === 'key'
          ? { kind: 'key', key: auth.key }
          : auth.kind === 'iam'
            ? { kind: 'signer', sign: iamSigner({ region: auth.region }) }
            : { kind: 'none' };
      hub = new HubClient({
        baseUrl,
        admin,
        fetch: deps.fetch,
        userAgent: `flotilla-cli/${cliVersion}`,
        ...(config.tenant !== undefined ? { tenant: config.tenant } : {}),
      });
      return hub;
    },
    spoke: () => {
      spoke ??= deps.openSpoke({
        kubeconfigPaths: config.kubeconfig.paths,
        context: config.context,
        fieldManager: agentNames.fieldManager,
      });
      return spoke;
    },
    spokeExplicit: config.kubeconfig.explicit || config.context !== undefined,
    localAgents: () => {
      agents ??= deps.localAgents(config.stateDir, io.env);
      return agents;
    },
    progress: (line) => {
      if (!quiet) io.stderr(`${line}\n`);
    },
    print: (value, table) => {
      io.stdout(config.output === 'table' ? table() : formatData(value, config.output));
    },
    now: deps.now,
    sleep: deps.sleep,
  };
}

/** Prints an error the way every command does, and returns its exit code. */
export function reportError(err: unknown, io: CliIo, command?: Command): number {
  if (err instanceof CliError) {
    io.stderr(`error: ${err.message}\n`);
    if (err.hint) io.stderr(`hint: ${err.hint}\n`);
    if (err instanceof UsageError && command) io.stderr(`Run "flotilla ${command.name} --help" for usage.\n`);
    return err.exitCode;
  }
  const e = err as Error;
  io.stderr(`error: ${e?.message ?? String(err)}\n`);
  if (io.env.FLOTILLA_DEBUG && e?.stack) io.stderr(`${e.stack}\n`);
  else io.stderr('hint: this looks like a bug in flotilla; FLOTILLA_DEBUG=1 shows the stack\n');
  return ExitCode.Failure;
}

export { formatTable };
