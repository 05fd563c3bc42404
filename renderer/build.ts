/**
 * Builds the renderer worker (`flotilla-renderer`, the Go module beside this file)
 * from the Go module proxy into a cache keyed by its sources, the way the test bed
 * builds Kubernetes (test/bed/src/kube-build.ts): a cold build takes a few minutes on
 * two cores, afterwards finding the binary is a hash of a few files.
 *
 * Also builds the reference `helm` and `kustomize` CLIs from the same module
 * versions (renderer/reference/), which the differential tests compare against.
 *
 * Also cross-builds the worker for another platform, such as the hub's arm64 Lambda
 * functions (`lambdaRendererTarget`), cached apart from the host's build.
 *
 * Run as `node renderer/build.ts [--reference] [--target linux/arm64]` to print the path(s).
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
} from 'node:fs';
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

/** A platform to cross-build the worker for, in Go's terms (`GOOS`/`GOARCH`). */
export interface RendererTarget {
  readonly goos: 'linux';
  readonly goarch: 'arm64' | 'amd64';
}

/** The hub's Lambda functions run on Graviton: the worker they spawn must be linux/arm64. */
export const lambdaRendererTarget: RendererTarget = { goos: 'linux', goarch: 'arm64' };

export interface RendererBuildOptions extends BuildOptions {
  /**
   * Cross-build for this platform instead of the host's, into a cache directory of its
   * own (`renderer/<goos>-<goarch>-<key>/`). Unset: the host build, as the tests use.
   */
  readonly target?: RendererTarget;
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
export async function ensureRenderer(opts: RendererBuildOptions = {}): Promise<string> {
  const { target } = opts;
  const dir = await ensureModuleBuild(
    {
      label: target ? `flotilla-renderer for ${target.goos}/${target.goarch}` : 'flotilla-renderer',
      moduleDir: rendererModuleDir,
      cacheName: target ? `${target.goos}-${target.goarch}-` : '',
      binaries: ['flotilla-renderer'],
      args: (out) => ['-o', join(out, 'flotilla-renderer'), '.'],
      ...(target ? { env: { GOOS: target.goos, GOARCH: target.goarch } } : {}),
    },
    opts,
  );
  return join(dir, 'flotilla-renderer');
}

/** ELF `e_machine` values of the architectures the worker is built for. */
const elfMachines: Readonly<Record<number, RendererTarget['goarch']>> = { 62: 'amd64', 183: 'arm64' };

/**
 * The platform an executable was built for, read from its ELF header, or `undefined`
 * when the file is no 64-bit little-endian ELF executable of a known architecture.
 * Lets a deployment refuse a worker built for the wrong machine before Lambda finds out
 * with "exec format error".
 */
export function executableTarget(path: string): RendererTarget | undefined {
  const header = Buffer.alloc(20);
  const fd = openSync(path, 'r');
  try {
    if (readSync(fd, header, 0, header.length, 0) < header.length) return undefined;
  } finally {
    closeSync(fd);
  }
  // \x7fELF, ELFCLASS64, ELFDATA2LSB; e_type at 16: 2 executable, 3 position-independent
  // executable (or shared object); e_machine at 18.
  const elf = header.readUInt32BE(0) === 0x7f454c46 && header[4] === 2 && header[5] === 1;
  const type = header.readUInt16LE(16);
  if (!elf || (type !== 2 && type !== 3)) return undefined;
  const goarch = elfMachines[header.readUInt16LE(18)];
  return goarch ? { goos: 'linux', goarch } : undefined;
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
  /** Added to the build's environment (GOOS and GOARCH of a cross build). */
  readonly env?: Readonly<Record<string, string>>;
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
              ...b.env,
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

/** Parses `linux/arm64` (the form `go tool dist list` prints). */
export function parseRendererTarget(text: string): RendererTarget {
  const [goos, goarch, ...rest] = text.split('/');
  if (goos !== 'linux' || (goarch !== 'arm64' && goarch !== 'amd64') || rest.length > 0) {
    throw new RendererBuildError(
      `unsupported renderer target "${text}": expected linux/arm64 or linux/amd64`,
    );
  }
  return { goos, goarch };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const at = process.argv.indexOf('--target');
  const targetText = at >= 0 ? process.argv[at + 1] : undefined;
  if (at >= 0 && targetText === undefined)
    throw new RendererBuildError('--target needs a value: linux/arm64');
  const target = targetText === undefined ? undefined : parseRendererTarget(targetText);
  const path = await ensureRenderer(target ? { target } : {});
  process.stdout.write(`${path}\n`);
  if (process.argv.includes('--reference')) {
    const ref = await ensureReferenceTools();
    process.stdout.write(`${ref.helm}\n${ref.kustomize}\n`);
  }
}
