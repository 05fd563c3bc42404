/**
 * `flotilla diff`: what a change of the fleet repo does to each cluster before it merges.
 * The checkout is rendered here (the same core the hub syncs with) and compared, cluster
 * by cluster, with what the hub holds now, or with another commit (`--base`).
 */
import {
  type ClusterInput,
  type ContentHash,
  compileSelector,
  type FleetError,
  FleetInputError,
  type FleetPlan,
  parseLabelSelector,
  type RenderedBundleDocument,
} from '@flotilla/shared';
import {
  type BundleSide,
  bundleSide,
  type ClusterSides,
  diffFleet,
  type FleetDiff,
  formatDiffMarkdown,
  formatDiffText,
} from '@flotilla/shared/diff';
import { fleetErrorView } from '@flotilla/shared/hub';
import { parseOfflineCluster } from '../core/args.ts';
import type { Command, CommandContext } from '../core/command.ts';
import { CliError } from '../core/errors.ts';
import type { HubClient } from '../hub/hub-client.ts';
import { type RepoFile, readCheckout } from '../repo/checkout.ts';
import { readCommit } from '../repo/git-commit.ts';
import { renderCheckout } from '../repo/render.ts';
import { localEngine } from '../repo/render-engine.ts';
import { checkSelector } from './cluster.ts';

/** `diff`'s own exit codes, as diff(1) has them. */
export const DiffExit = { NoChanges: 0, Changes: 1, Trouble: 2 } as const;

const diffOutputs = ['text', 'markdown'] as const;

/** Bundles fetched from the hub at once. */
const fetchConcurrency = 8;

/** Rendered documents by hash, each parsed once however many clusters share it. */
type DocCache = Map<string, RenderedBundleDocument>;

function docOf(cache: DocCache, hash: string, canonical: string): RenderedBundleDocument {
  let doc = cache.get(hash);
  if (!doc) {
    doc = JSON.parse(canonical) as RenderedBundleDocument;
    cache.set(hash, doc);
  }
  return doc;
}

function sidesOf(plan: FleetPlan['clusters'][number], cache: DocCache): BundleSide[] {
  return plan.bundles.map((b) => bundleSide(b.ref, docOf(cache, b.ref.hash, b.rendered.canonical)));
}

/** Problems as `file:line: message`, one per line. */
function problemsError(errors: readonly FleetError[], where: string): CliError {
  const lines = errors.map((e) => `  ${fleetErrorView(e).text}`);
  return new CliError(
    DiffExit.Trouble,
    `${errors.length} problem${errors.length === 1 ? '' : 's'} in ${where}:\n${lines.join('\n')}`,
  );
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** Hub mode: registered clusters (by -l and --cluster), their desired state now, the checkout rendered for them. */
/** Renders a version of the fleet repo for clusters (`renderCheckout` with this run's engine). */
type Render = (files: readonly RepoFile[], clusters: readonly ClusterInput[]) => Promise<FleetPlan>;

async function againstHub(
  ctx: CommandContext,
  render: Render,
  hub: HubClient,
  files: readonly RepoFile[],
  names: readonly string[],
  selector: string | undefined,
): Promise<ClusterSides[]> {
  let registered = await hub.listClusters(selector);
  if (names.length > 0) {
    const known = new Set(registered.map((c) => c.id));
    const unknown = names.filter((n) => !known.has(n));
    if (unknown.length > 0) {
      throw new CliError(
        DiffExit.Trouble,
        `no registered cluster ${unknown.map((n) => `"${n}"`).join(', ')}${selector ? ` matching -l ${selector}` : ''}`,
        { hint: 'give --base <ref> to compare commits for clusters the hub does not know' },
      );
    }
    registered = registered.filter((c) => names.includes(c.id));
  }
  const plan = await render(
    files,
    registered.map((c) => ({ name: c.id, labels: c.labels })),
  );
  if (plan.errors.length > 0) throw problemsError(plan.errors, 'the checkout');
  ctx.progress(`comparing the checkout with the hub's desired state of ${registered.length} clusters`);
  const states = await mapLimit(registered, fetchConcurrency, (c) => hub.clusterDesiredState(c.id));
  // Bundles the checkout renders to the same hash need no fetch: they are these very documents.
  const docs: DocCache = new Map();
  for (const c of plan.clusters) for (const b of c.bundles) docOf(docs, b.ref.hash, b.rendered.canonical);
  const missing = [
    ...new Set(states.flatMap((s) => s?.bundles.map((b) => b.hash) ?? []).filter((h) => !docs.has(h))),
  ];
  await mapLimit(missing, fetchConcurrency, async (hash) => {
    docs.set(hash, await hub.renderedBundle(hash as ContentHash));
  });
  const byName = new Map(plan.clusters.map((c) => [c.cluster, c]));
  return registered.map((c, i) => {
    const state = states[i];
    const before = state
      ? state.bundles.map((ref) => bundleSide(ref, docs.get(ref.hash) as RenderedBundleDocument))
      : null;
    const after = byName.get(c.id);
    return { cluster: c.id, before, after: after ? sidesOf(after, docs) : [] };
  });
}

/** Base mode: clusters declared in git (either side) or given with labels, both sides rendered here. */
async function againstBase(
  ctx: CommandContext,
  render: Render,
  repo: string,
  files: readonly RepoFile[],
  base: string,
  given: readonly { name: string; labels: Readonly<Record<string, string>> }[],
  selector: string | undefined,
): Promise<ClusterSides[]> {
  const old = await readCommit(repo, ctx.io.cwd, base);
  const declared = async (f: readonly RepoFile[]) => (await render(f, [])).fleet.declaredClusters;
  const declaredNew = await declared(files);
  const declaredOld = await declared(old.files);
  let clusters: ClusterInput[];
  const explicit = given.filter((g) => Object.keys(g.labels).length > 0);
  const named = given.filter((g) => Object.keys(g.labels).length === 0).map((g) => g.name);
  const allDeclared = [...new Set([...declaredNew.keys(), ...declaredOld.keys()])].sort();
  if (given.length > 0) {
    const unknown = named.filter((n) => !declaredNew.has(n) && !declaredOld.has(n));
    if (unknown.length > 0) {
      throw new CliError(
        DiffExit.Trouble,
        `cluster ${unknown.map((n) => `"${n}"`).join(', ')} is not declared under clusters/ (declared: ${allDeclared.join(', ') || 'none'})`,
        { hint: 'give its labels: --cluster name=k=v,k2=v2' },
      );
    }
    clusters = [...named.map((name) => ({ name, labels: {} })), ...explicit];
  } else {
    clusters = allDeclared.map((name) => ({ name, labels: {} }));
  }
  if (selector) {
    const match = compileSelector(parseLabelSelector(selector));
    const labelsOf = (c: ClusterInput) => ({
      ...c.labels,
      ...(declaredNew.get(c.name) ?? declaredOld.get(c.name))?.labels,
    });
    clusters = clusters.filter((c) => match(labelsOf(c)));
  }
  if (clusters.length === 0) {
    throw new CliError(DiffExit.Trouble, 'no clusters to compare', {
      hint: 'declare clusters under clusters/, or give --cluster name=k=v,... (with --base the hub is not asked)',
    });
  }
  const next = await render(files, clusters);
  if (next.errors.length > 0) throw problemsError(next.errors, 'the checkout');
  const before = await render(old.files, clusters);
  if (before.errors.length > 0) {
    // A broken base must not stop a change that fixes it; its held bundles read as added.
    ctx.io.stderr(
      `warning: ${before.errors.length} problem(s) in --base ${base}; bundles held there show as added:\n${before.errors
        .map((e) => `  ${fleetErrorView(e).text}\n`)
        .join('')}`,
    );
  }
  ctx.progress(
    `comparing the checkout with ${base} (${old.commit.slice(0, 12)}) for ${clusters.length} clusters`,
  );
  const oldByName = new Map(before.clusters.map((c) => [c.cluster, c]));
  const docs: DocCache = new Map();
  return next.clusters.map((c) => {
    const prev = oldByName.get(c.cluster);
    return { cluster: c.cluster, before: prev ? sidesOf(prev, docs) : [], after: sidesOf(c, docs) };
  });
}

function formatDiff(d: FleetDiff, format: (typeof diffOutputs)[number]): string {
  return format === 'markdown' ? formatDiffMarkdown(d) : formatDiffText(d);
}

export const diffCommand: Command = {
  name: 'diff',
  summary: 'what a change of the fleet repo does to each cluster, before it merges',
  usage: 'diff --repo <checkout> [--cluster <name> ...] [-l <selector>] [--base <ref>] [-o text|markdown]',
  description: [
    'Renders the checkout (uncommitted changes included) for every registered cluster and compares it with the',
    'desired state the hub holds for it now: the clusters that change, grouped where they share one change,',
    "then each object's unified diff. Secret values are never shown, only which keys change. With --base, the",
    'checkout is compared with that commit instead, with no hub: clusters come from clusters/ in git, or',
    '--cluster name=k=v,... Exit 0 when nothing changes, 1 when something does, 2 on trouble.',
  ].join('\n'),
  positionals: [0, 0],
  outputFormats: diffOutputs,
  options: {
    repo: { type: 'string', valueName: 'checkout', description: 'a local checkout of the fleet repo' },
    cluster: {
      type: 'string',
      multiple: true,
      valueName: 'name[=k=v,...]',
      description: 'only this cluster; with --base, labels for a cluster not declared in git',
    },
    selector: {
      type: 'string',
      short: 'l',
      valueName: 'selector',
      description: 'only clusters whose labels match',
    },
    base: {
      type: 'string',
      valueName: 'ref',
      description: 'compare with this commit, branch or tag of the checkout (no hub)',
    },
  },
  examples: [
    'flotilla diff --repo .',
    "flotilla diff --repo . -l 'env=prod' -o markdown > comment.md",
    'flotilla diff --repo . --base origin/main --cluster edge-1=env=edge,site=berlin',
  ],
  async run(ctx, { values }) {
    // Helm and Kustomize bundles render with the same worker as the hub's, started on first use.
    const engine = localEngine(ctx.io.env, (line) => ctx.progress(line));
    const render: Render = (files, clusters) => renderCheckout(files, clusters, engine.ports);
    try {
      const repo = values.repo as string | undefined;
      if (repo === undefined) throw new CliError(DiffExit.Trouble, '--repo <checkout> is required');
      const format = (values.output as (typeof diffOutputs)[number] | undefined) ?? 'text';
      const given = ((values.cluster as string[] | undefined) ?? []).map(parseOfflineCluster);
      const twice = given.find((g, i) => given.findIndex((h) => h.name === g.name) !== i);
      if (twice) throw new CliError(DiffExit.Trouble, `--cluster ${twice.name} is given twice`);
      const selector = checkSelector(values.selector as string | undefined);
      const base = values.base as string | undefined;
      const files = readCheckout(repo, ctx.io.cwd);
      let sides: ClusterSides[];
      if (base !== undefined) {
        sides = await againstBase(ctx, render, repo, files, base, given, selector);
      } else {
        const withLabels = given.find((g) => Object.keys(g.labels).length > 0);
        if (withLabels) {
          throw new CliError(
            DiffExit.Trouble,
            `--cluster ${withLabels.name}=...: labels are the hub's for registered clusters`,
            { hint: 'give --base <ref> to diff clusters with labels of your own' },
          );
        }
        sides = await againstHub(
          ctx,
          render,
          ctx.hub(),
          files,
          given.map((g) => g.name),
          selector,
        );
      }
      const d = diffFleet(sides);
      ctx.io.stdout(formatDiff(d, format));
      return d.groups.length > 0 ? DiffExit.Changes : DiffExit.NoChanges;
    } catch (err) {
      // diff(1)'s convention: 1 means "differs", so every failure is 2, whatever its usual code.
      if (err instanceof CliError) {
        throw new CliError(DiffExit.Trouble, err.message, {
          cause: err,
          ...(err.hint ? { hint: err.hint } : {}),
        });
      }
      if (err instanceof FleetInputError) throw new CliError(DiffExit.Trouble, err.message, { cause: err });
      throw new CliError(DiffExit.Trouble, (err as Error)?.message ?? String(err), {
        cause: err,
        hint: 'this looks like a bug in flotilla; FLOTILLA_DEBUG=1 shows the stack',
      });
    } finally {
      await engine.close();
    }
  },
};
