#!/usr/bin/env node
/**
 * The `flotilla` executable: `npx flotilla <command>` from the repo. Everything but the
 * process itself (argv, streams, environment, exit code) is in cli.ts.
 */
import { homedir } from 'node:os';
import { runCli } from './cli.ts';

process.exitCode = await runCli(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
  cwd: process.cwd(),
  homeDir: homedir(),
});
