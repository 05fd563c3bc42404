/**
 * The CLI's configuration, read once per run: flags win over environment variables,
 * which win over the config file (`~/.config/flotilla/config.yaml`). Problems are
 * reported together, naming where each value came from. Secrets are never printed.
 */
import { join, resolve } from 'node:path';
import { tenantOfKey } from '@flotilla/shared/hub';
import { parse } from 'yaml';
import { ConfigError } from './errors.ts';
import { type OutputFormat, outputFormats } from './output.ts';

export type AdminAuth =
  | { readonly kind: 'key'; readonly key: string }
  | { readonly kind: 'iam'; readonly region: string }
  | { readonly kind: 'none' };

export interface CliConfig {
  /** Hub API base URL without a trailing slash; undefined when nothing set it. */
  readonly hubUrl: string | undefined;
  /** Where the hub URL came from, for messages. */
  readonly hubUrlSource: string | undefined;
  readonly adminAuth: AdminAuth;
  /**
   * The tenant whose admin this is (--tenant, FLOTILLA_TENANT, or the tenant a tenant key
   * `flt_t_<tenant>.…` names): scoped commands call `/v1/tenants/<tenant>/...`.
   */
  readonly tenant: string | undefined;
  /** The kubeconfig files to read (KUBECONFIG may list several), and the context to use. */
  readonly kubeconfig: { readonly paths: readonly string[]; readonly explicit: boolean };
  readonly context: string | undefined;
  readonly output: OutputFormat;
  /** Where local agents' pid files and logs go. */
  readonly stateDir: string;
  /** A one-time registration token from FLOTILLA_REGISTRATION_TOKEN (bootstrap without admin rights). */
  readonly registrationToken: string | undefined;
  /** The config file that was read, if any. */
  readonly configFile: string | undefined;
  /** Non-fatal remarks (a config file others can read, say), shown on stderr. */
  readonly warnings: readonly string[];
}

export interface GlobalFlags {
  readonly hub?: string | undefined;
  readonly config?: string | undefined;
  readonly kubeconfig?: string | undefined;
  readonly context?: string | undefined;
  readonly output?: string | undefined;
  readonly adminKeyFile?: string | undefined;
  readonly tenant?: string | undefined;
}

export interface ConfigSources {
  readonly flags: GlobalFlags;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  readonly homeDir: string;
  /** Reads a text file; throws (ENOENT and all) when it cannot. */
  readonly readFile: (path: string) => string;
  /** The file's permission bits, when it can tell. */
  readonly fileMode?: (path: string) => number | undefined;
}

const fileKeys = ['hub', 'adminKey', 'adminKeyFile', 'auth', 'region', 'output'] as const;
type FileConfig = Partial<Record<(typeof fileKeys)[number], string>>;

/** The default config file: `$XDG_CONFIG_HOME/flotilla/config.yaml`, else `~/.config/flotilla/config.yaml`. */
export function defaultConfigPath(env: ConfigSources['env'], homeDir: string): string {
  return join(env.XDG_CONFIG_HOME || join(homeDir, '.config'), 'flotilla', 'config.yaml');
}

/** The default state directory: `$FLOTILLA_STATE_DIR`, `$XDG_STATE_HOME/flotilla`, else `~/.local/state/flotilla`. */
export function defaultStateDir(env: ConfigSources['env'], homeDir: string): string {
  return env.FLOTILLA_STATE_DIR || join(env.XDG_STATE_HOME || join(homeDir, '.local', 'state'), 'flotilla');
}

/**
 * Reads and validates the configuration.
 *
 * @throws {ConfigError} listing every problem.
 * @example
 * const config = loadConfig({ flags: { hub: 'http://127.0.0.1:8080' }, env: process.env, cwd: process.cwd(),
 *   homeDir: os.homedir(), readFile: (p) => fs.readFileSync(p, 'utf8') });
 */
export function loadConfig(src: ConfigSources): CliConfig {
  const { flags, env } = src;
  const problems: string[] = [];
  const warnings: string[] = [];
  const abs = (p: string) => resolve(src.cwd, p.startsWith('~/') ? join(src.homeDir, p.slice(2)) : p);

  // The config file: named by a flag or FLOTILLA_CONFIG (must exist), else the default (may be absent).
  const named = flags.config ?? (env.FLOTILLA_CONFIG || undefined);
  const configPath = named ? abs(named) : defaultConfigPath(env, src.homeDir);
  const file: FileConfig = {};
  let configFile: string | undefined;
  let text: string | undefined;
  try {
    text = src.readFile(configPath);
  } catch (err) {
    if (named || (err as NodeJS.ErrnoException).code !== 'ENOENT') {
      problems.push(`cannot read the config file ${configPath}: ${(err as Error).message}`);
    }
  }
  if (text !== undefined) {
    configFile = configPath;
    try {
      const value: unknown = parse(text) ?? {};
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        problems.push(`${configPath}: expected a mapping of ${fileKeys.join(', ')}`);
      } else {
        for (const [key, v] of Object.entries(value)) {
          if (!(fileKeys as readonly string[]).includes(key)) {
            problems.push(`${configPath}: unknown key "${key}" (known: ${fileKeys.join(', ')})`);
          } else if (typeof v !== 'string') {
            problems.push(`${configPath}: "${key}" must be a string`);
          } else (file as Record<string, string>)[key] = v;
        }
      }
    } catch (err) {
      problems.push(`${configPath}: not valid YAML: ${(err as Error).message.split('\n')[0]}`);
    }
    const mode = src.fileMode?.(configPath);
    if (file.adminKey && mode !== undefined && (mode & 0o077) !== 0) {
      warnings.push(`${configPath} holds the admin key and others can read it: chmod 600 ${configPath}`);
    }
  }

  // Hub URL.
  const hubCandidates: [string | undefined, string][] = [
    [flags.hub, '--hub'],
    [env.FLOTILLA_HUB_URL, 'FLOTILLA_HUB_URL'],
    [file.hub, `hub in ${configPath}`],
  ];
  const hubEntry = hubCandidates.find(([v]) => v !== undefined && v.trim() !== '');
  let hubUrl: string | undefined;
  if (hubEntry) {
    const raw = (hubEntry[0] as string).trim();
    if (!URL.canParse(raw) || !/^https?:$/.test(new URL(raw).protocol)) {
      problems.push(`${hubEntry[1]}: expected an http(s) URL, got "${raw}"`);
    } else hubUrl = raw.replace(/\/+$/, '');
  }

  // Admin credentials: a key (flag file, env, env file, config file) or IAM.
  let adminKey: string | undefined;
  const keyFile = flags.adminKeyFile ?? (env.FLOTILLA_ADMIN_KEY_FILE || undefined);
  if (keyFile) {
    try {
      adminKey = src.readFile(abs(keyFile)).trim();
      if (!adminKey) problems.push(`the admin key file ${abs(keyFile)} is empty`);
    } catch (err) {
      problems.push(`cannot read the admin key file ${abs(keyFile)}: ${(err as Error).message}`);
    }
  } else if (env.FLOTILLA_ADMIN_KEY?.trim()) adminKey = env.FLOTILLA_ADMIN_KEY.trim();
  else if (file.adminKeyFile) {
    try {
      adminKey = src.readFile(abs(file.adminKeyFile)).trim();
    } catch (err) {
      problems.push(
        `cannot read adminKeyFile ${abs(file.adminKeyFile)} (from ${configPath}): ${(err as Error).message}`,
      );
    }
  } else if (file.adminKey?.trim()) adminKey = file.adminKey.trim();

  const authMode = (env.FLOTILLA_AUTH || file.auth || (adminKey ? 'key' : 'none')).trim();
  let adminAuth: AdminAuth = { kind: 'none' };
  if (authMode === 'key') {
    if (adminKey) adminAuth = { kind: 'key', key: adminKey };
    else
      problems.push(
        'auth is "key" but no admin key is set (FLOTILLA_ADMIN_KEY, --admin-key-file or adminKey)',
      );
  } else if (authMode === 'iam') {
    const fromUrl = hubUrl
      ? /\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$/.exec(new URL(hubUrl).host)?.[1]
      : undefined;
    const region = env.AWS_REGION || env.AWS_DEFAULT_REGION || file.region || fromUrl;
    if (!region)
      problems.push('auth is "iam" but no region is known: set AWS_REGION or region in the config file');
    adminAuth = { kind: 'iam', region: region ?? '' };
  } else if (authMode !== 'none') {
    problems.push(`FLOTILLA_AUTH / auth: expected "key" or "iam", got "${authMode}"`);
  }

  // A tenant's admin: named, or implied by a tenant key.
  const keyTenant = adminAuth.kind === 'key' ? tenantOfKey(adminAuth.key) : undefined;
  const tenantEntry: [string, string] | undefined = flags.tenant?.trim()
    ? [flags.tenant.trim(), '--tenant']
    : env.FLOTILLA_TENANT?.trim()
      ? [env.FLOTILLA_TENANT.trim(), 'FLOTILLA_TENANT']
      : undefined;
  if (tenantEntry && !/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(tenantEntry[0])) {
    problems.push(`${tenantEntry[1]}: expected a tenant name (a DNS-1123 label), got "${tenantEntry[0]}"`);
  } else if (tenantEntry && keyTenant !== undefined && keyTenant !== tenantEntry[0]) {
    problems.push(
      `${tenantEntry[1]} names tenant "${tenantEntry[0]}", but the admin key is a key of tenant "${keyTenant}"`,
    );
  }
  const tenant = tenantEntry?.[0] ?? keyTenant;

  // Kubeconfig and context, as kubectl finds them.
  const kubeconfigEnv = env.KUBECONFIG?.split(':').filter((p) => p !== '');
  const kubeconfig = flags.kubeconfig
    ? { paths: [abs(flags.kubeconfig)], explicit: true }
    : kubeconfigEnv && kubeconfigEnv.length > 0
      ? { paths: kubeconfigEnv.map(abs), explicit: false }
      : { paths: [join(src.homeDir, '.kube', 'config')], explicit: false };

  const outputText = flags.output ?? file.output ?? 'table';
  if (!(outputFormats as readonly string[]).includes(outputText)) {
    problems.push(
      `${flags.output ? '-o/--output' : `output in ${configPath}`}: expected one of ${outputFormats.join(', ')}, got "${outputText}"`,
    );
  }

  if (problems.length > 0) {
    throw new ConfigError(
      problems.length === 1
        ? (problems[0] as string)
        : `invalid configuration:\n  - ${problems.join('\n  - ')}`,
    );
  }
  return {
    hubUrl,
    hubUrlSource: hubEntry?.[1],
    adminAuth,
    tenant,
    kubeconfig,
    context: flags.context,
    output: outputText as OutputFormat,
    stateDir: defaultStateDir(env, src.homeDir),
    registrationToken: env.FLOTILLA_REGISTRATION_TOKEN?.trim() || undefined,
    configFile,
    warnings,
  };
}

/** The hub URL, or a ConfigError that says how to set it. */
export function requireHubUrl(config: CliConfig): string {
  if (config.hubUrl) return config.hubUrl;
  throw new ConfigError(
    'no hub URL: pass --hub <url>, set FLOTILLA_HUB_URL, or put "hub: <url>" in the config file',
    {
      hint: `the config file is ${config.configFile ?? 'not present'}`,
    },
  );
}
