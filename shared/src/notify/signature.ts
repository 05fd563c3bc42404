import { createHmac, timingSafeEqual } from 'node:crypto';

/** Headers of a signed webhook delivery. */
export const SIGNATURE_HEADER = 'X-Flotilla-Signature';
export const TIMESTAMP_HEADER = 'X-Flotilla-Timestamp';

/**
 * The signature of a webhook delivery: `sha256=` and the hex HMAC-SHA256, under the
 * provider's key, of `<timestamp>.<body>` (the timestamp in Unix seconds, as sent in
 * `X-Flotilla-Timestamp`), so a receiver can refuse replays of old deliveries.
 */
export function signWebhook(key: string, timestamp: number, body: string): string {
  return `sha256=${createHmac('sha256', key).update(`${timestamp}.${body}`).digest('hex')}`;
}

/**
 * What a receiver does: checks the signature in constant time and that the timestamp is
 * within `toleranceSeconds` of `nowSeconds`.
 */
export function verifyWebhook(
  key: string,
  headers: { signature: string | undefined; timestamp: string | undefined },
  body: string,
  nowSeconds: number,
  toleranceSeconds = 300,
): boolean {
  if (!headers.signature || !headers.timestamp || !/^\d+$/.test(headers.timestamp)) return false;
  const ts = Number(headers.timestamp);
  if (Math.abs(nowSeconds - ts) > toleranceSeconds) return false;
  const expected = Buffer.from(signWebhook(key, ts, body));
  const got = Buffer.from(headers.signature);
  return expected.length === got.length && timingSafeEqual(expected, got);
}
