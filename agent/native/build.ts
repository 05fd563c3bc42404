/**
 * Builds the agent's one native addon (malloc-trim.c) into agent/native/build/: a single
 * C compiler call against the Node-API headers of the `node-api-headers` package (one of
 * the agent's dependencies: Node-API is ABI-stable, so the addon does not depend on which
 * Node built it, nor on that Node's install shipping headers). Run by scripts/run.sh
 * before `npm start` and `npm test`, and by agent/Dockerfile.
 *
 *   node agent/native/build.ts [--if-needed]
 *
 * `--if-needed` does nothing when the addon is newer than its source. Without the addon
 * the agent runs all the same, holding a few megabytes more (agent/src/memory.ts).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const here = import.meta.dirname;
const source = join(here, 'malloc-trim.c');
const target = join(here, 'build', 'malloc-trim.node');
const include = join(
  dirname(createRequire(import.meta.url).resolve('node-api-headers/package.json')),
  'include',
);

if (
  process.argv.includes('--if-needed') &&
  existsSync(target) &&
  statSync(target).mtimeMs >= statSync(source).mtimeMs
) {
  process.exit(0);
}
if (!existsSync(join(include, 'node_api.h'))) throw new Error(`no node_api.h in ${include}`);
mkdirSync(dirname(target), { recursive: true });
const cc = process.env.CC ?? 'cc';
process.stderr.write(`[flotilla] building ${target} (${cc})\n`);
execFileSync(
  cc,
  ['-shared', '-fPIC', '-O2', '-Wall', '-Werror', '-I', include, '-o', `${target}.partial`, source],
  {
    stdio: 'inherit',
  },
);
renameSync(`${target}.partial`, target);
