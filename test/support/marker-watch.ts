/**
 * Watches ConfigMaps carrying a marker label on several control planes and keeps, per
 * cluster (the ConfigMap's `data.cluster`), every value of one data key it has seen and
 * when: what each spoke held, in order. The rollout drill, `bench:rollout` and `bench:e2e`
 * read it to prove which spoke got which revision when, straight from the spokes' API servers.
 */
import { KubeConfig, Watch } from '@kubernetes/client-node';

export interface MarkerSighting {
  /** The key's value, or null once the ConfigMap was deleted. */
  readonly value: string | null;
  readonly at: number;
}

export class MarkerWatch {
  readonly #history = new Map<string, MarkerSighting[]>();
  readonly #aborts: AbortController[] = [];
  readonly #label: string;
  readonly #key: string;
  #active = true;

  constructor(kubeconfigs: readonly string[], opts: { label: string; key: string }) {
    this.#label = opts.label;
    this.#key = opts.key;
    for (const path of new Set(kubeconfigs)) void this.#watch(path);
  }

  async #watch(path: string): Promise<void> {
    const kc = new KubeConfig();
    kc.loadFromFile(path);
    const watch = new Watch(kc);
    while (this.#active) {
      const ended = new Promise<void>((resolve) => {
        watch
          .watch(
            '/api/v1/configmaps',
            { labelSelector: `${this.#label}=true` },
            (phase: string, obj: { data?: Record<string, string> }) => {
              const cluster = obj.data?.cluster;
              if (!cluster) return;
              const value = phase === 'DELETED' ? null : (obj.data?.[this.#key] ?? null);
              const seen = this.#history.get(cluster) ?? [];
              if (seen.at(-1)?.value !== value) seen.push({ value, at: Date.now() });
              this.#history.set(cluster, seen);
            },
            () => resolve(),
          )
          .then((abort) => this.#aborts.push(abort))
          .catch(() => resolve());
      });
      await ended;
      if (this.#active) await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** What `cluster` holds now, as far as the watch has seen. */
  current(cluster: string): string | null | undefined {
    return this.#history.get(cluster)?.at(-1)?.value;
  }

  /** Every value `cluster` held, oldest first. */
  history(cluster: string): readonly MarkerSighting[] {
    return this.#history.get(cluster) ?? [];
  }

  /** When `cluster` first held `value` at or after `since`, if it has. */
  firstAt(cluster: string, value: string, since = 0): number | undefined {
    return this.history(cluster).find((s) => s.value === value && s.at >= since)?.at;
  }

  /** Whether `cluster` ever held `value`. */
  everHeld(cluster: string, value: string): boolean {
    return this.history(cluster).some((s) => s.value === value);
  }

  stop(): void {
    this.#active = false;
    for (const a of this.#aborts) a.abort();
  }
}
