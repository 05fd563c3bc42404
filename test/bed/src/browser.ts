/**
 * The test bed's real browser: headless Chromium from Debian's `chromium` package,
 * driven by playwright-core with that executable (playwright-core never downloads a
 * browser of its own). On a Debian machine where it is missing and this process is root,
 * it is installed with apt-get once, under a lock so that parallel test workers and
 * concurrent runs on one machine do not run apt twice.
 */
import { accessSync, constants, mkdirSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { lockDirectory } from '../../../scripts/build-support.ts';
import { defaultCacheDir } from './bed.ts';
import { formatElapsed, type Log, run, withProgress } from './process.ts';

/**
 * Debian's packages installed when Chromium is missing. Chromium depends on no font; without
 * one, every screenshot's text is boxes, so a small sans-serif family comes with it.
 */
const packages = ['chromium', 'fonts-dejavu-core'];

/** What is installed when Chromium is missing, and what the error tells a person to run. */
export const chromiumInstallCommand = `apt-get update && apt-get install -y --no-install-recommends ${packages.join(' ')}`;

/** Where Debian's package puts it, then names other distributions use, looked up on PATH. */
const candidates = ['/usr/bin/chromium', 'chromium', 'chromium-browser'];

/**
 * Debian's /usr/bin/chromium is a launcher script that execs this binary; the tests start
 * the binary itself, as playwright-core expects, and skip the script's start-up checks
 * (its /dev/shm check prints a shell error on machines with two /dev/shm mounts).
 */
const debianBinary = '/usr/lib/chromium/chromium';

export class ChromiumUnavailableError extends Error {
  override readonly name = 'ChromiumUnavailableError';
}

export interface ChromiumExecutable {
  readonly path: string;
  /** `chromium --version`'s line: `Chromium 156.0.8078.129 built on Debian …`. */
  readonly version: string;
}

export interface EnsureChromiumOptions {
  readonly log?: Log;
  /** Where the install lock lives; the machine-wide bed cache by default. */
  readonly cacheDir?: string;
}

const defaultLog: Log = (line) => process.stderr.write(`[browser] ${line}\n`);

/**
 * The Chromium executable: FLOTILLA_CHROMIUM when set, else the system's, installed from
 * Debian's packages when there is none. Throws ChromiumUnavailableError naming the command
 * to run when it is missing and cannot be installed here (not root, no apt-get).
 */
export async function ensureChromium(opts: EnsureChromiumOptions = {}): Promise<ChromiumExecutable> {
  const log = opts.log ?? defaultLog;
  const override = process.env.FLOTILLA_CHROMIUM;
  if (override) {
    if (!isExecutable(override))
      throw new ChromiumUnavailableError(`FLOTILLA_CHROMIUM=${override} is not an executable file`);
    return { path: override, version: await chromiumVersion(override) };
  }
  const found = findChromium();
  if (found) return { path: found, version: await chromiumVersion(found) };

  const apt = findOnPath('apt-get');
  if (!apt)
    throw new ChromiumUnavailableError(
      `Chromium is not installed and this machine has no apt-get to install it with: install Chromium (on Debian: ${chromiumInstallCommand}) or set FLOTILLA_CHROMIUM to its executable`,
    );
  if (process.getuid?.() !== 0)
    throw new ChromiumUnavailableError(
      `Chromium is not installed and this process is not root, so it cannot install it: run \`${chromiumInstallCommand}\` as root, or set FLOTILLA_CHROMIUM to a Chromium executable`,
    );

  const cacheDir = opts.cacheDir ?? defaultCacheDir();
  mkdirSync(cacheDir, { recursive: true });
  const unlock = await lockDirectory(
    join(cacheDir, 'chromium-install.lock'),
    log,
    'Chromium (apt-get install)',
  );
  try {
    // Another process may have installed it while this one waited for the lock.
    const now = findChromium();
    if (now) return { path: now, version: await chromiumVersion(now) };
    const started = Date.now();
    log(`Chromium is missing: installing it from Debian's packages (${chromiumInstallCommand})`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    try {
      await withProgress(log, 'apt-get update', run(apt, ['update', '-qq'], { env }));
      const output = await withProgress(
        log,
        'apt-get install chromium',
        run(
          apt,
          // apt-get fails at once when another apt holds the dpkg lock: wait for it instead.
          ['install', '-y', '--no-install-recommends', '-o', 'DPkg::Lock::Timeout=600', ...packages],
          { env },
        ),
      );
      const size = /After this operation, ([\d.,]+ [kMG]B) of additional disk space/.exec(output)?.[1];
      const path = findChromium();
      if (!path) throw new Error('apt-get install chromium succeeded but no chromium executable is on PATH');
      const version = await chromiumVersion(path);
      log(
        `${version} installed at ${path} in ${formatElapsed(Date.now() - started)}${size ? ` (${size} added on disk)` : ''}`,
      );
      return { path, version };
    } catch (err) {
      throw new ChromiumUnavailableError(
        `installing Chromium failed; run \`${chromiumInstallCommand}\` as root to see why (or set FLOTILLA_CHROMIUM): ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
    }
  } finally {
    unlock();
  }
}

/** Options for openBrowser. */
export interface OpenBrowserOptions extends EnsureChromiumOptions {
  /** Extra Chromium command-line switches. */
  readonly args?: readonly string[];
}

/**
 * A headless Chromium driven by playwright-core; close it with `browser.close()` (or
 * `await using`), which ends the browser process. As root, Chromium refuses to start
 * with its sandbox, so it gets --no-sandbox there.
 */
export async function openBrowser(opts: OpenBrowserOptions = {}): Promise<Browser & AsyncDisposable> {
  const { path } = await ensureChromium(opts);
  const args = [...(process.getuid?.() === 0 ? ['--no-sandbox'] : []), ...(opts.args ?? [])];
  const browser = await chromium.launch({
    executablePath: path,
    headless: true,
    args,
  });
  return Object.assign(browser, { [Symbol.asyncDispose]: () => browser.close() });
}

function findChromium(): string | undefined {
  for (const name of candidates) {
    const path = name.startsWith('/') ? (isExecutable(name) ? name : undefined) : findOnPath(name);
    if (path) return path === '/usr/bin/chromium' && isExecutable(debianBinary) ? debianBinary : path;
  }
  return undefined;
}

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const path = join(dir, name);
    if (isExecutable(path)) return path;
  }
  return undefined;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

async function chromiumVersion(path: string): Promise<string> {
  const output = await run(path, ['--version']);
  return (output.split('\n').find((line) => /^(Chromium|Google Chrome)\b/.test(line)) ?? output).trim();
}

// `node test/bed/src/browser.ts` finds (or installs) Chromium and prints its path and version.
if (import.meta.main) {
  ensureChromium().then(
    (c) => process.stdout.write(`${c.path}\n${c.version}\n`),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
