import { compileSelector, type LabelMatcher } from '../selector.ts';
import { type AlertSpec, globMatches, type NotificationConfig, type ProviderSpec } from './config.ts';
import type { EventSeverity, FleetEvent } from './events.ts';

const RANK: Record<EventSeverity, number> = { info: 0, warning: 1, error: 2 };

/** Whether `severity` is at least `minimum` (info < warning < error). */
export function severityAtLeast(severity: EventSeverity, minimum: EventSeverity): boolean {
  return RANK[severity] >= RANK[minimum];
}

/** The notification config compiled once (selectors, providers by name) and reused for every event. */
export class AlertMatcher {
  readonly #alerts: readonly { alert: AlertSpec; cluster?: LabelMatcher }[];
  readonly #providers: ReadonlyMap<string, ProviderSpec>;

  constructor(config: NotificationConfig) {
    this.#alerts = config.alerts.map((alert) =>
      alert.clusterSelector ? { alert, cluster: compileSelector(alert.clusterSelector) } : { alert },
    );
    this.#providers = new Map(config.providers.map((p) => [p.name, p]));
  }

  /** The alerts an event satisfies: its type, severity, bundle and cluster all pass. */
  alertsFor(event: FleetEvent): AlertSpec[] {
    return this.#alerts
      .filter(({ alert, cluster }) => alertMatches(alert, cluster, event))
      .map((a) => a.alert);
  }

  /** The providers an event goes to (each once, however many of its alerts name it). */
  providersFor(event: FleetEvent): ProviderSpec[] {
    const names = new Set(this.alertsFor(event).flatMap((a) => a.providers));
    return [...names].flatMap((n) => {
      const p = this.#providers.get(n);
      return p ? [p] : [];
    });
  }
}

function alertMatches(alert: AlertSpec, cluster: LabelMatcher | undefined, event: FleetEvent): boolean {
  if (!severityAtLeast(event.severity, alert.severity)) return false;
  if (alert.eventTypes && !alert.eventTypes.some((g) => globMatches(g, event.type))) return false;
  if (alert.bundles) {
    const bundle = event.bundle;
    if (bundle === undefined || !alert.bundles.some((g) => globMatches(g, bundle))) return false;
  }
  if (cluster) {
    // A selector chooses clusters: events about no cluster (a failed sync) are not for it.
    if (!event.cluster || !cluster(event.cluster.labels)) return false;
  }
  return true;
}
