/**
 * Output: every command produces a value; `-o json` and `-o yaml` print it whole, and
 * `-o table` (the default) prints the command's table of it, aligned as kubectl does.
 */
import { stringify } from 'yaml';
import { UsageError } from './errors.ts';

export const outputFormats = ['table', 'json', 'yaml'] as const;
export type OutputFormat = (typeof outputFormats)[number];

export function parseOutputFormat(text: string | undefined, fallback: OutputFormat = 'table'): OutputFormat {
  if (text === undefined) return fallback;
  if ((outputFormats as readonly string[]).includes(text)) return text as OutputFormat;
  throw new UsageError(`-o/--output "${text}": expected one of ${outputFormats.join(', ')}`);
}

/** A value as JSON (2-space indent) or YAML, ending with a newline. */
export function formatData(value: unknown, format: 'json' | 'yaml'): string {
  if (format === 'json') return `${JSON.stringify(value, null, 2)}\n`;
  return stringify(value, { lineWidth: 0, aliasDuplicateObjects: false });
}

export type Cell = string | number | boolean | null | undefined;

/**
 * Columns padded to the widest cell, three spaces apart, header in capitals; empty cells
 * show `<none>`. The last column is not padded.
 */
export function formatTable(headers: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const text = (c: Cell) => (c === null || c === undefined || c === '' ? '<none>' : String(c));
  const all = [headers.map((h) => h.toUpperCase()), ...rows.map((r) => headers.map((_, i) => text(r[i])))];
  const widths = headers.map((_, i) => Math.max(...all.map((r) => (r[i] as string).length)));
  return all
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] as number)))
        .join('   ')
        .trimEnd(),
    )
    .map((line) => `${line}\n`)
    .join('');
}
