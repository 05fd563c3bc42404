/**
 * The test bed on the command line.
 *
 *   node test/bed/bed.ts up [--clusters a,b,c] [--dir DIR] [--detach]
 *   node test/bed/bed.ts down [--dir DIR]
 *   node test/bed/bed.ts status [--dir DIR]
 *
 * `up` stays in the foreground until Ctrl-C unless --detach is given; either way the
 * state (endpoints, kubeconfigs, versions) is written to DIR/state.json, which the
 * tests reuse when FLOTILLA_BED_DIR points at DIR.
 */
import { spawn } from 'node:child_process';
import { existsSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { readBedState, repoRoot, startBed, stateFilePath, stopStaleBed } from './src/bed.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    dir: { type: 'string', default: join(repoRoot, '.flotilla', 'bed') },
    clusters: { type: 'string', default: 'spoke-1,spoke-2,spoke-3' },
    detach: { type: 'boolean', default: false },
  },
});
const dir = values.dir;
const command = positionals[0] ?? 'status';
const log = (line: string) => process.stderr.write(`[bed] ${line}\n`);

switch (command) {
  case 'up':
    await up();
    break;
  case 'down':
    await stopStaleBed(dir, log);
    log(`bed in ${dir} is down`);
    break;
  case 'status': {
    const state = readBedState(dir);
    if (!state) {
      log(`no bed running in ${dir}`);
      process.exitCode = 3;
    } else {
      process.stdout.write(`${JSON.stringify(state, null, 2)}\n`);
    }
    break;
  }
  default:
    log(`unknown command "${command}": use up, down or status`);
    process.exitCode = 2;
}

async function up(): Promise<void> {
  const clusters = values.clusters
    .split(',')
    .map((c) => c.trim())
    .filter(Boolean);
  if (values.detach) {
    const logPath = join(dir, '..', 'bed-up.log');
    const out = openSync(logPath, 'a');
    const child = spawn(
      process.execPath,
      [new URL(import.meta.url).pathname, 'up', '--dir', dir, '--clusters', clusters.join(',')],
      {
        detached: true,
        stdio: ['ignore', out, out],
      },
    );
    child.unref();
    log(`starting in the background (pid ${child.pid}, log ${logPath})`);
    const deadline = Date.now() + 60 * 60_000;
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 1000));
      const state = readBedState(dir);
      if (state && state.ownerPid === child.pid) {
        log(`ready: ${stateFilePath(dir)}`);
        return;
      }
      if (child.exitCode !== null || !isRunning(child.pid)) {
        log(`bed failed to start; see ${logPath}`);
        process.exitCode = 1;
        return;
      }
    }
    return;
  }
  const bed = await startBed({ dir, clusters, log, charts: true });
  process.stdout.write(`${JSON.stringify(bed.state, null, 2)}\n`);
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    log('stopping');
    await bed.stop();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  // Stay alive: the git server lives in this process.
  setInterval(() => {
    if (!existsSync(bed.stateFile)) void stop();
  }, 5_000);
}

function isRunning(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
