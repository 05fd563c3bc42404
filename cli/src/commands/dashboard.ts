import type { Command } from '../core/command.ts';
import { CliError } from '../core/errors.ts';
import { ExitCode } from '../core/exit-codes.ts';
import { parseDashboardPort, serveDashboard } from '../dashboard/serve.ts';

const loopback = new Set(['127.0.0.1', '::1', 'localhost']);

export const dashboardCommand: Command = {
  name: 'dashboard',
  summary: 'the fleet dashboard in your browser, served on this machine with your hub credentials',
  usage: 'dashboard [--address 127.0.0.1] [--port 0]',
  description:
    'Serves the web UI on this machine and forwards its API calls to the hub with your own admin ' +
    'credentials (the admin key, or an IAM signature), which never reach the browser. Stop it with Ctrl-C.',
  positionals: [0, 0],
  options: {
    address: {
      type: 'string',
      default: '127.0.0.1',
      valueName: 'ip',
      description: 'the address to listen on; anything but loopback lets others act with your credentials',
    },
    port: { type: 'string', default: '0', valueName: 'port', description: 'the port; 0 picks a free one' },
  },
  examples: ['flotilla dashboard', 'flotilla dashboard --port 8001'],
  async run(ctx, { values }) {
    const address = values.address as string;
    const port = parseDashboardPort(values.port as string, '--port');
    const hub = ctx.hub();
    if (!hub.hasAdmin) {
      throw new CliError(
        ExitCode.Config,
        'no admin credentials: the dashboard needs the hub admin key or IAM',
        {
          hint: 'set FLOTILLA_ADMIN_KEY (or adminKey in ~/.config/flotilla/config.yaml), or FLOTILLA_AUTH=iam against a hub in AWS',
        },
      );
    }
    const server = await serveDashboard({ hub, address, port, progress: (line) => ctx.progress(line) });
    if (!loopback.has(address)) {
      ctx.io.stderr(
        `warning: listening on ${address}: anyone who can reach it acts on the hub with your credentials\n`,
      );
    }
    ctx.io.stdout(`Flotilla dashboard for ${hub.baseUrl} at ${server.url} (Ctrl-C stops it)\n`);
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        resolve();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    await server.close();
    return undefined;
  },
};
