import type { CommandContext } from '../core/command.ts';
import { ExitCode } from '../core/exit-codes.ts';
import type { FleetErrorView } from '../hub/hub-client.ts';

/**
 * Prints fleet-repo errors (`file:line: message`) on stderr and returns the exit code that
 * goes with them: the command's output is still printed, but a script sees exit 10.
 */
export function reportFleetErrors(
  ctx: CommandContext,
  errors: readonly Pick<FleetErrorView, 'text'>[],
): ExitCode | undefined {
  if (errors.length === 0) return undefined;
  ctx.io.stderr(`${errors.length} problem${errors.length === 1 ? '' : 's'} in the fleet repo:\n`);
  for (const e of errors) ctx.io.stderr(`  ${e.text}\n`);
  return ExitCode.FleetErrors;
}

/** Prints fleet-repo warnings (`warning: file:line: message`) on stderr; they change no exit code. */
export function reportFleetWarnings(
  ctx: CommandContext,
  warnings: readonly Pick<FleetErrorView, 'text'>[],
): void {
  for (const w of warnings) ctx.io.stderr(`warning: ${w.text}\n`);
}

/** How a target or customization entry is shown: its name, else its position, and its kind. */
export function entryText(
  entry: { index: number; name?: string; kind: string } | null | undefined,
  list: string,
): string | undefined {
  if (!entry) return undefined;
  return `${entry.name ?? `${list}[${entry.index}]`} (${entry.kind})`;
}
