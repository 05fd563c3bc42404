import type { ClusterHistory } from '@flotilla/shared/hub';
import type { RenderedBundleDocument } from '@flotilla/shared/object-diff';
import { useEffect, useState } from 'preact/hooks';
import { stringify } from 'yaml';
import type { DashboardApi } from '../api.ts';
import { Empty, Section } from '../components.tsx';
import { diffBundles } from '../diff.ts';
import { problemOf } from '../live.ts';
import { DiffView } from './diff-view.tsx';

/** `group/Kind namespace/name` of a rendered object. */
export function objectName(o: { apiVersion?: unknown; kind?: unknown; metadata?: unknown }): string {
  const apiVersion = String(o.apiVersion ?? '');
  const group = apiVersion.includes('/') ? apiVersion.split('/')[0] : '';
  const meta = (o.metadata ?? {}) as { name?: string; namespace?: string };
  const kind = `${group ? `${group}/` : ''}${String(o.kind ?? '?')}`;
  return `${kind} ${meta.namespace ? `${meta.namespace}/` : ''}${meta.name ?? '?'}`;
}

/**
 * An object as the page may show it: a Secret's values are replaced by `(hidden)`, so the
 * dashboard never puts a secret (or its length) on a screen or in a screenshot.
 */
export function shownObject(o: Record<string, unknown>): Record<string, unknown> {
  if (o.kind !== 'Secret' || String(o.apiVersion ?? '') !== 'v1') return o;
  const hide = (m: unknown) =>
    m && typeof m === 'object' ? Object.fromEntries(Object.keys(m).map((k) => [k, '(hidden)'])) : m;
  return {
    ...o,
    ...(o.data !== undefined ? { data: hide(o.data) } : {}),
    ...(o.stringData !== undefined ? { stringData: hide(o.stringData) } : {}),
  };
}

/** The hash of `bundle` in a cluster's current desired state, or null when it does not get it. */
async function currentHash(api: DashboardApi, cluster: string, bundle: string): Promise<string | null> {
  const refs = await api.clusterBundles(cluster);
  return refs.find((r) => r.name === bundle)?.hash ?? null;
}

type Other =
  | { readonly kind: 'cluster'; readonly cluster: string }
  | { readonly kind: 'generation'; readonly generation: number; readonly hash: string | null };

/**
 * The objects of one bundle as the hub rendered them for one cluster (its current desired
 * state), and what differs from another cluster's render or from an earlier generation of
 * this cluster.
 */
export function RenderedObjects(props: { api: DashboardApi; bundle: string; cluster: string }) {
  const { api, bundle, cluster } = props;
  const [rendered, setRendered] = useState<{ hash: string; body: RenderedBundleDocument } | null>(null);
  const [history, setHistory] = useState<ClusterHistory | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [other, setOther] = useState<Other | null>(null);
  const [otherName, setOtherName] = useState('');
  useEffect(() => {
    let current = true;
    setRendered(null);
    setError(null);
    setOther(null);
    (async () => {
      const hash = await currentHash(api, cluster, bundle);
      if (!hash) throw new Error(`${cluster}'s desired state has no bundle ${bundle}`);
      const body = await api.renderedBundle(hash);
      if (current) setRendered({ hash, body });
      const h = await api.clusterHistory(cluster);
      if (current) setHistory(h);
    })().catch((err: unknown) => current && setError(problemOf(err).message));
    return () => {
      current = false;
    };
  }, [api, bundle, cluster]);
  // Earlier generations of this cluster in which the bundle was different (or absent).
  const generations = (history?.generations ?? []).flatMap((g) => {
    if (g.current) return [];
    const hash = g.bundles.find((b) => b.name === bundle)?.hash ?? null;
    return hash === rendered?.hash ? [] : [{ generation: g.generation, hash, commit: g.commit }];
  });
  return (
    <Section title={`Rendered for ${cluster}`}>
      {error ? (
        <p class="field-error">{error}</p>
      ) : !rendered ? (
        <Empty>Loading…</Empty>
      ) : (
        <>
          <p>
            <code>{rendered.hash.slice(0, 19)}</code>: {rendered.body.objects.length} object(s)
            {rendered.body.sealed?.length ? `, ${rendered.body.sealed.length} SOPS file(s)` : ''}
          </p>
          <ul class="objects">
            {rendered.body.objects.map((o) => (
              <li key={objectName(o)}>
                <details>
                  <summary>
                    <code>{objectName(o)}</code>
                  </summary>
                  <pre>{stringify(shownObject(o as Record<string, unknown>))}</pre>
                </details>
              </li>
            ))}
            {(rendered.body.sealed ?? []).map((s, i) => (
              <li key={`sealed-${s.file ?? i}`}>
                <code>{s.file ?? `SOPS file ${i + 1}`}</code> (SOPS: decrypted only in the spoke)
              </li>
            ))}
          </ul>
          <form
            class="filters"
            aria-label="compare"
            onSubmit={(e) => {
              e.preventDefault();
              if (otherName.trim()) setOther({ kind: 'cluster', cluster: otherName.trim() });
            }}
          >
            <label>
              Compare with cluster
              <input
                type="text"
                name="compare-cluster"
                placeholder="cluster name"
                value={otherName}
                onInput={(e) => setOtherName(e.currentTarget.value)}
              />
            </label>
            <button type="submit">Compare</button>
            <label>
              or an earlier generation
              <select
                name="compare-generation"
                value={other?.kind === 'generation' ? String(other.generation) : ''}
                onChange={(e) => {
                  const g = generations.find((x) => String(x.generation) === e.currentTarget.value);
                  setOther(g ? { kind: 'generation', generation: g.generation, hash: g.hash } : null);
                }}
              >
                <option value="">{generations.length ? 'choose one' : 'none differs'}</option>
                {generations.map((g) => (
                  <option key={g.generation} value={String(g.generation)}>
                    generation {g.generation} ({g.hash ? g.commit.slice(0, 8) : 'without it'})
                  </option>
                ))}
              </select>
            </label>
          </form>
          {other && (
            <Comparison api={api} bundle={bundle} cluster={cluster} mine={rendered.body} other={other} />
          )}
        </>
      )}
    </Section>
  );
}

function Comparison(props: {
  api: DashboardApi;
  bundle: string;
  cluster: string;
  mine: RenderedBundleDocument;
  other: Other;
}) {
  const { api, bundle, other } = props;
  const [theirs, setTheirs] = useState<{ label: string; body: RenderedBundleDocument | null } | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let current = true;
    setTheirs(null);
    setError(null);
    (async () => {
      const label =
        other.kind === 'cluster' ? other.cluster : `${props.cluster} at generation ${other.generation}`;
      const hash = other.kind === 'cluster' ? await currentHash(api, other.cluster, bundle) : other.hash;
      const body = hash ? await api.renderedBundle(hash) : null;
      if (current) setTheirs({ label, body });
    })().catch((err: unknown) => current && setError(problemOf(err).message));
    return () => {
      current = false;
    };
  }, [api, bundle, other, props.cluster]);
  if (error) return <p class="field-error">{error}</p>;
  if (!theirs) return <Empty>Comparing…</Empty>;
  return (
    <DiffView
      diff={diffBundles(
        { label: theirs.label, bundle: theirs.body },
        { label: `${props.cluster} now`, bundle: props.mine },
      )}
    />
  );
}
