/**
 * The HTTP providers (`slack`, `msteams`, `webhook`): their URL and key come from the
 * hub's secret store by the provider's `secretRef`, never from the fleet repo, and are
 * never logged or put in an error (errors name the provider and the HTTP status).
 */
import type { ProviderSpec, ProviderType } from './config.ts';
import { type ProviderTransport, parseRetryAfter, type SendResult } from './delivery.ts';
import { type OutboundMessage, slackPayload, teamsPayload, webhookPayload } from './message.ts';
import { SIGNATURE_HEADER, signWebhook, TIMESTAMP_HEADER } from './signature.ts';

/** Reads a secret by the name a provider gives in `secretRef`; undefined when there is none. */
export interface SecretResolver {
  resolve(secretRef: string): Promise<string | undefined>;
}

/** What a provider's secret holds, once read. */
export interface ProviderSecret {
  readonly address: string;
  readonly hmacKey?: string;
}

/**
 * Reads a provider secret: for `slack` and `msteams` the webhook URL itself or
 * `{"address": "<url>"}`; for `webhook` `{"address": "<url>", "hmacKey": "<at least 16 characters>"}`.
 * Problems name the secret, never its value.
 */
export function parseProviderSecret(type: ProviderType, secretRef: string, value: string): ProviderSecret {
  let parsed: Record<string, unknown> | undefined;
  const trimmed = value.trim();
  if (trimmed.startsWith('{')) {
    try {
      parsed = JSON.parse(trimmed) as Record<string, unknown>;
    } catch {
      throw new Error(`secret "${secretRef}" is not valid JSON`);
    }
  }
  const address = parsed ? parsed.address : trimmed;
  if (typeof address !== 'string' || !/^https?:\/\//.test(address) || !URL.canParse(address)) {
    throw new Error(
      type === 'webhook'
        ? `secret "${secretRef}" must hold {"address": "<http(s) URL>", "hmacKey": "<at least 16 characters>"}`
        : `secret "${secretRef}" must hold an http(s) URL or {"address": "<http(s) URL>"}`,
    );
  }
  if (type !== 'webhook') return { address };
  const hmacKey = parsed?.hmacKey;
  if (typeof hmacKey !== 'string' || hmacKey.length < 16) {
    throw new Error(
      `secret "${secretRef}" must hold {"address": "<url>", "hmacKey": "<at least 16 characters>"}`,
    );
  }
  return { address, hmacKey };
}

export interface HttpTransportOptions {
  readonly secrets: SecretResolver;
  /** The fetch to use (global fetch by default). */
  readonly fetch?: typeof fetch;
  /** Per-request timeout (default 10 s). */
  readonly timeoutMs?: number;
  readonly now?: () => number;
  readonly userAgent?: string;
}

/** Sends to Slack, Teams and generic webhooks over HTTP. */
export function httpTransport(options: HttpTransportOptions): ProviderTransport {
  const doFetch = options.fetch ?? fetch;
  const now = options.now ?? Date.now;
  const timeoutMs = options.timeoutMs ?? 10_000;
  return {
    async send(provider: ProviderSpec, message: OutboundMessage): Promise<SendResult> {
      if (provider.type !== 'slack' && provider.type !== 'msteams' && provider.type !== 'webhook') {
        return { ok: false, retryable: false, error: `${provider.type} is not an HTTP provider` };
      }
      let secret: ProviderSecret;
      try {
        const value = await options.secrets.resolve(provider.secretRef);
        if (value === undefined) {
          return { ok: false, retryable: false, error: `secret "${provider.secretRef}" not found` };
        }
        secret = parseProviderSecret(provider.type, provider.secretRef, value);
      } catch (err) {
        return { ok: false, retryable: false, error: (err as Error).message };
      }
      const payload =
        provider.type === 'slack'
          ? slackPayload(message, provider.channel)
          : provider.type === 'msteams'
            ? teamsPayload(message)
            : webhookPayload(message);
      const body = JSON.stringify(payload);
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'user-agent': options.userAgent ?? 'flotilla-notifier',
      };
      if (provider.type === 'webhook' && secret.hmacKey) {
        const timestamp = Math.floor(now() / 1000);
        headers[TIMESTAMP_HEADER] = String(timestamp);
        headers[SIGNATURE_HEADER] = signWebhook(secret.hmacKey, timestamp, body);
      }
      let res: Response;
      try {
        res = await doFetch(secret.address, {
          method: 'POST',
          headers,
          body,
          redirect: 'error',
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (err) {
        return { ok: false, retryable: true, error: `network error: ${networkReason(err)}` };
      }
      // The body is not read into errors: a receiver may echo the URL or the payload.
      await res.body?.cancel().catch(() => {});
      if (res.ok) return { ok: true };
      const retryable = res.status === 429 || res.status >= 500;
      const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'), now());
      return {
        ok: false,
        retryable,
        error: `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`,
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      };
    },
  };
}

/** A network failure's code (ECONNREFUSED, a timeout), not its message, which can carry the URL. */
function networkReason(err: unknown): string {
  const e = err as { name?: string; cause?: { code?: string; name?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'timed out';
  return e.cause?.code ?? e.cause?.name ?? e.name ?? 'unknown';
}

/** One transport per provider type; a type with none (sns in the local hub) fails without retries. */
export function transportsByType(
  transports: Partial<Record<ProviderType, ProviderTransport>>,
): ProviderTransport {
  return {
    async send(provider, message) {
      const t = transports[provider.type];
      if (!t) {
        return {
          ok: false,
          retryable: false,
          error: `${provider.type} providers are not available in this hub`,
        };
      }
      return t.send(provider, message);
    },
  };
}

/** Secrets from a fixed map (a JSON file for the local hub, tests). */
export function staticSecretResolver(secrets: ReadonlyMap<string, string>): SecretResolver {
  return { resolve: async (ref) => secrets.get(ref) };
}
