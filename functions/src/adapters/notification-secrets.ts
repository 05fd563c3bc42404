/**
 * Where notification providers' secrets (webhook URLs, HMAC keys) come from: Secrets
 * Manager in AWS, a JSON file for the local hub. Values are cached for a few minutes so
 * a burst does not read the same secret a thousand times, and a rotated secret is picked
 * up soon after. Values never reach a log line or an error message.
 */
import { readFile } from 'node:fs/promises';
import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SecretResolver } from '@flotilla/shared/notify';

const CACHE_MS = 5 * 60_000;

/** Reads the secret `<prefix><secretRef>`; a secret that does not exist resolves to undefined. */
export function secretsManagerNotificationSecrets(
  client: Pick<SecretsManagerClient, 'send'>,
  prefix: string,
  now: () => number = Date.now,
): SecretResolver {
  const cache = new Map<string, { value: string | undefined; until: number }>();
  return {
    async resolve(secretRef) {
      const hit = cache.get(secretRef);
      if (hit && hit.until > now()) return hit.value;
      let value: string | undefined;
      try {
        const res = await client.send(new GetSecretValueCommand({ SecretId: `${prefix}${secretRef}` }));
        value = res.SecretString;
      } catch (err) {
        if ((err as Error).name !== 'ResourceNotFoundException') throw err;
      }
      cache.set(secretRef, { value, until: now() + CACHE_MS });
      return value;
    },
  };
}

/**
 * Reads `{"<secretRef>": "<value>", ...}` from a file (re-read when it changes is not
 * needed locally: the file is read on each cache miss). A missing file means no secrets.
 */
export function fileNotificationSecrets(path: string, now: () => number = Date.now): SecretResolver {
  let cached: { values: Map<string, string>; until: number } | undefined;
  const load = async (): Promise<Map<string, string>> => {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
      throw err;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new Error(`${path}: expected a JSON object of secret names to values`);
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new Error(`${path}: expected a JSON object of secret names to values`);
    }
    const values = new Map<string, string>();
    for (const [k, v] of Object.entries(parsed)) {
      // A structured secret ({"address", "hmacKey"}) may be written as an object.
      values.set(k, typeof v === 'string' ? v : JSON.stringify(v));
    }
    return values;
  };
  return {
    async resolve(secretRef) {
      if (!cached || cached.until <= now()) cached = { values: await load(), until: now() + 5000 };
      return cached.values.get(secretRef);
    },
  };
}
