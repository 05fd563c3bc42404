import { Fragment } from 'preact';
import type { BundleDiff, Change, DiffHunk, ObjectDiff } from '../diff.ts';

const sign = { context: ' ', added: '+', removed: '-' } as const;

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** `2 changed, 1 added, 0 removed, 5 unchanged`: every count as a word, none left to colour. */
export function countsText(counts: Readonly<Record<Change, number>>): string {
  return `${counts.changed} changed, ${counts.added} added, ${counts.removed} removed, ${counts.unchanged} unchanged`;
}

/** `web/storefront` for a namespaced object, `web` for a cluster-scoped one. */
function objectName(o: ObjectDiff): string {
  return o.namespace ? `${o.namespace}/${o.name}` : o.name;
}

/**
 * The hunks of one object as a unified diff: each line keeps its `+`, `-` or space, so the
 * change reads without colour; added and removed lines are `<ins>` and `<del>` for screen
 * readers, and their classes colour them. Each line is a block (for a full-width
 * background) without its own newline, so that copying the text gives each line once.
 */
export function Hunks(props: { hunks: readonly DiffHunk[] }) {
  return (
    <pre class="diff-hunks">
      {props.hunks.map((h, i) => (
        <Fragment key={`${i}${h.header}`}>
          <span class="diff-hunk-header">{h.header}</span>
          {h.lines.map((l, j) => {
            const text = `${sign[l.type]}${l.text}`;
            if (l.type === 'added')
              return (
                <ins key={j} class="diff-line diff-line-added">
                  {text}
                </ins>
              );
            if (l.type === 'removed')
              return (
                <del key={j} class="diff-line diff-line-removed">
                  {text}
                </del>
              );
            return (
              <span key={j} class="diff-line diff-line-context">
                {text}
              </span>
            );
          })}
        </Fragment>
      ))}
    </pre>
  );
}

function ChangeWord(props: { change: Change }) {
  return <span class={`diff-change diff-change-${props.change}`}>{props.change}</span>;
}

function DiffObject(props: { object: ObjectDiff; before: string; after: string }) {
  const o = props.object;
  const lines = o.hunks.reduce((n, h) => n + h.lines.length, 0);
  const where =
    o.change === 'added'
      ? `only in ${props.after}`
      : o.change === 'removed'
        ? `only in ${props.before}`
        : `lines marked - are ${props.before}, lines marked + are ${props.after}`;
  return (
    <li class={`diff-object diff-object-${o.change}`}>
      <p class="diff-object-head">
        <ChangeWord change={o.change} /> <code>{o.group ? `${o.kind}.${o.group}` : o.kind}</code>{' '}
        <code>{objectName(o)}</code>
        {o.summary && o.summary !== o.change && <span class="diff-summary">: {o.summary}</span>}
      </p>
      {o.sealed && (
        <p class="diff-note">
          SOPS-encrypted: compared by the SHA-256 digest of its file; its values are never shown here.
        </p>
      )}
      {o.secretKeys.length > 0 && (
        <>
          <p class="diff-note">Secret values are never shown here, only whether each key changed:</p>
          <ul class="diff-keys" aria-label={`keys of Secret ${objectName(o)}`}>
            {o.secretKeys.map((k) => (
              <li key={`${k.field}.${k.key}`} class={`diff-key diff-key-${k.change}`}>
                <code>
                  {k.field}.{k.key}
                </code>{' '}
                ({k.change})
              </li>
            ))}
          </ul>
        </>
      )}
      {o.hunks.length > 0 && (
        <details class="diff-details" open={o.change === 'changed'}>
          <summary>
            {o.change === 'changed' ? 'YAML diff' : 'YAML'} ({plural(lines, 'line')}, {where})
          </summary>
          <Hunks hunks={o.hunks} />
        </details>
      )}
    </li>
  );
}

/**
 * Two rendered bundles compared object by object ({@link BundleDiff} from `diffBundles`):
 * the counts, then each added, removed or changed object with its change as a word and its
 * YAML diff, then the unchanged objects folded away. Colour only repeats the words and the
 * `+`/`-` marks.
 */
export function DiffView(props: { diff: BundleDiff }) {
  const d = props.diff;
  const differing = d.objects.filter((o) => o.change !== 'unchanged');
  const unchanged = d.objects.filter((o) => o.change === 'unchanged');
  const title = `${d.before.label} compared with ${d.after.label}`;
  return (
    <section class="bundle-diff" aria-label={title}>
      <p class="diff-legend">
        From <strong>{d.before.label}</strong> (lines marked -) to <strong>{d.after.label}</strong> (lines
        marked +): {countsText(d.counts)}
        {d.settings.change !== 'unchanged' && `; bundle settings ${d.settings.change}`}.
      </p>
      {differing.length === 0 && d.settings.change === 'unchanged' && (
        <p class="empty">No differences: both render the same objects.</p>
      )}
      {d.settings.change !== 'unchanged' && (
        <div class={`diff-object diff-object-${d.settings.change}`}>
          <p class="diff-object-head">
            <ChangeWord change={d.settings.change} /> bundle settings (health checks, ignored differences)
          </p>
          <Hunks hunks={d.settings.hunks} />
        </div>
      )}
      {differing.length > 0 && (
        <ul class="diff-objects" aria-label="objects that differ">
          {differing.map((o) => (
            <DiffObject key={o.id} object={o} before={d.before.label} after={d.after.label} />
          ))}
        </ul>
      )}
      {unchanged.length > 0 && (
        <details class="diff-unchanged">
          <summary>{plural(unchanged.length, 'unchanged object')}</summary>
          <ul aria-label="unchanged objects">
            {unchanged.map((o) => (
              <li key={o.id}>
                <ChangeWord change="unchanged" /> <code>{o.group ? `${o.kind}.${o.group}` : o.kind}</code>{' '}
                <code>{objectName(o)}</code>
              </li>
            ))}
          </ul>
        </details>
      )}
    </section>
  );
}
