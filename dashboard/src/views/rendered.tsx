import { useEffect, useState } from 'preact/hooks';
import { stringify } from 'yaml';
import type { DashboardApi, RenderedBundleAnswer } from '../api.ts';
import { Empty, Section } from '../components.tsx';
import { problemOf } from '../live.ts';

/** `group/Kind namespace/name` of a rendered object. */
export function objectName(o: Record<string, unknown>): string {
  const apiVersion = String(o.apiVersion ?? '');
  const group = apiVersion.includes('/') ? apiVersion.split('/')[0] : '';
  const meta = (o.metadata ?? {}) as { name?: string; namespace?: string };
  const kind = `${group ? `${group}/` : ''}${String(o.kind ?? '?')}`;
  return `${kind} ${meta.namespace ? `${meta.namespace}/` : ''}${meta.name ?? '?'}`;
}

/**
 * An object as the page may show it: a Secret's values are replaced by a note of their
 * length, so the dashboard never puts a secret on a screen (or in a screenshot).
 */
export function shownObject(o: Record<string, unknown>): Record<string, unknown> {
  if (o.kind !== 'Secret' || String(o.apiVersion ?? '') !== 'v1') return o;
  const hide = (m: unknown) =>
    m && typeof m === 'object'
      ? Object.fromEntries(
          Object.keys(m).map((k) => [
            k,
            `(hidden: ${String((m as Record<string, unknown>)[k]).length} characters)`,
          ]),
        )
      : m;
  return {
    ...o,
    ...(o.data !== undefined ? { data: hide(o.data) } : {}),
    ...(o.stringData !== undefined ? { stringData: hide(o.stringData) } : {}),
  };
}

/** The objects of one bundle as the hub rendered them for one cluster (its current desired state). */
export function RenderedObjects(props: { api: DashboardApi; bundle: string; cluster: string }) {
  const { api, bundle, cluster } = props;
  const [rendered, setRendered] = useState<{ hash: string; body: RenderedBundleAnswer } | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let current = true;
    setRendered(null);
    setError(null);
    (async () => {
      const refs = await api.clusterBundles(cluster);
      const ref = refs.find((r) => r.name === bundle);
      if (!ref) throw new Error(`${cluster}'s desired state has no bundle ${bundle}`);
      const body = await api.renderedBundle(ref.hash);
      if (current) setRendered({ hash: ref.hash, body });
    })().catch((err: unknown) => current && setError(problemOf(err).message));
    return () => {
      current = false;
    };
  }, [api, bundle, cluster]);
  return (
    <Section title={`Rendered for ${cluster}`}>
      {error ? (
        <p class="field-error">{error}</p>
      ) : !rendered ? (
        <Empty>Loading…</Empty>
      ) : (
        <>
          <p>
            <code>{rendered.hash.slice(0, 19)}</code>: {rendered.body.objects?.length ?? 0} object(s)
            {rendered.body.sealed?.length ? `, ${rendered.body.sealed.length} SOPS file(s)` : ''}
          </p>
          <ul class="objects">
            {(rendered.body.objects ?? []).map((o) => (
              <li key={objectName(o)}>
                <details>
                  <summary>
                    <code>{objectName(o)}</code>
                  </summary>
                  <pre>{stringify(shownObject(o))}</pre>
                </details>
              </li>
            ))}
            {(rendered.body.sealed ?? []).map((s, i) => (
              <li key={`sealed-${s.file ?? i}`}>
                <code>{s.file ?? `SOPS file ${i + 1}`}</code> (SOPS, decrypted only in the spoke)
              </li>
            ))}
          </ul>
        </>
      )}
    </Section>
  );
}
