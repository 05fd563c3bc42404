import { syncFleet } from '@flotilla/shared/hub';
import type { ApiDeps } from './deps.ts';
import { type ApiRequest, type ApiResult, header } from './request.ts';
import { json } from './responses.ts';

/**
 * `POST /v1/webhooks/git`: a push to the fleet repo (GitHub, Gitea and Forgejo send the
 * same `X-Hub-Signature-256`). The signature was checked over the raw body before this
 * runs. Pings and pushes to other branches are acknowledged and ignored; a push to the
 * fleet branch (or a body that says nothing of branches) syncs. A team repository's
 * webhook names its source (`?source=team-a`): its pushes sync whatever the branch, since
 * the source's declaration, not this route, says which ref the hub reads (and a sync
 * from a webhook reads every source).
 */
export async function gitWebhookRoute(deps: ApiDeps, req: ApiRequest): Promise<ApiResult> {
  const event = header(req.event, 'x-github-event') ?? header(req.event, 'x-gitea-event');
  if (event === 'ping') return json(200, { status: 'pong' });
  const ref = pushedRef(req.rawBody);
  const branch = `refs/heads/${deps.config.fleetRepo.ref}`;
  if (!req.query.has('source') && ref !== undefined && ref !== branch) {
    return json(202, { status: 'ignored', reason: `push to ${ref}, the fleet branch is ${branch}` });
  }
  const report = await syncFleet(deps, { holder: `webhook:${req.requestId}` });
  // `queued` (another sync holds the lease) and `dispatched` (worker invocations finish it) are not done yet.
  return json(report.status === 'synced' ? 200 : 202, {
    status: report.status,
    commit: report.commit ?? null,
    changedClusters: report.changed.length,
    errors: report.errors.length,
    warnings: report.warnings?.length ?? 0,
    ...(report.job ? { job: report.job } : {}),
  });
}

function pushedRef(body: Buffer | undefined): string | undefined {
  if (!body || body.length === 0) return undefined;
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { ref?: unknown };
    return typeof parsed.ref === 'string' ? parsed.ref : undefined;
  } catch {
    // Form-encoded or another forge's format: nothing to filter on, so sync.
    return undefined;
  }
}
