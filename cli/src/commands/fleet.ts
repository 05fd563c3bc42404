import type { SealedFile } from '@flotilla/shared';
import {
  type FleetPreview,
  InvalidRequestError,
  type PreviewClusterInput,
  previewFleet,
} from '@flotilla/shared/hub';
import { stringify } from 'yaml';
import { formatLabels, parseClusterName, parseLabels, parseOfflineCluster } from '../core/args.ts';
import type { Command, CommandContext } from '../core/command.ts';
import { CliError } from '../core/errors.ts';
import { ExitCode } from '../core/exit-codes.ts';
import { formatTable } from '../core/output.ts';
import { readCheckout } from '../repo/checkout.ts';
import { localEngine } from '../repo/render-engine.ts';
import { checkSelector } from './cluster.ts';
import { entryText, reportFleetErrors, reportFleetWarnings } from './fleet-errors.ts';

/**
 * A preview computed here from a checkout with the pure core (the same code the hub
 * syncs with), or by the hub from the tip of the fleet repo.
 */
export async function preview(
  ctx: CommandContext,
  opts: {
    repo: string | undefined;
    clusters: readonly PreviewClusterInput[] | undefined;
    selector?: string | undefined;
    bundle: string | undefined;
    includeObjects: boolean;
  },
): Promise<FleetPreview> {
  if (opts.repo !== undefined) {
    const files = readCheckout(opts.repo, ctx.io.cwd);
    const clusters =
      opts.clusters ??
      (await ctx.hub().listClusters(opts.selector)).map((c) => ({
        name: c.id,
        labels: c.labels,
        registered: true,
      }));
    const engine = localEngine(ctx.io.env, (line) => ctx.progress(line));
    try {
      return await previewFleet(files, clusters, {
        source: 'upload',
        includeObjects: opts.includeObjects,
        engine: engine.ports,
        ...(opts.bundle ? { bundle: opts.bundle } : {}),
      });
    } catch (err) {
      if (err instanceof InvalidRequestError) {
        throw new CliError(
          err.field === 'bundle' ? ExitCode.NotFound : ExitCode.Usage,
          err.message.replace(/^[^:]+: /, ''),
        );
      }
      throw err;
    } finally {
      await engine.close();
    }
  }
  const names = opts.selector ? (await ctx.hub().listClusters(opts.selector)).map((c) => c.id) : undefined;
  if (names && names.length === 0) {
    return { source: 'repo', commit: null, clusters: [], bundles: [], renders: {}, errors: [], warnings: [] };
  }
  return ctx.hub().preview<FleetPreview>({
    commit: 'HEAD',
    includeObjects: opts.includeObjects,
    ...(opts.bundle ? { bundle: opts.bundle } : {}),
    ...(opts.clusters
      ? { clusters: opts.clusters.map((c) => (c.registered ? c.name : { name: c.name, labels: c.labels })) }
      : names
        ? { clusters: names }
        : {}),
  });
}

export function targetsTable(p: FleetPreview): string {
  const rows: (string | undefined)[][] = [];
  for (const c of p.clusters) {
    for (const b of c.bundles) {
      rows.push([
        b.name,
        c.name,
        'targeted',
        entryText(b.target, 'targets'),
        entryText(b.customization, 'customizations') ?? '-',
        b.hash.slice(7, 19),
      ]);
    }
    for (const h of c.held) rows.push([h.bundle, c.name, `held (${h.reason})`, '-', '-', '-']);
    for (const x of c.excluded)
      rows.push([x.bundle, c.name, 'excluded', entryText(x.excludedBy, 'exclude'), '-', '-']);
  }
  rows.sort((a, b) => ((a[0] ?? '') + (a[1] ?? '') < (b[0] ?? '') + (b[1] ?? '') ? -1 : 1));
  const untargeted = p.bundles
    .filter((b) => b.clusters.length === 0 && b.held.length === 0)
    .map((b) => b.name);
  const table = formatTable(['bundle', 'cluster', 'status', 'via', 'customization', 'hash'], rows);
  const header = p.source === 'repo' ? `fleet repo at ${p.commit?.slice(0, 12) ?? 'HEAD'} (hub)\n` : '';
  return `${header}${rows.length ? table : 'no bundle targets these clusters\n'}${
    untargeted.length ? `bundles that target none of these clusters: ${untargeted.join(', ')}\n` : ''
  }`;
}

/** The options of commands that preview a checkout or the hub's tip for some clusters (targets, policy check). */
export const previewOptions: Command['options'] = {
  repo: { type: 'string', valueName: 'checkout', description: 'a local checkout of the fleet repo' },
  bundle: { type: 'string', valueName: 'name', description: 'only this bundle' },
  selector: {
    type: 'string',
    short: 'l',
    valueName: 'selector',
    description: 'only registered clusters matching this selector',
  },
  cluster: {
    type: 'string',
    multiple: true,
    valueName: 'name=k=v,...',
    description: 'a cluster with these labels, instead of the registered ones',
  },
};

export const targetsCommand: Command = {
  name: 'targets',
  summary: 'which clusters get which bundle, through which target and customization',
  usage: 'targets [--repo <checkout>] [--bundle <name>] [-l <selector> | --cluster name=k=v,... ...]',
  description: [
    'With --repo, computed here from a local checkout (uncommitted changes included) by the same core the',
    "hub syncs with, so you see a change's reach before you push it; without, the hub previews the tip of",
    'the fleet repo. Clusters and their labels come from the hub, or from --cluster for clusters that are',
    'not registered (no hub needed with --repo). Exit 10 when the repo has errors (listed on stderr).',
  ].join('\n'),
  positionals: [0, 0],
  options: previewOptions,
  examples: [
    'flotilla targets --repo . --bundle web',
    "flotilla targets --repo ~/fleet -l 'env=prod'",
    'flotilla targets --repo . --cluster edge-1=env=edge,site=berlin --cluster prod-eu-1=env=prod,region=eu',
  ],
  async run(ctx, { values }) {
    const offline = (values.cluster as string[] | undefined)?.map(parseOfflineCluster);
    if (offline && values.selector) throw new CliError(ExitCode.Usage, 'give -l or --cluster, not both');
    const p = await preview(ctx, {
      repo: values.repo as string | undefined,
      clusters: offline?.map((c) => ({ ...c, registered: false })),
      selector: checkSelector(values.selector as string | undefined),
      bundle: values.bundle as string | undefined,
      includeObjects: false,
    });
    ctx.print(p, () => targetsTable(p));
    const bundle = values.bundle as string | undefined;
    reportFleetWarnings(ctx, p.warnings ?? []);
    return reportFleetErrors(
      ctx,
      bundle ? p.errors.filter((e) => e.bundle === undefined || e.bundle === bundle) : p.errors,
    );
  },
};

/** One cluster's rendered bundles, as `render` prints them. */
export interface RenderedCluster {
  readonly cluster: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly registered: boolean;
  readonly bundles: readonly {
    readonly name: string;
    readonly hash: string;
    readonly namespace: string;
    readonly target: string | undefined;
    readonly customization: string | undefined;
    readonly objects: readonly unknown[];
    /** SOPS-encrypted files, as committed: only the cluster decrypts them. */
    readonly sealed: readonly SealedFile[];
  }[];
  readonly held: readonly { readonly bundle: string; readonly reason: string }[];
}

/** The manifests as one YAML stream, bundle by bundle in apply order, each introduced by a comment. */
export function manifestsYaml(r: RenderedCluster): string {
  const out: string[] = [];
  for (const b of r.bundles) {
    const via = [
      b.target ? `target ${b.target}` : '',
      b.customization ? `customization ${b.customization}` : '',
    ]
      .filter(Boolean)
      .join(', ');
    for (const [i, object] of b.objects.entries()) {
      const comment = i === 0 ? `# bundle ${b.name} (${b.hash})${via ? `: ${via}` : ''}\n` : '';
      out.push(`---\n${comment}${stringify(object, { lineWidth: 0, aliasDuplicateObjects: false })}`);
    }
    for (const [i, file] of b.sealed.entries()) {
      const first =
        i === 0 && b.objects.length === 0 ? `# bundle ${b.name} (${b.hash})${via ? `: ${via}` : ''}\n` : '';
      const content = file.content.endsWith('\n') ? file.content : `${file.content}\n`;
      out.push(
        `---\n${first}# ${file.file}: SOPS-encrypted, as committed (decrypted only in the cluster)\n${content.replace(/^---[ \t]*\n/, '')}`,
      );
    }
  }
  return out.join('');
}

export const renderCommand: Command = {
  name: 'render',
  summary: 'the exact manifests a cluster gets, as YAML',
  usage: 'render <cluster> [--repo <checkout>] [--bundle <name>] [--label k=v ...]',
  description: [
    'Prints every object the cluster would get, bundle by bundle in apply order, as a YAML stream (-o json',
    'or -o yaml give the structured result). With --repo, rendered here from a local checkout; without, by',
    "the hub from the tip of the fleet repo. The cluster's labels come from the hub, or from --label for a",
    'cluster that is not registered. Exit 10 when bundles for it cannot render (errors on stderr).',
  ].join('\n'),
  positionals: [1, 1],
  options: {
    repo: { type: 'string', valueName: 'checkout', description: 'a local checkout of the fleet repo' },
    bundle: { type: 'string', valueName: 'name', description: 'only this bundle' },
    label: {
      type: 'string',
      multiple: true,
      valueName: 'k=v',
      description: 'render for these labels (the hub is not asked)',
    },
  },
  examples: [
    'flotilla render prod-eu-1 --repo .',
    'flotilla render new-site --repo . --label env=edge --label site=42',
    'flotilla render prod-eu-1 --repo . | kubectl diff -f -',
  ],
  async run(ctx, { positionals, values }) {
    const name = parseClusterName(positionals[0]);
    const given = values.label ? parseLabels(values.label as string[]) : undefined;
    let cluster: PreviewClusterInput;
    if (given) cluster = { name, labels: given, registered: false };
    else {
      const atHub = await ctx.hub().getCluster(name);
      if (!atHub) {
        throw new CliError(ExitCode.NotFound, `cluster "${name}" is not registered at the hub`, {
          hint: 'give its labels with --label k=v to render for it anyway',
        });
      }
      cluster = { name, labels: atHub.labels, registered: true };
    }
    const p = await preview(ctx, {
      repo: values.repo as string | undefined,
      clusters: [cluster],
      bundle: values.bundle as string | undefined,
      includeObjects: true,
    });
    const c = p.clusters.find((x) => x.name === name);
    const result: RenderedCluster = {
      cluster: name,
      labels: c?.labels ?? cluster.labels,
      registered: cluster.registered,
      bundles: (c?.bundles ?? []).map((b) => ({
        name: b.name,
        hash: b.hash,
        namespace: b.namespace,
        target: entryText(b.target, 'targets'),
        customization: entryText(b.customization, 'customizations'),
        objects: p.renders[b.hash]?.objects ?? [],
        sealed: p.renders[b.hash]?.sealed ?? [],
      })),
      held: (c?.held ?? []).map((h) => ({ bundle: h.bundle, reason: h.reason })),
    };
    ctx.print(result, () => {
      const yaml = manifestsYaml(result);
      if (!yaml)
        ctx.progress(`no bundle targets "${name}" (labels ${formatLabels(result.labels) || 'none'})`);
      return yaml;
    });
    const clusterErrors = (c?.held ?? []).flatMap((h) => h.errors);
    reportFleetWarnings(ctx, p.warnings ?? []);
    return reportFleetErrors(ctx, clusterErrors.length ? clusterErrors : []);
  },
};
