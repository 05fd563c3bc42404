/**
 * Builds the dashboard UI and serves it: the one way the dashboard is started, by
 * `flotilla dashboard` and by `npm start` (which runs it against its local hub).
 */
import { buildDashboard } from '@flotilla/dashboard/build.ts';
import { CliError } from '../core/errors.ts';
import { ExitCode } from '../core/exit-codes.ts';
import type { HubClient } from '../hub/hub-client.ts';
import { type DashboardServer, startDashboardServer } from './server.ts';

export interface ServeDashboardOptions {
  readonly hub: Pick<HubClient, 'forwardAdmin'> & { readonly tenant?: string | undefined };
  /** Defaults to 127.0.0.1. */
  readonly address?: string;
  /** 0 (the default) picks a free port. */
  readonly port?: number;
  /** Where the port came from, for the error when it is taken (`--port`, an environment variable). */
  readonly portSource?: string;
  /** Progress lines (the UI build). */
  readonly progress?: (line: string) => void;
}

/**
 * Parses a port given as text (a flag or an environment variable named by `source`).
 * @throws CliError (usage) when it is not a whole number from 0 to 65535.
 */
export function parseDashboardPort(text: string, source: string): number {
  const port = /^\d+$/.test(text.trim()) ? Number(text.trim()) : Number.NaN;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new CliError(ExitCode.Usage, `${source}: expected a port number from 0 to 65535, got "${text}"`);
  }
  return port;
}

/**
 * Builds the UI in memory and starts the dashboard server; resolves once it listens.
 * @throws CliError (unavailable) when the address or port cannot be listened on.
 */
export async function serveDashboard(opts: ServeDashboardOptions): Promise<DashboardServer> {
  const address = opts.address ?? '127.0.0.1';
  const port = opts.port ?? 0;
  const started = Date.now();
  opts.progress?.('building the dashboard UI …');
  const assets = await buildDashboard();
  opts.progress?.(`building the dashboard UI: done in ${Date.now() - started} ms`);
  try {
    return await startDashboardServer({ hub: opts.hub, assets, address, port });
  } catch (err) {
    const code = (err as { code?: string }).code ?? (err as Error).message;
    throw new CliError(ExitCode.Unavailable, `the dashboard cannot listen on ${address}:${port}: ${code}`, {
      cause: err,
      ...(code === 'EADDRINUSE'
        ? {
            hint: `the port is taken: choose another with ${opts.portSource ?? '--port'}, or 0 for a free one`,
          }
        : {}),
    });
  }
}
