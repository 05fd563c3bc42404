import { createHash } from 'node:crypto';
import { HttpClient, HttpTransportError } from '../http/request.ts';
import type { ChangeNotification, QueueMessage, QueuePort } from '../reconcile/ports.ts';
import { type AwsCredentials, signatureV4Headers } from './sigv4.ts';

export interface SqsQueueOptions {
  readonly queueUrl: string;
  readonly region: string;
  readonly endpoint?: string | undefined;
  /** Static credentials; without them the AWS SDK's default chain (web identity, instance role) is used. */
  readonly credentials?: AwsCredentials | undefined;
  /** Long-poll wait, at most 20 s (SQS's limit). */
  readonly waitSeconds?: number;
}

/** An error answer of SQS: `name` is its error code (`QueueDoesNotExist`, `AccessDenied`, ...). */
export class SqsError extends Error {
  readonly status: number;
  readonly code: string;
  /** The answer said the clock is off, and the client has set its clock by SQS's: sending again may succeed. */
  clockCorrected = false;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'SqsError';
    this.status = status;
    this.code = code;
  }
}

/** Error codes that may mean the request's time is off (the SDK's list). */
const clockSkewCodes = new Set([
  'AuthFailure',
  'InvalidSignatureException',
  'RequestExpired',
  'RequestInTheFuture',
  'RequestTimeTooSkewed',
  'SignatureDoesNotMatch',
]);

function parseNotification(body: string | undefined): ChangeNotification | undefined {
  try {
    const v = JSON.parse(body ?? '') as Partial<ChangeNotification>;
    if (
      v.kind === 'desired-state-changed' &&
      typeof v.etag === 'string' &&
      typeof v.generation === 'number'
    ) {
      return v as ChangeNotification;
    }
  } catch {
    // Any message still means "look again".
  }
  return undefined;
}

interface ReceivedMessage {
  readonly MessageId?: string;
  readonly ReceiptHandle?: string;
  readonly MD5OfBody?: string;
  readonly Body?: string;
}

/**
 * The cluster's own SQS queue, long-polled over SQS's JSON protocol with SigV4-signed
 * requests on node:https: the three calls the agent makes do not need the AWS SDK's
 * client, whose import alone costs some 25 MB of resident memory. Credentials come from
 * the configuration; only without them is the SDK's credential chain loaded (web identity,
 * container or instance role), on first use.
 */
export class SqsQueue implements QueuePort {
  readonly #opts: SqsQueueOptions;
  readonly #http: HttpClient;
  /** Where requests go (and what is signed): the endpoint's path, or `/`. */
  readonly #url: URL;
  /** Milliseconds to add to this clock for SQS's: learnt from its answers, as the SDK does, when they say the clock is off. */
  #clockOffsetMs = 0;
  #chain: Promise<() => Promise<AwsCredentials>> | undefined;

  constructor(opts: SqsQueueOptions) {
    this.#opts = opts;
    // As the SDK does: the queue URL's own host, unless another endpoint is configured.
    const endpoint = new URL(opts.endpoint ?? new URL(opts.queueUrl).origin);
    this.#url = new URL(`${endpoint.pathname.replace(/\/$/, '')}/`, endpoint);
    this.#http = new HttpClient(endpoint.origin, { maxSockets: 2 });
  }

  async #credentials(): Promise<AwsCredentials> {
    if (this.#opts.credentials) return this.#opts.credentials;
    this.#chain ??= import('@aws-sdk/credential-provider-node').then(({ defaultProvider }) =>
      defaultProvider(),
    );
    return (await this.#chain)();
  }

  /** One SQS action, retried once when the answer did not come or was a server error or throttling. */
  async #call<T>(
    action: string,
    input: Record<string, unknown>,
    waitSeconds = 0,
    signal?: AbortSignal,
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#send<T>(action, input, waitSeconds, signal);
      } catch (e) {
        const transient =
          e instanceof HttpTransportError ||
          (e instanceof SqsError &&
            (e.status >= 500 || e.clockCorrected || /Throttl|RequestThrottled|OverLimit/.test(e.code)));
        if (attempt >= 2 || !transient || signal?.aborted) throw e;
      }
    }
  }

  async #send<T>(
    action: string,
    input: Record<string, unknown>,
    waitSeconds: number,
    signal?: AbortSignal,
  ): Promise<T> {
    const body = JSON.stringify(input);
    const headers = {
      'content-type': 'application/x-amz-json-1.0',
      'x-amz-target': `AmazonSQS.${action}`,
    };
    const signed = signatureV4Headers(
      { method: 'POST', url: this.#url, headers, body },
      {
        credentials: await this.#credentials(),
        region: this.#opts.region,
        service: 'sqs',
        now: new Date(Date.now() + this.#clockOffsetMs),
      },
    );
    const { host: _host, ...rest } = signed;
    const res = await this.#http.request(this.#url.pathname, {
      method: 'POST',
      headers: { ...headers, ...rest },
      body,
      // A long poll holds the answer back for up to its wait time.
      timeoutMs: (waitSeconds + 15) * 1000,
      signal,
    });
    const text = res.body.toString('utf8');
    if (res.status >= 200 && res.status < 300) return (text ? JSON.parse(text) : {}) as T;
    let code = `HTTP${res.status}`;
    let message = text.slice(0, 300);
    try {
      const err = JSON.parse(text) as { __type?: string; message?: string; Message?: string };
      code = err.__type?.split('#').pop() ?? code;
      message = err.message ?? err.Message ?? message;
    } catch {
      // Not JSON: keep the text.
    }
    const error = new SqsError(res.status, code, `SQS ${action}: ${code}: ${message}`);
    const serverTime = Date.parse(String(res.headers.date ?? ''));
    if (clockSkewCodes.has(code) && Math.abs(serverTime - Date.now() - this.#clockOffsetMs) > 5 * 60_000) {
      this.#clockOffsetMs = serverTime - Date.now();
      error.clockCorrected = true;
    }
    throw error;
  }

  async receive(signal: AbortSignal): Promise<QueueMessage[]> {
    const waitSeconds = Math.min(20, this.#opts.waitSeconds ?? 20);
    const res = await this.#call<{ Messages?: ReceivedMessage[] }>(
      'ReceiveMessage',
      { QueueUrl: this.#opts.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: waitSeconds },
      waitSeconds,
      signal,
    );
    const messages = res.Messages ?? [];
    // As the SDK does: a body that does not match its MD5 was damaged on the way.
    for (const m of messages) {
      if (
        m.MD5OfBody &&
        createHash('md5')
          .update(m.Body ?? '', 'utf8')
          .digest('hex') !== m.MD5OfBody
      )
        throw new SqsError(
          0,
          'InvalidChecksum',
          `SQS ReceiveMessage: message ${m.MessageId} fails its MD5 check`,
        );
    }
    return messages.flatMap((m) =>
      m.ReceiptHandle
        ? [
            {
              id: m.MessageId ?? m.ReceiptHandle,
              receiptHandle: m.ReceiptHandle,
              notification: parseNotification(m.Body),
            },
          ]
        : [],
    );
  }

  async delete(messages: readonly QueueMessage[]): Promise<void> {
    for (let i = 0; i < messages.length; i += 10) {
      const batch = messages.slice(i, i + 10);
      await this.#call('DeleteMessageBatch', {
        QueueUrl: this.#opts.queueUrl,
        Entries: batch.map((m, j) => ({ Id: String(j), ReceiptHandle: m.receiptHandle })),
      });
    }
  }

  close(): void {
    this.#http.close();
  }
}
