/** One structured log line per event; Lambda sends stdout to CloudWatch as is. */
export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** A JSON-lines logger. Callers pass ids and error details, never headers, tokens or keys. */
export function jsonLogger(
  write: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
): Logger {
  const emit = (level: string, message: string, fields?: Record<string, unknown>) => {
    write(JSON.stringify({ level, time: new Date().toISOString(), message, ...fields }));
  };
  return {
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}

/** An error as log fields: name, message, stack and causes (the server side of a 5xx). */
export function errorFields(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { error: { value: String(err) } };
  const chain: Record<string, unknown>[] = [];
  let current: unknown = err;
  for (let depth = 0; current instanceof Error && depth < 5; depth++) {
    chain.push({ name: current.name, message: current.message, stack: current.stack });
    current = current.cause;
  }
  return { error: chain[0], ...(chain.length > 1 ? { causes: chain.slice(1) } : {}) };
}
