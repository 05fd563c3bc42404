/**
 * `flotilla policy check`: the fleet repo's policies (`policies/`, ValidatingAdmissionPolicy)
 * on what each cluster would get, as the hub checks them at sync, so a pull request can be
 * checked in CI before it merges.
 */
import { loadFleet } from '@flotilla/shared';
import { parseOfflineCluster } from '../core/args.ts';
import type { Command } from '../core/command.ts';
import { CliError, UsageError } from '../core/errors.ts';
import { ExitCode } from '../core/exit-codes.ts';
import { formatTable } from '../core/output.ts';
import type { FleetErrorView } from '../hub/hub-client.ts';
import { readCheckout } from '../repo/checkout.ts';
import { preview, previewOptions } from './fleet.ts';
import { reportFleetErrors } from './fleet-errors.ts';

/** One violation, with every cluster it holds a bundle on (Deny) or is reported for (Warn, Audit). */
export interface PolicyCheckViolation {
  readonly action: 'Deny' | 'Warn';
  readonly file: string;
  readonly line: number;
  readonly bundle: string | undefined;
  readonly clusters: readonly string[];
  /** `policies/x.yaml:9: policy … denies Deployment "web/storefront" (bundles/web/app.yaml:1): message` */
  readonly text: string;
}

const isPolicy = (e: Pick<FleetErrorView, 'file'>) => e.file.startsWith('policies/');

export const policyCheckCommand: Command = {
  name: 'policy check',
  summary: "run the fleet repo's policies on what every cluster would get",
  usage: 'policy check [--repo <checkout>] [--bundle <name>] [-l <selector> | --cluster name=k=v,... ...]',
  description: [
    'Renders the checkout (--repo, default .) for the clusters, as the hub does at sync, and runs the',
    'ValidatingAdmissionPolicy documents of policies/ on every rendered object. Each violation is printed',
    "with the policy's file:line, the bundle, the clusters, the object and the message. Clusters come from",
    '--cluster (as flotilla targets takes them), else from the hub when one is configured, else from the',
    "repo's clusters/ files. Exit 10 on a Deny violation or a policy that does not compile, 0 otherwise",
    '(Warn and Audit violations are printed, and do not fail).',
  ].join('\n'),
  positionals: [0, 0],
  options: previewOptions,
  examples: [
    'flotilla policy check',
    'flotilla policy check --repo . --cluster prod-eu-1=env=prod,region=eu --cluster dev-1=env=dev',
    'flotilla policy check -o json',
  ],
  async run(ctx, { values }) {
    const offline = (values.cluster as string[] | undefined)?.map(parseOfflineCluster);
    if (offline && values.selector) throw new UsageError('give -l or --cluster, not both');
    const repo = (values.repo as string | undefined) ?? '.';
    let clusters = offline?.map((c) => ({ ...c, registered: false }));
    if (!clusters && ctx.config.hubUrl === undefined) {
      if (values.selector) throw new UsageError('-l needs a hub (FLOTILLA_HUB_URL); give --cluster instead');
      clusters = await declaredClusters(ctx, repo);
    }
    const p = await preview(ctx, {
      repo,
      clusters,
      selector: values.selector as string | undefined,
      bundle: values.bundle as string | undefined,
      includeObjects: false,
    });
    const found = new Map<string, { action: 'Deny' | 'Warn'; error: FleetErrorView; clusters: string[] }>();
    const add = (action: 'Deny' | 'Warn', error: FleetErrorView, cluster: string) => {
      const seen = found.get(error.text) ?? { action, error, clusters: [] };
      seen.clusters.push(cluster);
      found.set(error.text, seen);
    };
    for (const c of p.clusters) {
      for (const h of c.held) for (const e of h.errors) if (isPolicy(e)) add('Deny', e, c.name);
      for (const w of c.warnings ?? []) if (isPolicy(w)) add('Warn', w, c.name);
    }
    const violations: PolicyCheckViolation[] = [...found.values()]
      .map((v) => ({
        action: v.action,
        file: v.error.file,
        line: v.error.line,
        bundle: v.error.bundle,
        clusters: v.clusters.sort(),
        text: v.error.text,
      }))
      .sort((a, b) => (a.action !== b.action ? (a.action === 'Deny' ? -1 : 1) : a.text < b.text ? -1 : 1));
    const denied = violations.filter((v) => v.action === 'Deny').length;
    ctx.print({ clusters: p.clusters.length, violations }, () =>
      violations.length === 0
        ? `no policy violation on ${p.clusters.length} cluster${p.clusters.length === 1 ? '' : 's'}\n`
        : `${formatTable(
            ['action', 'bundle', 'clusters', 'violation'],
            violations.map((v) => [v.action, v.bundle ?? '-', clusterList(v.clusters), v.text]),
          )}${denied} denied, ${violations.length - denied} warned, on ${p.clusters.length} cluster${p.clusters.length === 1 ? '' : 's'}\n`,
    );
    // Problems of the repo itself (a policy that does not compile, say) fail the check too.
    const repoErrors = p.errors.filter((e) => !violations.some((v) => v.text === e.text));
    return reportFleetErrors(ctx, repoErrors) ?? (denied > 0 ? ExitCode.FleetErrors : undefined);
  },
};

function clusterList(clusters: readonly string[]): string {
  return clusters.length <= 3
    ? clusters.join(', ')
    : `${clusters.slice(0, 3).join(', ')} and ${clusters.length - 3} more`;
}

/** The clusters declared in the repo's clusters/ files, with their labels: what to check with no hub and no --cluster. */
async function declaredClusters(
  ctx: Parameters<Command['run']>[0],
  repo: string,
): Promise<{ name: string; labels: Record<string, string>; registered: boolean }[]> {
  const fleet = loadFleet(readCheckout(repo, ctx.io.cwd));
  const clusters = [...fleet.declaredClusters].map(([name, spec]) => ({
    name,
    labels: { ...spec.labels },
    registered: false,
  }));
  if (clusters.length === 0)
    throw new CliError(
      ExitCode.Usage,
      'no clusters to check: give --cluster name=k=v,..., or configure a hub',
      {
        hint: 'flotilla policy check --cluster prod-eu-1=env=prod,region=eu',
      },
    );
  return clusters;
}
