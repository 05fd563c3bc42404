/**
 * A fleet diff as people read it: plain text for a terminal, or Markdown sized for a
 * pull-request comment (GitHub refuses comments over 65,536 characters).
 */
import type { DiffGroup, FleetDiff } from './fleet-diff.ts';

/** `a, b, c, ... and 27 more` past `max` names. */
export function clusterList(names: readonly string[], max = 10): string {
  if (names.length <= max) return names.join(', ');
  return `${names.slice(0, max).join(', ')} and ${names.length - max} more`;
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

function groupHeader(g: DiffGroup): string {
  return `${count(g.clusters.length, 'cluster')}: ${g.summary}`;
}

function contextNote(g: DiffGroup): string {
  return `(diffs as on ${g.shownFor}; on the others, unchanged lines around the changes differ)`;
}

/** The diff for a terminal: per group a header, its clusters, then the object diffs. */
export function formatDiffText(d: FleetDiff, opts: { readonly clusters?: number } = {}): string {
  if (d.groups.length === 0) {
    return `no changes on ${count(d.unchanged.length, 'cluster')}\n`;
  }
  const out: string[] = [
    `${count(d.changed.length, 'cluster')} changed, ${d.unchanged.length} unchanged, ${count(d.groups.length, 'distinct change set')}\n`,
  ];
  for (const g of d.groups) {
    out.push(`\n=== ${groupHeader(g)}\n`, `clusters: ${clusterList(g.clusters, opts.clusters)}\n`);
    if (g.contextVaries) out.push(`${contextNote(g)}\n`);
    for (const c of g.changes) out.push(`\n# ${c.summary}\n`, c.diff);
  }
  return out.join('');
}

/** The comment limit of GitHub is 65,536 characters; this leaves room for a header around it. */
export const markdownLimit = 60_000;

function cell(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function html(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A code fence longer than any run of backticks inside, so a diff cannot close it early. */
function fence(body: string): string {
  const longest = Math.max(2, ...[...body.matchAll(/`+/g)].map((m) => m[0].length));
  const ticks = '`'.repeat(longest + 1);
  return `${ticks}diff\n${body}${body.endsWith('\n') ? '' : '\n'}${ticks}\n`;
}

/**
 * The diff as a pull-request comment: a summary table, then one collapsed `<details>` per
 * group with its diffs, never longer than `limit` characters. The table takes at most half
 * of it (the rest of the groups as one row); diffs that do not fit are left out, and a
 * note says how many.
 */
export function formatDiffMarkdown(
  d: FleetDiff,
  opts: { readonly limit?: number; readonly title?: string } = {},
): string {
  const limit = opts.limit ?? markdownLimit;
  const title = opts.title ?? 'Flotilla diff';
  if (d.groups.length === 0) {
    return `### ${title}\n\nNo changes on ${count(d.unchanged.length, 'cluster')}.\n`;
  }
  const head: string[] = [
    `### ${title}\n\n`,
    `${count(d.changed.length, 'cluster')} changed, ${d.unchanged.length} unchanged.\n\n`,
    '| Clusters | Change |\n| --- | --- |\n',
  ];
  let text = head.join('');
  for (const [i, g] of d.groups.entries()) {
    const row = `| ${cell(`${g.clusters.length}: ${clusterList(g.clusters)}`)} | ${cell(g.summary)} |\n`;
    if (text.length + row.length > limit / 2) {
      const rest = d.groups.slice(i);
      const clusters = rest.reduce((n, r) => n + r.clusters.length, 0);
      text += `| ${count(clusters, 'more cluster')} | ${count(rest.length, 'more change set')} |\n`;
      break;
    }
    text += row;
  }
  const note = (left: number) =>
    `\n_${count(left, 'object diff')} left out to keep this comment under ${Math.round(limit / 1000)} KB; run \`flotilla diff\` to see them all._\n`;
  const reserve = note(999_999).length;
  let left = 0;
  for (const g of d.groups) {
    const open = `\n<details><summary>${html(groupHeader(g))}</summary>\n\nClusters: ${html(clusterList(g.clusters, 50))}\n\n${g.contextVaries ? `${html(contextNote(g))}\n\n` : ''}`;
    const close = '</details>\n';
    if (left > 0 || text.length + open.length + close.length + reserve > limit) {
      left += g.changes.length;
      continue;
    }
    let body = '';
    for (const [i, c] of g.changes.entries()) {
      const part = `**${html(c.summary)}**\n\n${fence(c.diff)}\n`;
      if (text.length + open.length + body.length + part.length + close.length + reserve > limit) {
        left += g.changes.length - i;
        break;
      }
      body += part;
    }
    text += open + body + close;
  }
  if (left > 0) text += note(left);
  return text;
}
