/**
 * The notifier's use case for one SQS batch: parse the events, deliver them with the
 * engine, wait (within the time left) for held summaries, and name the records to
 * retry. A record is retried when any of its deliveries failed or it is still held for a
 * summary when time runs out; a record that is not a fleet event is dropped (logged),
 * since no retry can make it one.
 */

import type { Clock } from '@flotilla/shared/notify';
import { EventSeverity, type FleetEvent, FleetEventType, type Notifier } from '@flotilla/shared/notify';
import type { Logger } from '../http/log.ts';
import type { NotificationConfigSource } from './config-source.ts';

export interface EventRecord {
  readonly id: string;
  readonly body: string;
}

export interface DeliverRecordsResult {
  /** Ids of records to be received again (SQS partial batch failure). */
  readonly retry: string[];
  readonly delivered: number;
  readonly duplicates: number;
  readonly messages: number;
}

export async function deliverRecords(
  deps: { notifier: Notifier; config: NotificationConfigSource; clock: Clock; log: Logger },
  records: readonly EventRecord[],
  /** Until when held summaries may be waited for (epoch ms). */
  deadline: number,
): Promise<DeliverRecordsResult> {
  const events: FleetEvent[] = [];
  const recordsByKey = new Map<string, string[]>();
  for (const record of records) {
    const event = parseFleetEvent(record.body);
    if (!event) {
      deps.log.warn('not a fleet event: dropped', { record: record.id });
      continue;
    }
    events.push(event);
    recordsByKey.set(event.key, [...(recordsByKey.get(event.key) ?? []), record.id]);
  }
  deps.notifier.configure(await deps.config.current());
  const report = await deps.notifier.handle(events);
  const failedKeys = new Set(report.failed.map((f) => f.key));
  let delivered = report.delivered.length;
  let messages = report.messages.length;
  // Summaries held by the rate limit go out as soon as a token is back, if that is in time.
  for (let next = deps.notifier.nextFlushAt(); next !== undefined; next = deps.notifier.nextFlushAt()) {
    if (next > deadline) break;
    await deps.clock.sleep(Math.max(0, next - deps.clock.now()));
    const flushed = await deps.notifier.flush();
    delivered += flushed.delivered.length;
    messages += flushed.messages.length;
    for (const f of flushed.failed) failedKeys.add(f.key);
  }
  for (const key of await deps.notifier.abandonHeld()) failedKeys.add(key);
  const retry = [...failedKeys].flatMap((k) => recordsByKey.get(k) ?? []);
  deps.log.info('notifications delivered', {
    records: records.length,
    delivered,
    duplicates: report.duplicates.length,
    messages,
    retry: retry.length,
  });
  return { retry: [...new Set(retry)], delivered, duplicates: report.duplicates.length, messages };
}

const TYPES: readonly string[] = Object.values(FleetEventType);
const SEVERITIES: readonly string[] = Object.values(EventSeverity);

/** A fleet event from a queue message, or undefined when the body is not one. */
export function parseFleetEvent(body: string): FleetEvent | undefined {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return undefined;
  }
  const e = value as Record<string, unknown> | null;
  if (e === null || typeof e !== 'object') return undefined;
  if (typeof e.type !== 'string' || !TYPES.includes(e.type)) return undefined;
  if (typeof e.severity !== 'string' || !SEVERITIES.includes(e.severity)) return undefined;
  if (typeof e.key !== 'string' || typeof e.at !== 'string' || typeof e.message !== 'string')
    return undefined;
  const c = e.cluster as { name?: unknown; labels?: unknown } | undefined;
  if (c !== undefined && (typeof c?.name !== 'string' || typeof c.labels !== 'object' || c.labels === null))
    return undefined;
  return e as unknown as FleetEvent;
}
