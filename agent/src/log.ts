import { isoTime } from '@flotilla/shared/agent';

/** Structured logging: one JSON object per line. Tokens and keys are never passed in. */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export const LogLevel = { debug: 10, info: 20, warn: 30, error: 40 } as const;
export type LogLevel = keyof typeof LogLevel;

/** An error as loggable data: name, message and the chain of causes, no stack (it says nothing to an operator). */
export function errorFields(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { error: String(err) };
  const causes: string[] = [];
  let cause: unknown = err.cause;
  while (cause instanceof Error && causes.length < 5) {
    causes.push(`${cause.name}: ${cause.message}`);
    cause = cause.cause;
  }
  return { error: `${err.name}: ${err.message}`, ...(causes.length > 0 ? { causes } : {}) };
}

export function jsonLogger(
  opts: { level?: LogLevel; write?: (line: string) => void; base?: Record<string, unknown> } = {},
): Logger {
  const min = LogLevel[opts.level ?? 'info'];
  const write = opts.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const emit = (level: LogLevel) => (message: string, fields?: Record<string, unknown>) => {
    if (LogLevel[level] < min) return;
    write(JSON.stringify({ time: isoTime(Date.now()), level, message, ...opts.base, ...fields }));
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
