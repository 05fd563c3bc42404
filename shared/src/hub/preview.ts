/**
 * Preview: which clusters a version of the fleet repo targets with which bundles, through
 * which target entry and customization, and what each bundle renders to, with every
 * problem by file and line. Nothing is stored; the same core renders as sync does, so a
 * preview's hashes are the hashes sync stores for the same files and labels.
 */

import type { FleetError } from '../errors.ts';
import { FleetInputError, normalizeFleetErrors } from '../errors.ts';
import { type ClusterPlan, type EnginePorts, type EntryRef, loadFleet } from '../fleet/index.ts';
import { bundleNameProblem, labelsProblems, nameProblem } from '../labels.ts';
import type { KubeObject, SealedFile } from '../protocol/desired-state.ts';
import {
  declaredSourceFiles,
  fetchFleetSources,
  type SourceDeclarationStore,
  type SourceFetcher,
} from './fleet-sources.ts';
import type { ClusterRecord, ClusterStore, Labels } from './ports.ts';
import { type FieldProblem, type FleetErrorView, fleetErrorView, InvalidRequestError } from './status.ts';
import type { FleetSource, FleetSourceFile } from './sync.ts';

/** A cluster to preview: registered with the hub, or hypothetical (not registered yet). */
export interface PreviewClusterInput {
  readonly name: string;
  readonly labels: Labels;
  readonly registered: boolean;
  /** As its agent reported it; Helm charts see it as `.Capabilities.KubeVersion`. */
  readonly kubeVersion?: string;
}

export interface PreviewOptions {
  /** Only this bundle. */
  readonly bundle?: string;
  /** Include each distinct render's objects (default true). */
  readonly includeObjects?: boolean;
  /** The render engine for Helm and Kustomize bundles; without it they are reported broken. */
  readonly engine?: EnginePorts;
}

export interface PreviewBundle {
  readonly name: string;
  readonly hash: string;
  readonly namespace: string;
  readonly dependsOn: readonly string[];
  readonly driftPolicy: string;
  readonly paused: boolean;
  /** The first target entry that matched. */
  readonly target: EntryRef;
  /** The customization applied (first match wins), or null for the bundle's defaults. */
  readonly customization: EntryRef | null;
  /** Object ids (`group/Kind/namespace/name`) in apply order; the objects themselves are in `renders[hash]`. */
  readonly objects: readonly string[];
}

export interface PreviewCluster {
  readonly name: string;
  readonly registered: boolean;
  /** Effective labels: registered (or given) ones overridden by those declared in git. */
  readonly labels: Labels;
  /** `ok`, `partial` (some bundles held by errors) or `held` (its own clusters/ file is broken). */
  readonly status: ClusterPlan['status'];
  readonly bundles: readonly PreviewBundle[];
  /** Bundles that target the cluster but cannot render for it; sync keeps their last good version. */
  readonly held: readonly {
    readonly bundle: string;
    readonly reason: string;
    readonly errors: readonly FleetErrorView[];
  }[];
  /** Bundles a target entry matched but an exclude entry removed. */
  readonly excluded: readonly { readonly bundle: string; readonly excludedBy: EntryRef }[];
  /** Policy warnings (Warn and Audit bindings) on the bundles it gets; absent when none. */
  readonly warnings?: readonly FleetErrorView[];
}

export interface FleetPreview {
  readonly source: 'repo' | 'upload';
  /** The commit previewed, for the repo; null for uploaded files. */
  readonly commit: string | null;
  readonly clusters: readonly PreviewCluster[];
  /** Bundle by bundle: the clusters it renders for and those where it is held. */
  readonly bundles: readonly {
    readonly name: string;
    readonly file: string;
    readonly clusters: readonly string[];
    readonly held: readonly string[];
  }[];
  /** Each distinct render once, by hash (empty when objects were not asked for). */
  readonly renders: Readonly<
    Record<
      string,
      {
        readonly bundle: string;
        readonly objects: readonly KubeObject[];
        readonly sealed?: readonly SealedFile[];
      }
    >
  >;
  /** Every problem, sorted by file and line. */
  readonly errors: readonly FleetErrorView[];
  /** Problems that hold nothing (plain Secrets in the repo), sorted by file and line. */
  readonly warnings: readonly FleetErrorView[];
}

/**
 * Previews files of a fleet repo against clusters. Pure and deterministic.
 *
 * @throws {InvalidRequestError} when the file list is inconsistent or `bundle` names no bundle.
 */
export async function previewFleet(
  files: readonly FleetSourceFile[],
  clusters: readonly PreviewClusterInput[],
  opts: PreviewOptions & { source: 'repo' | 'upload'; commit?: string } = { source: 'upload' },
): Promise<FleetPreview> {
  let fleet: ReturnType<typeof loadFleet>;
  try {
    fleet = loadFleet(files);
  } catch (err) {
    if (err instanceof FleetInputError)
      throw new InvalidRequestError([{ field: 'files', message: err.message }]);
    throw err;
  }
  if (opts.bundle !== undefined && !fleet.bundles.some((b) => b.name === opts.bundle)) {
    throw new InvalidRequestError([
      {
        field: 'bundle',
        message: `no bundle "${opts.bundle}" in the fleet repo (bundles: ${fleet.bundles.map((b) => b.name).join(', ') || 'none'})`,
      },
    ]);
  }
  const wanted = (bundle: string) => opts.bundle === undefined || opts.bundle === bundle;
  const includeObjects = opts.includeObjects ?? true;
  const renders: Record<
    string,
    { bundle: string; objects: readonly KubeObject[]; sealed?: readonly SealedFile[] }
  > = {};
  const errors: FleetError[] = [...fleet.errors];
  const planWarnings: FleetError[] = [];
  const byBundle = new Map<string, { clusters: string[]; held: string[] }>(
    fleet.bundles.filter((b) => wanted(b.name)).map((b) => [b.name, { clusters: [], held: [] }]),
  );
  const sorted = [...clusters].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const inputOf = (c: PreviewClusterInput) => ({
    name: c.name,
    labels: c.labels,
    ...(c.kubeVersion === undefined ? {} : { kubeVersion: c.kubeVersion }),
  });
  await fleet.prepare(sorted.map(inputOf), opts.engine ?? {});
  const previews = sorted.map((cluster): PreviewCluster => {
    const input = inputOf(cluster);
    const plan = fleet.planCluster(input);
    errors.push(...plan.errors);
    if (plan.warnings) planWarnings.push(...plan.warnings.filter((w) => wanted(w.bundle ?? '')));
    const bundles = plan.bundles
      .filter((b) => wanted(b.ref.name))
      .map((b): PreviewBundle => {
        byBundle.get(b.ref.name)?.clusters.push(cluster.name);
        if (includeObjects && renders[b.rendered.hash] === undefined) {
          const doc = JSON.parse(b.rendered.canonical) as { objects: KubeObject[]; sealed?: SealedFile[] };
          renders[b.rendered.hash] = {
            bundle: b.ref.name,
            objects: doc.objects,
            ...(doc.sealed ? { sealed: doc.sealed } : {}),
          };
        }
        return {
          name: b.ref.name,
          hash: b.ref.hash,
          namespace: b.ref.namespace,
          dependsOn: b.ref.dependsOn,
          driftPolicy: b.ref.driftPolicy,
          paused: b.ref.paused,
          target: b.target,
          customization: b.customization ?? null,
          objects: b.rendered.objects.map((o) => o.id),
        };
      });
    const held = plan.held
      .filter((h) => wanted(h.bundle))
      .map((h) => {
        byBundle.get(h.bundle)?.held.push(cluster.name);
        return { bundle: h.bundle, reason: h.reason, errors: h.errors.map(fleetErrorView) };
      });
    const excluded = fleet
      .matchBundles(input)
      .filter((m) => m.status === 'excluded' && m.excludedBy && wanted(m.bundle))
      .map((m) => ({ bundle: m.bundle, excludedBy: m.excludedBy as EntryRef }));
    return {
      name: cluster.name,
      registered: cluster.registered,
      labels: plan.labels,
      status: plan.status,
      bundles,
      held,
      excluded,
      ...(plan.warnings ? { warnings: plan.warnings.map(fleetErrorView) } : {}),
    };
  });
  const seen = new Set<string>();
  const allErrors = errors
    .filter((e) => {
      const key = `${e.file}\0${e.line}\0${e.column ?? 0}\0${e.message}\0${e.bundle ?? ''}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    })
    .sort(compareErrors);
  return {
    source: opts.source,
    commit: opts.commit ?? null,
    clusters: previews,
    bundles: fleet.bundles
      .filter((b) => byBundle.has(b.name))
      .map((b) => ({
        name: b.name,
        file: b.file,
        ...(byBundle.get(b.name) as { clusters: string[]; held: string[] }),
      })),
    renders,
    errors: allErrors.map(fleetErrorView),
    warnings: normalizeFleetErrors([
      ...fleet.warnings.filter((w) => w.bundle === undefined || wanted(w.bundle)),
      ...planWarnings,
    ]).map(fleetErrorView),
  };
}

function compareErrors(a: FleetError, b: FleetError): number {
  if (a.file !== b.file) return a.file < b.file ? -1 : 1;
  if (a.line !== b.line) return a.line - b.line;
  return (a.column ?? 0) - (b.column ?? 0) || (a.message < b.message ? -1 : a.message > b.message ? 1 : 0);
}

/** What to preview: the tip of the fleet repo, or files uploaded from a local checkout. */
export type PreviewSource =
  | { readonly kind: 'repo'; readonly commit?: string }
  | { readonly kind: 'upload'; readonly files: readonly FleetSourceFile[] };

/** A preview request, validated ({@link parsePreviewRequest}). */
export interface PreviewRequest {
  readonly source: PreviewSource;
  /** Registered cluster names, or hypothetical clusters with labels; all registered clusters when absent. */
  readonly clusters?: readonly (string | { readonly name: string; readonly labels: Labels })[];
  readonly bundle?: string;
  readonly includeObjects?: boolean;
}

export const previewLimits = { files: 5000, clusters: 1000 } as const;

/**
 * Validates the body of a preview request: `{ commit?: "HEAD" }` or
 * `{ files: [{ path, content }] }`, plus optional `clusters`, `bundle`, `includeObjects`.
 *
 * @throws {InvalidRequestError} naming every wrong field.
 */
export function parsePreviewRequest(value: unknown): PreviewRequest {
  const problems: FieldProblem[] = [];
  const fail = (field: string, message: string) => {
    problems.push({ field, message });
  };
  if (value === undefined || value === null) value = {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidRequestError([{ field: 'body', message: 'expected a JSON object' }]);
  }
  const body = value as Record<string, unknown>;
  const allowed = ['commit', 'files', 'clusters', 'bundle', 'includeObjects'];
  for (const key of Object.keys(body)) {
    if (!allowed.includes(key)) fail(key, `unknown field (allowed: ${allowed.join(', ')})`);
  }
  let source: PreviewSource = { kind: 'repo' };
  if (body.files !== undefined && body.commit !== undefined) {
    fail('files', 'give either "commit" (preview the repo) or "files" (preview uploaded files), not both');
  } else if (body.files !== undefined) {
    if (!Array.isArray(body.files)) fail('files', 'expected an array of {path, content}');
    else if (body.files.length > previewLimits.files) {
      fail('files', `at most ${previewLimits.files} files (got ${body.files.length})`);
    } else {
      const files: FleetSourceFile[] = [];
      const paths = new Set<string>();
      body.files.forEach((f: unknown, i: number) => {
        const at = `files[${i}]`;
        if (typeof f !== 'object' || f === null || Array.isArray(f)) {
          fail(at, 'expected an object {path, content}');
          return;
        }
        const file = f as Record<string, unknown>;
        for (const key of Object.keys(file)) {
          if (key !== 'path' && key !== 'content')
            fail(`${at}.${key}`, 'unknown field (allowed: path, content)');
        }
        if (typeof file.path !== 'string' || file.path.trim() === '') {
          fail(`${at}.path`, 'expected a repo-relative path such as "bundles/web/bundle.yaml"');
        } else if (file.path.startsWith('/') || file.path.split(/[\\/]/).includes('..')) {
          fail(`${at}.path`, `"${file.path}" must be relative to the repo root and stay inside it`);
        } else if (paths.has(file.path)) {
          fail(`${at}.path`, `"${file.path}" is given twice`);
        } else paths.add(file.path);
        if (typeof file.content !== 'string') fail(`${at}.content`, 'expected the file content as a string');
        if (typeof file.path === 'string' && typeof file.content === 'string') {
          files.push({ path: file.path, content: file.content });
        }
      });
      source = { kind: 'upload', files };
    }
  } else if (body.commit !== undefined) {
    if (typeof body.commit !== 'string' || !/^(HEAD|[0-9a-f]{40})$/.test(body.commit)) {
      fail('commit', `expected "HEAD" or a 40-digit commit id, got ${JSON.stringify(body.commit)}`);
    } else source = body.commit === 'HEAD' ? { kind: 'repo' } : { kind: 'repo', commit: body.commit };
  }
  let clusters: PreviewRequest['clusters'];
  if (body.clusters !== undefined) {
    if (!Array.isArray(body.clusters)) {
      fail('clusters', 'expected an array of cluster names or {name, labels}');
    } else if (body.clusters.length > previewLimits.clusters) {
      fail('clusters', `at most ${previewLimits.clusters} clusters (got ${body.clusters.length})`);
    } else {
      const list: (string | { name: string; labels: Labels })[] = [];
      const names = new Set<string>();
      body.clusters.forEach((c: unknown, i: number) => {
        const at = `clusters[${i}]`;
        let name: unknown = c;
        if (typeof c === 'object' && c !== null && !Array.isArray(c)) {
          const entry = c as Record<string, unknown>;
          for (const key of Object.keys(entry)) {
            if (key !== 'name' && key !== 'labels')
              fail(`${at}.${key}`, 'unknown field (allowed: name, labels)');
          }
          name = entry.name;
          const labels = entry.labels ?? {};
          if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) {
            fail(`${at}.labels`, 'expected an object of string values');
          } else {
            const bad = Object.entries(labels).find(([, v]) => typeof v !== 'string');
            const labelProblems = bad
              ? [`label "${bad[0]}": value must be a string`]
              : labelsProblems(labels as Labels);
            if (labelProblems.length > 0) fail(`${at}.labels`, labelProblems.join('; '));
            else if (typeof name === 'string') list.push({ name, labels: labels as Labels });
          }
        } else if (typeof c === 'string') list.push(c);
        const nameField = typeof c === 'string' ? at : `${at}.name`;
        if (typeof name !== 'string') {
          fail(nameField, 'expected a cluster name or {name, labels}');
          return;
        }
        const problem = nameProblem(name);
        if (problem) fail(nameField, problem);
        if (names.has(name)) fail(nameField, `cluster "${name}" is given twice`);
        names.add(name);
      });
      clusters = list;
    }
  }
  if (body.bundle !== undefined && (typeof body.bundle !== 'string' || bundleNameProblem(body.bundle))) {
    fail('bundle', `expected a bundle name, got ${JSON.stringify(body.bundle)}`);
  }
  if (body.includeObjects !== undefined && typeof body.includeObjects !== 'boolean') {
    fail('includeObjects', 'expected true or false');
  }
  if (problems.length > 0) throw new InvalidRequestError(problems);
  return {
    source,
    ...(clusters ? { clusters } : {}),
    ...(typeof body.bundle === 'string' ? { bundle: body.bundle } : {}),
    ...(typeof body.includeObjects === 'boolean' ? { includeObjects: body.includeObjects } : {}),
  };
}

export interface PreviewPorts {
  readonly source: FleetSource;
  /** Reads the other sources the platform declares, so that a preview of the repo shows their bundles too. */
  readonly sourceFetcher?: SourceFetcher;
  /** The sources declared through the admin API, read with the platform's `sources/`. */
  readonly declaredSources?: Pick<SourceDeclarationStore, 'list'>;
  readonly clusters: Pick<ClusterStore, 'list'>;
  readonly engine?: EnginePorts;
}

function registeredInput(c: ClusterRecord): PreviewClusterInput {
  return {
    name: c.id,
    labels: c.labels,
    registered: true,
    ...(c.kubeVersion === undefined ? {} : { kubeVersion: c.kubeVersion }),
  };
}

/**
 * Previews a request: fetches the repo tip (or takes the uploaded files), resolves the
 * clusters (registered ones by name, hypothetical ones as given, all registered ones by
 * default) and calls {@link previewFleet}.
 *
 * @throws {InvalidRequestError} for a cluster name that is not registered, or a commit that is not the tip.
 */
export async function previewTargets(ports: PreviewPorts, request: PreviewRequest): Promise<FleetPreview> {
  const registered = await ports.clusters.list();
  const byName = new Map(registered.map((c) => [c.id, c]));
  let clusters: PreviewClusterInput[];
  if (request.clusters) {
    const problems: FieldProblem[] = [];
    clusters = [];
    request.clusters.forEach((c, i) => {
      if (typeof c !== 'string') {
        clusters.push({ name: c.name, labels: c.labels, registered: false });
        return;
      }
      const found = byName.get(c);
      if (found) clusters.push(registeredInput(found));
      else
        problems.push({
          field: `clusters[${i}]`,
          message: `no registered cluster "${c}" (give {name, labels} to preview a cluster that is not registered)`,
        });
    });
    if (problems.length > 0) throw new InvalidRequestError(problems);
  } else {
    clusters = registered.map(registeredInput);
  }
  const options = {
    ...(ports.engine ? { engine: ports.engine } : {}),
    ...(request.bundle !== undefined ? { bundle: request.bundle } : {}),
    ...(request.includeObjects !== undefined ? { includeObjects: request.includeObjects } : {}),
  };
  if (request.source.kind === 'upload') {
    return previewFleet(request.source.files, clusters, { ...options, source: 'upload' });
  }
  const { commit, files } = await ports.source.fetch();
  if (request.source.commit !== undefined && request.source.commit !== commit) {
    throw new InvalidRequestError([
      {
        field: 'commit',
        message: `only the tip of the fleet branch (${commit}) can be previewed from the repo; upload the files of ${request.source.commit} instead`,
      },
    ]);
  }
  // The declared sources (in sources/ and through the admin API) at their tips, as a sync would read them now (a source that cannot be read is left out, with its error).
  const declared = ports.declaredSources ? await declaredSourceFiles(ports.declaredSources) : [];
  const combined = await fetchFleetSources(
    { commit, files: [...files, ...declared] },
    ports.sourceFetcher,
    { files: async () => undefined },
    { now: new Date(), respectIntervals: false },
  );
  const preview = await previewFleet(combined.files, clusters, { ...options, source: 'repo', commit });
  if (combined.errors.length === 0) return preview;
  return { ...preview, errors: [...combined.errors.map(fleetErrorView), ...preview.errors] };
}
