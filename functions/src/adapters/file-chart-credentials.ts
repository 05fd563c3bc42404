/**
 * Credentials of private chart repositories for a local hub and the CLI: a JSON
 * file mapping secret names to `{ "username", "password" }` or `{ "token" }`
 * (see docs/fleet-repo.md, "Charts from repositories"). Deployed hubs take them
 * from the secret store instead; the fleet repo only names the secret.
 */
import { readFile } from 'node:fs/promises';
import {
  type ChartCredentials,
  type CredentialResolver,
  parseChartCredentials,
} from '@flotilla/shared/charts';

/** Reads `path` on first use; a missing file means no credentials at all. */
export function fileCredentialResolver(path: string): CredentialResolver {
  let secrets: Promise<ReadonlyMap<string, ChartCredentials>> | undefined;
  const load = async () => {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map<string, ChartCredentials>();
      throw err;
    }
    return parseChartCredentials(text, path);
  };
  return {
    async resolve(secretRef) {
      secrets ??= load();
      return (await secrets).get(secretRef);
    },
  };
}
