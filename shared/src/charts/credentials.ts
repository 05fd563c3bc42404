import type { ChartCredentials, CredentialResolver } from './ports.ts';

/** The local credentials document is not what `parseChartCredentials` expects. */
export class ChartCredentialsError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ChartCredentialsError';
  }
}

/**
 * Reads the local credentials document: a JSON object from secret name to
 * `{ "username": "...", "password": "..." }` or `{ "token": "..." }`.
 *
 * @param origin where the text came from, for error messages (a file name, an
 *   environment variable); the messages never quote a value.
 * @example
 * parseChartCredentials('{"internal-charts": {"username": "ci", "password": "s3cret"}}', 'charts.json')
 */
export function parseChartCredentials(text: string, origin: string): ReadonlyMap<string, ChartCredentials> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new ChartCredentialsError(`${origin}: not JSON (${(err as Error).name})`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new ChartCredentialsError(`${origin}: expected an object of secret name to credentials`);
  const out = new Map<string, ChartCredentials>();
  for (const [name, value] of Object.entries(doc)) {
    const v = value as Record<string, unknown> | null;
    if (v && typeof v.username === 'string' && typeof v.password === 'string') {
      out.set(name, { username: v.username, password: v.password });
    } else if (v && typeof v.token === 'string') {
      out.set(name, { token: v.token });
    } else {
      throw new ChartCredentialsError(
        `${origin}: secret "${name}" needs string fields username and password, or token`,
      );
    }
  }
  return out;
}

/** A resolver over a fixed map, e.g. what `parseChartCredentials` read. */
export function staticCredentialResolver(secrets: ReadonlyMap<string, ChartCredentials>): CredentialResolver {
  return { resolve: async (secretRef) => secrets.get(secretRef) };
}
