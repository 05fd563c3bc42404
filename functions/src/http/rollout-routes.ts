/**
 * Rollouts for operators: list them, show one, and pause, resume, promote (open the next
 * wave now) or abort (revert now). A command's releases and reverts become generations
 * at once, as a status report's do.
 */
import {
  applyRolloutSteps,
  ConflictError,
  commandRollout,
  InvalidRequestError,
  NotFoundError,
  type RolloutCommandResult,
  type RolloutDocument,
  rolloutView,
  type StatusScope,
} from '@flotilla/shared/hub';
import { RolloutCommand, RolloutCommandError } from '@flotilla/shared/rollout';
import type { ApiDeps } from './deps.ts';
import type { ApiRequest, ApiResult } from './request.ts';
import { json } from './responses.ts';

/**
 * The bundle and command of a rollout command's path: the route takes the rest of the path
 * (`{bundle+}`), so a source's bundle (`team-a/web`) arrives whole however API Gateway
 * decoded it, and the command is its last segment.
 *
 * @throws {InvalidRequestError} naming `command` when the path has no command.
 */
export function rolloutCommandPath(req: ApiRequest): { bundle: string; command: string } {
  const rest = req.params.bundle ?? '';
  const slash = rest.lastIndexOf('/');
  if (slash < 1) {
    throw new InvalidRequestError([
      { field: 'command', message: `expected /rollouts/<bundle>/<command>, got /rollouts/${rest}` },
    ]);
  }
  return { bundle: rest.slice(0, slash), command: rest.slice(slash + 1) };
}

function storeOf(deps: ApiDeps) {
  if (!deps.rollouts) throw new NotFoundError('this hub keeps no rollouts');
  return deps.rollouts;
}

/** `GET /v1/admin/rollouts`: every bundle's rollout, newest state first by bundle name. */
export async function listRolloutsRoute(
  deps: ApiDeps,
  _req: ApiRequest,
  scope?: Pick<StatusScope, 'ownsBundle'>,
): Promise<ApiResult> {
  const store = storeOf(deps);
  const heads = (await store.list()).filter((h) => !scope || scope.ownsBundle(h.bundle));
  const rollouts = [];
  for (const head of heads) {
    const stored = await store.get(head.bundle);
    if (stored)
      rollouts.push(rolloutView(JSON.parse(stored.document) as RolloutDocument, head.nextWakeAt, 0));
  }
  return json(200, { rollouts });
}

/** `GET /v1/admin/rollouts/{bundle}`: one rollout, wave by wave, with its latest events. */
export async function getRolloutRoute(deps: ApiDeps, req: ApiRequest): Promise<ApiResult> {
  const bundle = req.params.bundle ?? '';
  const stored = await storeOf(deps).get(bundle);
  if (!stored) throw new NotFoundError(`no rollout of bundle "${bundle}"`);
  return json(200, rolloutView(JSON.parse(stored.document) as RolloutDocument, stored.head.nextWakeAt));
}

/** `POST /v1/admin/rollouts/{bundle}/{command}`: pause, resume, promote or abort. */
export async function rolloutCommandRoute(deps: ApiDeps, req: ApiRequest): Promise<ApiResult> {
  const { bundle, command } = rolloutCommandPath(req);
  const commands = Object.values(RolloutCommand) as string[];
  if (!commands.includes(command)) {
    throw new InvalidRequestError([
      { field: 'command', message: `unknown command "${command}" (expected ${commands.join(', ')})` },
    ]);
  }
  const store = storeOf(deps);
  let outcome: Awaited<ReturnType<typeof commandRollout>>;
  try {
    outcome = await commandRollout(
      { rollouts: store, now: deps.now, rolloutTimer: deps.rolloutTimer, events: deps.events },
      bundle,
      command as RolloutCommand,
    );
  } catch (err) {
    if (err instanceof RolloutCommandError) throw new ConflictError(err.message, { cause: err });
    throw err;
  }
  if (!outcome) throw new NotFoundError(`no rollout of bundle "${bundle}"`);
  const applied = await applyRolloutSteps(deps, [outcome]);
  const stored = await store.get(bundle);
  const result: RolloutCommandResult = {
    rollout: rolloutView(
      stored
        ? (JSON.parse(stored.document) as RolloutDocument)
        : { state: outcome.state, events: [], refs: {} },
      stored?.head.nextWakeAt,
    ),
    released: outcome.release,
    reverted: outcome.revert,
    generationsWritten: applied.changed,
  };
  return json(200, result);
}
