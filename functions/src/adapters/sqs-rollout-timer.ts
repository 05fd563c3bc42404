import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { RolloutTimer, RolloutWakeMessage } from '@flotilla/shared/hub';
import { errorFields, type Logger } from '../http/log.ts';

/** SQS holds a message back for at most 15 minutes. */
export const maxDelaySeconds = 900;

/** The delay of a wake at `at`: whole seconds, never early, within what SQS takes. */
export function wakeDelaySeconds(at: Date, now: Date): number {
  return Math.min(maxDelaySeconds, Math.max(0, Math.ceil((at.getTime() - now.getTime()) / 1000)));
}

/**
 * Rollout wakes as delayed messages on the sync work queue, which the sync function
 * already consumes (event source, dead-letter queue). A wake more than 15 minutes away is
 * sent with the longest delay and re-armed when it arrives (see `wakeRollout`).
 */
export class SqsRolloutTimer implements RolloutTimer {
  readonly #sqs: SQSClient;
  readonly #url: string;
  readonly #now: () => Date;
  readonly #log: Logger;

  constructor(sqs: SQSClient, url: string, opts: { readonly now: () => Date; readonly log: Logger }) {
    this.#sqs = sqs;
    this.#url = url;
    this.#now = opts.now;
    this.#log = opts.log;
  }

  async wakeAt(bundle: string, at: Date): Promise<void> {
    const message: RolloutWakeMessage = { kind: 'rollout-wake', bundle, at: at.toISOString() };
    const delaySeconds = wakeDelaySeconds(at, this.#now());
    try {
      await this.#sqs.send(
        new SendMessageCommand({
          QueueUrl: this.#url,
          MessageBody: JSON.stringify(message),
          DelaySeconds: delaySeconds,
        }),
      );
    } catch (err) {
      // The rollout is saved either way; it then steps on the next report or the schedule.
      this.#log.warn('rollout wake not armed', {
        bundle,
        at: message.at,
        delaySeconds,
        ...errorFields(err),
      });
    }
  }
}
