/**
 * What a provider is sent: one event, or one summary of the events a rate limit held back
 * ("312 more events: 300 bundle.failed (web on 300 clusters), 12 cluster.offline"), and the
 * payload each provider type takes for it.
 */
import type { EventSeverity, FleetEvent } from './events.ts';
import { severityAtLeast } from './match.ts';

/** Counts of held-back events by type, with their bundles and how many clusters each. */
export interface EventSummary {
  readonly count: number;
  /** The worst severity among them. */
  readonly severity: EventSeverity;
  readonly from: string;
  readonly to: string;
  readonly byType: readonly {
    readonly type: string;
    readonly count: number;
    readonly bundles: readonly { readonly bundle: string; readonly clusters: number }[];
    readonly clusters: number;
  }[];
  /** The events' keys, at most {@link SUMMARY_KEYS}, so a receiver can look them up. */
  readonly keys: readonly string[];
}

export const SUMMARY_KEYS = 100;

export type OutboundMessage =
  | { readonly kind: 'event'; readonly event: FleetEvent }
  | { readonly kind: 'summary'; readonly summary: EventSummary; readonly text: string };

/** Summarizes events (in the order given) into counts by type and bundle. */
export function summarize(events: readonly FleetEvent[]): EventSummary {
  const byType = new Map<
    string,
    { count: number; bundles: Map<string, Set<string>>; clusters: Set<string> }
  >();
  let severity: EventSeverity = 'info';
  let from = events[0]?.at ?? '';
  let to = from;
  for (const e of events) {
    if (severityAtLeast(e.severity, severity)) severity = e.severity;
    if (e.at < from) from = e.at;
    if (e.at > to) to = e.at;
    let t = byType.get(e.type);
    if (!t) {
      t = { count: 0, bundles: new Map(), clusters: new Set() };
      byType.set(e.type, t);
    }
    t.count++;
    if (e.cluster) t.clusters.add(e.cluster.name);
    if (e.bundle) {
      const clusters = t.bundles.get(e.bundle) ?? new Set<string>();
      if (e.cluster) clusters.add(e.cluster.name);
      t.bundles.set(e.bundle, clusters);
    }
  }
  return {
    count: events.length,
    severity,
    from,
    to,
    byType: [...byType]
      .sort(([a, x], [b, y]) => y.count - x.count || (a < b ? -1 : 1))
      .map(([type, t]) => ({
        type,
        count: t.count,
        clusters: t.clusters.size,
        bundles: [...t.bundles]
          .sort(([a, x], [b, y]) => y.size - x.size || (a < b ? -1 : 1))
          .map(([bundle, c]) => ({ bundle, clusters: c.size })),
      })),
    keys: events.slice(0, SUMMARY_KEYS).map((e) => e.key),
  };
}

/** `312 more events: 300 bundle.failed (web on 300 clusters), 12 cluster.offline (12 clusters)`. */
export function summaryText(s: EventSummary): string {
  const parts = s.byType.map((t) => {
    const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? '' : 's'}`;
    let detail = '';
    if (t.bundles.length > 0) {
      const shown = t.bundles.slice(0, 3).map((b) => `${b.bundle} on ${plural(b.clusters, 'cluster')}`);
      if (t.bundles.length > 3) shown.push(`${t.bundles.length - 3} more bundles`);
      detail = ` (${shown.join(', ')})`;
    } else if (t.clusters > 0) detail = ` (${plural(t.clusters, 'cluster')})`;
    return `${t.count} ${t.type}${detail}`;
  });
  return `${s.count} more event${s.count === 1 ? '' : 's'}: ${parts.join(', ')}`;
}

/** A short title: `bundle.failed: web on prod-eu-1`, or for a summary `Flotilla summary (rate limit reached)`. */
export function messageTitle(message: OutboundMessage): string {
  if (message.kind === 'summary') return 'Flotilla summary (rate limit reached)';
  const e = message.event;
  const about = [e.bundle, e.cluster ? `on ${e.cluster.name}` : undefined].filter(Boolean).join(' ');
  return about ? `${e.type}: ${about}` : e.type;
}

function facts(e: FleetEvent): [string, string][] {
  const out: [string, string][] = [
    ['Event', e.type],
    ['Severity', e.severity],
  ];
  if (e.cluster) out.push(['Cluster', e.cluster.name]);
  if (e.bundle) out.push(['Bundle', e.bundle]);
  if (e.commit) out.push(['Commit', e.commit.slice(0, 12)]);
  out.push(['At', e.at]);
  return out;
}

const SEVERITY_ICON: Record<EventSeverity, string> = {
  info: ':information_source:',
  warning: ':warning:',
  error: ':x:',
};

/** Slack incoming-webhook payload: `text` (the notification's fallback) and Block Kit blocks. */
export function slackPayload(message: OutboundMessage, channel?: string): Record<string, unknown> {
  const text = message.kind === 'event' ? message.event.message : message.text;
  const severity = message.kind === 'event' ? message.event.severity : message.summary.severity;
  const context =
    message.kind === 'event'
      ? facts(message.event)
          .map(([k, v]) => `*${k}:* ${v}`)
          .join('  ·  ')
      : `from ${message.summary.from} to ${message.summary.to}`;
  return {
    ...(channel ? { channel } : {}),
    text: `${messageTitle(message)}: ${text}`,
    blocks: [
      {
        type: 'section',
        text: {
          type: 'mrkdwn',
          text: `${SEVERITY_ICON[severity]} *${mrkdwnEscape(messageTitle(message))}*\n${mrkdwnEscape(text)}`,
        },
      },
      { type: 'context', elements: [{ type: 'mrkdwn', text: mrkdwnEscape(context) }] },
    ],
  };
}

/** Slack's three reserved characters in text. */
function mrkdwnEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

const TEAMS_COLOR: Record<EventSeverity, string> = { info: 'Accent', warning: 'Warning', error: 'Attention' };

/**
 * Microsoft Teams payload: an Adaptive Card in a `message`, which both Teams workflows
 * ("When a Teams webhook request is received") and incoming webhooks accept.
 */
export function teamsPayload(message: OutboundMessage): Record<string, unknown> {
  const text = message.kind === 'event' ? message.event.message : message.text;
  const severity = message.kind === 'event' ? message.event.severity : message.summary.severity;
  const factList =
    message.kind === 'event'
      ? facts(message.event)
      : message.summary.byType.map((t) => [t.type, String(t.count)] as [string, string]);
  return {
    type: 'message',
    attachments: [
      {
        contentType: 'application/vnd.microsoft.card.adaptive',
        contentUrl: null,
        content: {
          $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
          type: 'AdaptiveCard',
          version: '1.4',
          body: [
            {
              type: 'TextBlock',
              text: messageTitle(message),
              weight: 'Bolder',
              size: 'Medium',
              color: TEAMS_COLOR[severity],
              wrap: true,
            },
            { type: 'TextBlock', text, wrap: true },
            { type: 'FactSet', facts: factList.map(([title, value]) => ({ title, value })) },
          ],
        },
      },
    ],
  };
}

/**
 * The JSON body of a `webhook` delivery (also the SNS message and the EventBridge detail):
 * `{"kind": "event", "event": <FleetEvent>}` or `{"kind": "summary", "summary": ..., "text": ...}`.
 */
export function webhookPayload(message: OutboundMessage): Record<string, unknown> {
  return message.kind === 'event'
    ? { kind: 'event', event: message.event }
    : { kind: 'summary', summary: message.summary, text: message.text };
}
