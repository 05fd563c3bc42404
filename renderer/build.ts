/**
 * Builds the renderer worker (`flotilla-renderer`, the Go module beside this file)
 * from the Go module proxy into a cache keyed by its sources, the way the test bed
 * builds Kubernetes (test/bed/src/kube-build.ts): a cold build takes a few minutes on
 * two cores, afterwards finding the binary is a hash of a few files.
 *
 * Also builds the reference `helm` and `kustomize` CLIs from the same module
 * versions (renderer/reference/), which the differential tests compare against.
 *
 * Run as `node renderer/build.ts [--reference]` to print the path(s).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  formatElapsed,
  type Log,
  lockDirectory,
  runCommand,
  withProgress,
} from '../scripts/build-support.ts';

export type { Log };

/** The Go module of the worker: go.mod, go.sum and *.go. */
export const rendererModuleDir = fileURLToPath(new URL('.', import.meta.url));
/** A tools-only module pinning the reference CLIs to the worker's library versions. */
export const referenceModuleDir = join(rendererModuleDir, 'reference');

// Bump when the recipe (flags, environment, layout) changes, so binaries built the
// old way are rebuilt although the sources did not change.
const recipeVersion = 1;

export interface BuildOptions {
  /** Defaults to $FLOTILLA_CACHE_DIR, else ~/.cache/flotilla (as scripts/run.sh). */
  readonly cacheDir?: string;
  /** Progress lines; defaults to stderr. */
  readonly log?: Log;
  /** The go command; defaults to $GO, else `go` on PATH. */
  readonly go?: string;
}

export class RendererBuildError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'RendererBuildError';
  }
}

export function defaultCacheDir(): string {
  return (
    process.env.FLOTILLA_CACHE_DIR ??
    join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'flotilla')
  );
}

/** First 16 hex digits of the sha256 over the recipe, go.mod, go.sum and every *.go file, by name. */
export function moduleHash(moduleDir: string): string {
  const hash = createHash('sha256').update(`recipe ${recipeVersion}\n`);
  const names = readdirSync(moduleDir)
    .filter((n) => n === 'go.mod' || n === 'go.sum' || n.endsWith('.go'))
    .sort();
  for (const n of names) {
    hash.update(`${n}\n`);
    hash.update(readFileSync(join(moduleDir, n)));
    hash.update('\n');
  }
  return hash.digest('hex').slice(0, 16);
}

/**
 * Returns the path of `flotilla-renderer`, building it first when the cache has no
 * binary for the current sources.
 *
 * @example
 * const path = await ensureRenderer({ log: console.error });
 * const client = new RendererClient({ binary: path });
 */
export async function ensureRenderer(opts: BuildOptions = {}): Promise<string> {
  const dir = await ensureModuleBuild(
    {
      label: 'flotilla-renderer',
      moduleDir: rendererModuleDir,
      cacheName: '',
      binaries: ['flotilla-renderer'],
      args: (out) => ['-o', join(out, 'flotilla-renderer'), '.'],
    },
    opts,
  );
  return join(dir, 'flotilla-renderer');
}

/** The reference CLIs, built from the module versions the worker links. */
export async function ensureReferenceTools(
  opts: BuildOptions = {},
): Promise<{ readonly helm: string; readonly kustomize: string }> {
  const dir = await ensureModuleBuild(
    {
      label: 'reference helm and kustomize',
      moduleDir: referenceModuleDir,
      cacheName: 'reference-',
      binaries: ['helm', 'kustomize'],
      // A path ending in /v5 names its binary after the element before: kustomize.
      args: (out) => ['-o', `${out}/`, 'helm.sh/helm/v4/cmd/helm', 'sigs.k8s.io/kustomize/kustomize/v5'],
    },
    opts,
  );
  return { helm: join(dir, 'helm'), kustomize: join(dir, 'kustomize') };
}

interface ModuleBuild {
  readonly label: string;
  readonly moduleDir: string;
  /** Prefix of the cache directory name, before the hash. */
  readonly cacheName: string;
  readonly binaries: readonly string[];
  args(outDir: string): string[];
}

async function ensureModuleBuild(b: ModuleBuild, opts: BuildOptions): Promise<string> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`[renderer] ${line}\n`));
  const root = join(opts.cacheDir ?? defaultCacheDir(), 'renderer');
  const dir = join(root, `${b.cacheName}${moduleHash(b.moduleDir)}`);
  const complete = () => b.binaries.every((n) => existsSync(join(dir, n)));
  if (complete()) return dir;

  mkdirSync(root, { recursive: true });
  const unlock = await lockDirectory(`${dir}.lock`, log, b.label);
  try {
    // Another process may have finished the same build while this one waited.
    if (complete()) return dir;
    const go = opts.go ?? process.env.GO ?? 'go';
    const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    const started = Date.now();
    try {
      await withProgress(
        log,
        `building ${b.label} (go build in ${b.moduleDir})`,
        // -mod=readonly: go.sum is committed, a build never edits go.mod behind our back.
        run(
          go,
          ['build', '-trimpath', '-buildvcs=false', '-mod=readonly', '-ldflags', '-s -w', ...b.args(tmp)],
          {
            cwd: b.moduleDir,
            env: {
              ...process.env,
              // Static, and no C toolchain needed.
              CGO_ENABLED: '0',
              // A go.work further up must not change what the module resolves to.
              GOWORK: 'off',
            },
          },
        ),
      );
      // Renaming the whole directory means readers only ever see a complete build.
      rmSync(dir, { recursive: true, force: true });
      renameSync(tmp, dir);
      log(`${b.label} ready in ${dir} (${formatElapsed(Date.now() - started)})`);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    return dir;
  } finally {
    unlock();
  }
}

function run(command: string, args: readonly string[], opts: { cwd: string; env: NodeJS.ProcessEnv }) {
  return runCommand(command, args, opts, (message, cause) =>
    cause === undefined
      ? new RendererBuildError(message)
      : new RendererBuildError(`${message} (the renderer needs Go on PATH or $GO)`, { cause }),
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const path = await ensureRenderer();
  process.stdout.write(`${path}\n`);
  if (process.argv.includes('--reference')) {
    const ref = await ensureReferenceTools();
    process.stdout.write(`${ref.helm}\n${ref.kustomize}\n`);
  }
}
