/**
 * What a command is: its flags (node:util parseArgs options with help text), its help,
 * and a run function that gets the parsed arguments and a context with the configured
 * hub client, spoke cluster and output. Commands return an exit code or nothing (0).
 */

import type { LocalAgents } from '../bootstrap/local-agent.ts';
import type { HubClient } from '../hub/hub-client.ts';
import type { SpokeCluster } from '../kube/spoke-cluster.ts';
import type { CliConfig } from './config.ts';
import type { ExitCode } from './exit-codes.ts';
import type { OutputFormat } from './output.ts';

export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  readonly multiple?: boolean;
  readonly default?: string | boolean;
  /** One line for --help. */
  readonly description: string;
  /** The value's name in --help (`--ttl <duration>`). */
  readonly valueName?: string;
  /** Left out of --help (test and development switches). */
  readonly hidden?: boolean;
}

export type ParsedValues = Readonly<Record<string, string | boolean | string[] | boolean[] | undefined>>;

export interface CommandArgs {
  readonly values: ParsedValues;
  readonly positionals: readonly string[];
}

export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  readonly homeDir: string;
}

export interface CommandContext {
  readonly io: CliIo;
  readonly config: CliConfig;
  readonly output: OutputFormat;
  /** The hub, with admin credentials when configured. @throws ConfigError without a hub URL. */
  hub(): HubClient;
  /**
   * The spoke cluster of --kubeconfig/--context (or the current context), with the given
   * field manager.
   */
  spoke(): SpokeCluster;
  /** Whether --kubeconfig or --context was given on the command line. */
  readonly spokeExplicit: boolean;
  localAgents(): LocalAgents;
  /** A progress line on stderr (not with --quiet). */
  progress(line: string): void;
  /** Prints a value: whole as JSON or YAML, or as `table()` renders it. */
  print(value: unknown, table: () => string): void;
  readonly now: () => Date;
  readonly sleep: (ms: number) => Promise<void>;
}

export interface Command {
  /** `bootstrap`, or `token create` for a subcommand. */
  readonly name: string;
  readonly aliases?: readonly string[];
  readonly summary: string;
  /** The synopsis after `flotilla `: `bootstrap <cluster> [flags]`. */
  readonly usage: string;
  readonly description?: string;
  readonly options: Readonly<Record<string, OptionSpec>>;
  readonly examples?: readonly string[];
  /**
   * The `-o` values this command takes instead of table, json and yaml (`diff`: text,
   * markdown); the command reads `-o` itself, and `ctx.output` stays the default.
   */
  readonly outputFormats?: readonly string[];
  /** How many positionals it takes: [min, max]. */
  readonly positionals: readonly [number, number];
  run(ctx: CommandContext, args: CommandArgs): Promise<ExitCode | undefined>;
}
