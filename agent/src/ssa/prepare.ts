import {
  apiGroup,
  CLUSTER_SCOPED_KINDS,
  canonicalJson,
  entryPaths,
  groupKind,
  type IgnoreDifference,
  isClusterFoundation,
  type KubeJson,
  type ObjectRef,
  objectId,
  type PathSegment,
  selects,
  sha256Hash,
  withoutFields,
} from '@flotilla/shared/agent';
import type { ResourceInfo } from '../kube/discovery.ts';
import type { ManagerContext } from './context.ts';
import { InvalidObjectError, type PreparedObject, type PrepareOptions } from './types.ts';

/**
 * Settles each object's namespace from discovery (namespaced kinds get `namespace` when
 * they name none; cluster-scoped kinds lose any), removes the fields `ignoreDifferences`
 * leaves to other managers (so an apply releases them, and the digest changes with the
 * rules), adds the labels and digests the result. Kinds not served yet take their scope
 * from `definitions` (or objects) that are CRDs.
 *
 * @throws {InvalidObjectError} for an object without apiVersion, kind or metadata.name.
 */
export async function prepare(
  ctx: ManagerContext,
  objects: readonly KubeJson[],
  opts: PrepareOptions = {},
): Promise<PreparedObject[]> {
  const scopes = new Map<string, boolean>();
  for (const d of [...(opts.definitions ?? []), ...objects]) {
    if (!isClusterFoundation(d) || d.kind !== 'CustomResourceDefinition') continue;
    const spec = (d as { spec?: { group?: string; scope?: string; names?: { kind?: string } } }).spec;
    if (spec?.group && spec.names?.kind) {
      scopes.set(groupKind(spec.group, spec.names.kind), spec.scope !== 'Cluster');
    }
  }
  const kinds = new Map<string, Promise<ResourceInfo | undefined>>();
  for (const o of objects) {
    if (
      typeof o?.apiVersion !== 'string' ||
      typeof o.kind !== 'string' ||
      typeof o.metadata?.name !== 'string'
    ) {
      throw new InvalidObjectError(
        `object ${JSON.stringify({ apiVersion: o?.apiVersion, kind: o?.kind, name: o?.metadata?.name })} needs apiVersion, kind and metadata.name`,
      );
    }
    const key = `${o.apiVersion}\n${o.kind}`;
    // A group-version that cannot be looked up now (an aggregated API that is down) only
    // fails the objects of that kind, when they are applied: scope is guessed meanwhile.
    if (!kinds.has(key))
      kinds.set(
        key,
        ctx.mapper.find(o.apiVersion, o.kind).catch(() => undefined),
      );
  }
  const infos = new Map<string, ResourceInfo | undefined>();
  await Promise.all([...kinds].map(async ([key, p]) => infos.set(key, await p)));
  const labels = opts.labels ?? {};
  const annotations = opts.annotations;
  const rules = compileRules(opts.ignoreDifferences ?? []);
  return objects.map((original) => {
    const group = apiGroup(original.apiVersion);
    const gk = groupKind(group, original.kind);
    const info = infos.get(`${original.apiVersion}\n${original.kind}`);
    const namespaced = info ? info.namespaced : (scopes.get(gk) ?? !CLUSTER_SCOPED_KINDS.has(gk));
    const namespace = namespaced ? original.metadata.namespace || opts.namespace || 'default' : '';
    const who = { group, kind: original.kind, namespace, name: original.metadata.name };
    const ignored = rules.filter((r) => selects(r.entry, who)).flatMap((r) => r.paths);
    const o = ignored.length > 0 ? withoutFields(original, ignored) : original;
    const { namespace: _dropped, ...meta } = o.metadata;
    const metadata = {
      ...meta,
      ...(namespaced ? { namespace } : {}),
      labels: { ...(o.metadata.labels ?? {}), ...labels },
      ...(annotations ? { annotations: { ...(o.metadata.annotations ?? {}), ...annotations } } : {}),
    };
    const object = { ...o, metadata } as KubeJson;
    const ref: ObjectRef = { apiVersion: o.apiVersion, kind: o.kind, namespace, name: o.metadata.name };
    const digest = sha256Hash(canonicalJson(object)).slice(7, 39);
    return { id: objectId(ref), ref, object, digest, ...(ignored.length > 0 ? { ignored } : {}) };
  });
}

function compileRules(
  entries: readonly IgnoreDifference[],
): { entry: IgnoreDifference; paths: PathSegment[][] }[] {
  return entries.map((entry) => {
    try {
      return { entry, paths: entryPaths(entry) };
    } catch (e) {
      throw new InvalidObjectError(`ignoreDifferences: ${(e as Error).message}`, { cause: e });
    }
  });
}
