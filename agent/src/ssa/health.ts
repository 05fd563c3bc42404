import {
  assessHealth,
  type Health,
  type HealthCheck,
  hasReadiness,
  healthCheckIndex,
  type KubeJson,
  type ObjectRef,
  objectId,
} from '@flotilla/shared/agent';
import type { ManagerContext } from './context.ts';
import { getAll } from './read.ts';
import type { HealthReport } from './types.ts';

/** What {@link health} takes besides the objects. */
export interface HealthOptions {
  /** Live copies already in hand (from the apply), by object id; others are read. */
  readonly known?: ReadonlyMap<string, KubeJson | undefined>;
  readonly labelSelector?: string;
  /** The bundle's custom CEL checks (rendered bundle `healthChecks`); the first match decides an object. */
  readonly healthChecks?: readonly HealthCheck[];
}

type Assess = (ref: ObjectRef, live: KubeJson) => Health;

// Compiled checks by their source, so a bundle's checks compile once, not at every look.
// Bounded: desired states change, and old bundles' checks must not pile up.
const compiledChecks = new Map<string, Promise<Assess>>();

/**
 * The readiness function for a bundle: its CEL checks where one matches, the built-in
 * (kstatus) rules otherwise. The CEL engine is imported only here, and only for bundles
 * that have checks, so an agent whose bundles have none never loads it.
 */
async function assessorFor(checks: readonly HealthCheck[] | undefined): Promise<Assess> {
  if (!checks || checks.length === 0) return (_ref, live) => assessHealth(live);
  const key = JSON.stringify(checks);
  let assess = compiledChecks.get(key);
  if (!assess) {
    assess = import('@flotilla/shared/health-checks').then(({ compileHealthChecks, evaluateHealthCheck }) => {
      const compiled = compileHealthChecks(checks);
      return (ref: ObjectRef, live: KubeJson) => {
        const i = healthCheckIndex(checks, ref);
        return i < 0
          ? assessHealth(live)
          : evaluateHealthCheck(compiled[i] as (typeof compiled)[number], live);
      };
    });
    if (compiledChecks.size >= 64) compiledChecks.clear();
    compiledChecks.set(key, assess);
  }
  return assess;
}

/** Whether an object's readiness needs its live copy: a kind with readiness, or one a custom check matches. */
function needsRead(ref: ObjectRef, checks: readonly HealthCheck[] | undefined): boolean {
  return hasReadiness(ref) || healthCheckIndex(checks, ref) >= 0;
}

/** Readiness of each object, from `known` live copies where given and reads otherwise. */
export async function health(
  ctx: ManagerContext,
  refs: readonly ObjectRef[],
  opts: HealthOptions = {},
): Promise<HealthReport[]> {
  const checked = refs.filter((r) => needsRead(r, opts.healthChecks));
  const unknown = checked.filter((r) => !opts.known?.has(objectId(r)));
  const read =
    unknown.length > 0 ? await getAll(ctx, unknown, opts) : new Map<string, KubeJson | undefined>();
  const assess = await assessorFor(opts.healthChecks);
  return refs.map((ref) => {
    const id = objectId(ref);
    if (!needsRead(ref, opts.healthChecks)) return { id, ref, ready: true, message: '' };
    const live = opts.known?.has(id) ? opts.known.get(id) : read.get(id);
    if (!live) return { id, ref, ready: false, message: 'not found' };
    return { id, ref, ...assess(ref, live) };
  });
}
