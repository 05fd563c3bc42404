import { loadFleet } from '@flotilla/shared';
import {
  type ClusterObservation,
  type RolloutCluster,
  type RolloutCommand,
  type RolloutEvent,
  type RolloutSpec,
  type RolloutState,
  type StepResult,
  startRollout,
  stepRollout,
} from '@flotilla/shared/rollout';
import { formatted, repo } from '../shared/helpers.ts';

export const SEC = 1000;
export const MIN = 60 * SEC;
/** Monday 5 January 2026, 12:00 UTC. */
export const T0 = Date.UTC(2026, 0, 5, 12, 0);

/** Reads a `rollout:` block (the lines under it) through the real bundle.yaml reader. */
export function rolloutSpec(block: string, files: Record<string, string> = {}): RolloutSpec {
  const fleet = loadFleet(
    repo({
      'bundles/web/bundle.yaml': `targets:\n  - clusterSelector: {}\nrollout:\n${block}`,
      'bundles/web/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n',
      ...files,
    }),
  );
  const spec = fleet.bundles.find((b) => b.name === 'web')?.spec?.rollout;
  if (!spec) throw new Error(`rollout block does not read: ${formatted(fleet.errors).join('; ')}`);
  return spec;
}

/** A fake fleet around the pure machine: a clock, what each cluster reports, and what the hub gave it. */
export class Sim {
  state: RolloutState;
  now: number;
  readonly observations = new Map<string, ClusterObservation>();
  readonly events: RolloutEvent[] = [];
  /** The hash each cluster was given by release or revert (absent: nothing given yet). */
  readonly given = new Map<string, string | null>();
  last: StepResult | undefined;

  constructor(spec: RolloutSpec, clusters: RolloutCluster[], now = T0) {
    this.now = now;
    this.state = startRollout({ bundle: 'web', revision: 'c2', spec, clusters, now });
  }

  /** Sets the clock to T0 + ms and steps. */
  at(ms: number, command?: RolloutCommand): StepResult {
    this.now = T0 + ms;
    return this.step(command);
  }

  step(command?: RolloutCommand): StepResult {
    const r = stepRollout(this.state, this.observations, this.now, command);
    this.state = r.state;
    this.events.push(...r.events);
    for (const name of r.release) this.given.set(name, this.cluster(name).toHash);
    for (const name of r.revert) this.given.set(name, this.cluster(name).fromHash);
    this.last = r;
    return r;
  }

  cluster(name: string) {
    const c = this.state.clusters.find((x) => x.name === name);
    if (!c) throw new Error(`no cluster ${name}`);
    return c;
  }

  report(name: string, hash: string | null, ready = true, online = true): void {
    this.observations.set(name, { hash, ready, online, reportedAt: this.now });
  }

  /** The cluster reports what it was given, Ready. */
  ready(...names: string[]): void {
    for (const n of names) this.report(n, this.given.get(n) ?? this.cluster(n).fromHash, true);
  }

  offline(name: string): void {
    const o = this.observations.get(name);
    this.observations.set(name, {
      hash: o?.hash ?? null,
      ready: o?.ready ?? false,
      online: false,
      reportedAt: this.now,
    });
  }

  phases(): Record<string, string> {
    return Object.fromEntries(this.state.clusters.map((c) => [c.name, c.phase]));
  }

  /** Events as `type wave/cluster` lines, for readable assertions. */
  log(from = 0): string[] {
    return this.events.slice(from).map((e) => {
      const where = [e.waveName, e.cluster].filter((x) => x !== undefined).join('/');
      return where === '' ? e.type : `${e.type} ${where}`;
    });
  }
}

/** Clusters of one wave, going from c1 to c2 (hashes `old` and `new`). */
export function wave(index: number, ...names: string[]): RolloutCluster[] {
  return names.map((name) => ({ name, wave: index, fromHash: 'sha256:old', toHash: 'sha256:new' }));
}
