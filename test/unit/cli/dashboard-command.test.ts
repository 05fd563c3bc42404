import { describe, expect, it } from 'vitest';
import { runCli } from '../../../cli/src/cli.ts';
import { ExitCode } from '../../../cli/src/core/exit-codes.ts';
import { captureIo } from './fakes.ts';

describe('flotilla dashboard', () => {
  it('does not start without admin credentials, and says what to set', async () => {
    const io = captureIo({ FLOTILLA_HUB_URL: 'http://127.0.0.1:1' });
    expect(await runCli(['dashboard'], io)).toBe(ExitCode.Config);
    expect(io.stderrText()).toContain(
      'error: no admin credentials: the dashboard needs the hub admin key or IAM',
    );
    expect(io.stderrText()).toContain('FLOTILLA_ADMIN_KEY');
    expect(io.stdoutText()).toBe('');
  });

  it('refuses a port that is not one', async () => {
    const io = captureIo({ FLOTILLA_HUB_URL: 'http://127.0.0.1:1', FLOTILLA_ADMIN_KEY: 'adm_test_key' });
    expect(await runCli(['dashboard', '--port', '70000'], io)).toBe(ExitCode.Usage);
    expect(io.stderrText()).toContain('--port: expected a port number from 0 to 65535, got "70000"');
  });
});
