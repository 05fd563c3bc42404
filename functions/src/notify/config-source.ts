import { formatFleetError } from '@flotilla/shared';
import type { FleetSource } from '@flotilla/shared/hub';
import {
  emptyNotificationConfig,
  isNotificationFile,
  loadNotifications,
  type NotificationConfig,
} from '@flotilla/shared/notify';
import type { Logger } from '../http/log.ts';

/** The notification config in force: `notifications/` of the fleet repo's tip. */
export interface NotificationConfigSource {
  current(): Promise<NotificationConfig>;
}

/**
 * Reads `notifications/` from the fleet repo, reusing a read for `ttlMs`. Errors in the
 * files are logged (file:line) and the valid files still apply; a repo that cannot be
 * read keeps the last config (or none), so events are still delivered where possible.
 */
export function fleetRepoNotificationConfig(
  source: FleetSource,
  opts: { ttlMs: number; log: Logger; now?: () => number },
): NotificationConfigSource {
  const now = opts.now ?? Date.now;
  let last: { config: NotificationConfig; commit: string; until: number } | undefined;
  return {
    async current() {
      if (last && last.until > now()) return last.config;
      try {
        const snapshot = await source.fetch();
        if (last?.commit === snapshot.commit) {
          last = { ...last, until: now() + opts.ttlMs };
          return last.config;
        }
        const files = snapshot.files
          .filter((f) => isNotificationFile(f.path))
          .map((f) => [f.path, f.content] as [string, string]);
        const { config, errors } = loadNotifications(files);
        if (errors.length > 0) {
          opts.log.warn('notifications/ has errors: those files are ignored', {
            commit: snapshot.commit,
            errors: errors.map(formatFleetError),
          });
        }
        last = { config, commit: snapshot.commit, until: now() + opts.ttlMs };
        return config;
      } catch (err) {
        opts.log.warn('the fleet repo could not be read for notifications/: keeping the last config', {
          error: err instanceof Error ? err.message : String(err),
        });
        return last?.config ?? emptyNotificationConfig;
      }
    },
  };
}

/** A fixed config (tests, and a hub that hands the config over itself). */
export function staticNotificationConfig(config: NotificationConfig): NotificationConfigSource {
  return { current: async () => config };
}
