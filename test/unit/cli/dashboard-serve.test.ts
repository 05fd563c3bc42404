import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { CliError } from '../../../cli/src/core/errors.ts';
import { ExitCode } from '../../../cli/src/core/exit-codes.ts';
import { parseDashboardPort, serveDashboard } from '../../../cli/src/dashboard/serve.ts';

// Never called: these tests make no API request.
const hub = { forwardAdmin: () => Promise.reject(new Error('no hub in this test')) };

describe('serveDashboard (flotilla dashboard and npm start)', () => {
  it('builds the UI and serves it on a free loopback port', async () => {
    const progress: string[] = [];
    const server = await serveDashboard({ hub, progress: (l) => progress.push(l) });
    try {
      expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      const page = await fetch(server.url);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<script type="module" src="/app.js">');
      const js = await fetch(new URL('/app.js', server.url));
      expect((await js.text()).length).toBeGreaterThan(1000);
      expect(progress[1]).toMatch(/^building the dashboard UI: done in \d+ ms$/);
    } finally {
      await server.close();
    }
  });

  it('says which setting to change when the port is taken', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as AddressInfo;
    try {
      const err = await serveDashboard({ hub, port, portSource: 'FLOTILLA_DASHBOARD_PORT' }).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(CliError);
      expect((err as CliError).exitCode).toBe(ExitCode.Unavailable);
      expect((err as CliError).message).toBe(`the dashboard cannot listen on 127.0.0.1:${port}: EADDRINUSE`);
      expect((err as CliError).hint).toBe(
        'the port is taken: choose another with FLOTILLA_DASHBOARD_PORT, or 0 for a free one',
      );
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });

  it('reads a port from text, naming where it came from when it is not one', () => {
    expect(parseDashboardPort('0', '--port')).toBe(0);
    expect(parseDashboardPort('8001', 'FLOTILLA_DASHBOARD_PORT')).toBe(8001);
    for (const bad of ['70000', '-1', '80.5', 'eighty', '', '0x50']) {
      expect(() => parseDashboardPort(bad, 'FLOTILLA_DASHBOARD_PORT')).toThrow(
        `FLOTILLA_DASHBOARD_PORT: expected a port number from 0 to 65535, got "${bad}"`,
      );
    }
  });
});
