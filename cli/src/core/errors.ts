import { ExitCode } from './exit-codes.ts';

/**
 * An error the CLI reports as one message and an exit code, with an optional hint on
 * what to do about it. Anything else that escapes a command is a bug (exit 1).
 */
export class CliError extends Error {
  readonly exitCode: ExitCode;
  readonly hint: string | undefined;

  constructor(exitCode: ExitCode, message: string, options?: ErrorOptions & { hint?: string }) {
    super(message, options);
    this.name = 'CliError';
    this.exitCode = exitCode;
    this.hint = options?.hint;
  }
}

/** A wrong command line: the command's usage is shown with it. */
export class UsageError extends CliError {
  constructor(message: string, options?: ErrorOptions & { hint?: string }) {
    super(ExitCode.Usage, message, options);
    this.name = 'UsageError';
  }
}

export class ConfigError extends CliError {
  constructor(message: string, options?: ErrorOptions & { hint?: string }) {
    super(ExitCode.Config, message, options);
    this.name = 'ConfigError';
  }
}
