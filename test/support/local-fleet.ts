/**
 * The whole product on one machine, on a running test bed: a local hub (the Lambda
 * handlers behind a local HTTP server) on the bed's DynamoDB Local and ElasticMQ, a fleet
 * repository on the bed's git server that calls the hub's push webhook as a forge does,
 * and spokes bootstrapped with the real `flotilla bootstrap`, their agents running as
 * local processes. `npm start`, the end-to-end test and `npm run bench:e2e` all drive it.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSigningKeyPair } from '@flotilla/shared';
import type { FleetStatus } from '@flotilla/shared/hub';
import type { EventSink } from '@flotilla/shared/notify';
import { runCli } from '../../cli/src/cli.ts';
import { loadConfig } from '../../functions/src/config.ts';
import type { Logger } from '../../functions/src/http/log.ts';
import { type LocalHub, startLocalHub } from '../../functions/src/local/server.ts';
import type { BedState } from '../bed/src/bed.ts';
import { setWebhooks } from '../bed/src/git-server.ts';
import { exampleFleetRepo, FleetWorkingCopy } from './fleet-git.ts';
import { bedHubEnv } from './hub.ts';

export interface LocalSpoke {
  /** The cluster's name in the fleet. */
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  /** The bed control plane it runs on. */
  readonly kubeconfigPath: string;
}

export interface LocalFleetOptions {
  readonly bed: BedState;
  /** The repository's name on the bed's git server. */
  readonly repoName: string;
  /** The folder pushed as the first commit (the example fleet repo by default). */
  readonly fleetFrom?: string;
  /** The CLI's state (local agents' records, secrets and logs); a fresh temporary one by default. */
  readonly stateDir?: string;
  /** The hub's table and queue prefix (`flotilla` by default). */
  readonly prefix?: string;
  /** Where the hub's log lines go (nowhere by default). */
  readonly hubLog?: Logger;
  /** Where the hub's fleet events go (nowhere by default). */
  readonly events?: EventSink;
  /** More hub configuration (e.g. `FLOTILLA_OFFLINE_AFTER_SECONDS`), over the bed's. */
  readonly hubEnv?: Readonly<Record<string, string>>;
}

export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface Push {
  readonly commit: string;
  /** When `git push` returned (ms since the epoch): push-to-applied starts here. */
  readonly pushedAt: number;
}

const quiet: Logger = { info: () => {}, warn: () => {}, error: () => {} };

export class LocalFleet {
  readonly repo: FleetWorkingCopy;
  readonly adminKey: string;
  readonly stateDir: string;
  readonly #config: ReturnType<typeof loadConfig>;
  readonly #log: Logger;
  readonly #events: EventSink | undefined;
  readonly #bed: BedState;
  readonly #webhookSecret: string;
  #hub: LocalHub | undefined;
  #port = 0;
  #hubUrl = '';

  private constructor(
    repo: FleetWorkingCopy,
    adminKey: string,
    stateDir: string,
    config: ReturnType<typeof loadConfig>,
    log: Logger,
    events: EventSink | undefined,
    bed: BedState,
    webhookSecret: string,
  ) {
    this.repo = repo;
    this.adminKey = adminKey;
    this.stateDir = stateDir;
    this.#config = config;
    this.#log = log;
    this.#events = events;
    this.#bed = bed;
    this.#webhookSecret = webhookSecret;
  }

  /** Publishes the fleet repo, starts the hub, points the repo's push webhook at it and syncs once. */
  static async start(opts: LocalFleetOptions): Promise<LocalFleet> {
    const repo = await FleetWorkingCopy.create(
      opts.bed.git,
      opts.repoName,
      opts.fleetFrom ?? exampleFleetRepo,
    );
    const { privateKeyPem } = generateSigningKeyPair();
    const adminKey = `adm_${randomBytes(24).toString('base64url')}`;
    const webhookSecret = randomBytes(24).toString('hex');
    const stateDir = opts.stateDir ?? mkdtempSync(join(tmpdir(), 'flotilla-local-fleet-'));
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const config = loadConfig({
      ...bedHubEnv(opts.bed, {
        prefix: opts.prefix ?? 'flotilla',
        fleetRepoUrl: repo.url,
        signingKeyPem: privateKeyPem,
        gitCacheDir: join(stateDir, 'hub-git-cache'),
        adminKey,
        webhookSecret,
      }),
      ...opts.hubEnv,
    });
    const fleet = new LocalFleet(
      repo,
      adminKey,
      stateDir,
      config,
      opts.hubLog ?? quiet,
      opts.events,
      opts.bed,
      webhookSecret,
    );
    try {
      await fleet.startHub();
      setWebhooks(opts.bed.git.reposDir, opts.repoName, [
        { url: `${fleet.hubUrl}/v1/webhooks/git`, secret: webhookSecret },
      ]);
      await fleet.admin('POST', '/v1/admin/sync');
    } catch (err) {
      await fleet.stop();
      throw err;
    }
    return fleet;
  }

  /**
   * Points the push webhook of another repository on the bed's git server (a fleet
   * source's, `<repoName>.git`) at the hub, naming the source, as a team sets up its repo.
   */
  addSourceWebhook(repoName: string, source: string): void {
    setWebhooks(this.#bed.git.reposDir, repoName, [
      {
        url: `${this.#hubUrl}/v1/webhooks/git?source=${encodeURIComponent(source)}`,
        secret: this.#webhookSecret,
      },
    ]);
  }

  get hubUrl(): string {
    return this.#hubUrl;
  }

  get hubRunning(): boolean {
    return this.#hub !== undefined;
  }

  /** Starts the hub (again): the same port, keys and tables, so agents find it where it was. */
  async startHub(): Promise<void> {
    if (this.#hub) return;
    this.#hub = await startLocalHub({
      config: this.#config,
      port: this.#port,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      log: this.#log,
      ...(this.#events ? { events: this.#events } : {}),
    });
    this.#port = Number(new URL(this.#hub.url).port);
    this.#hubUrl = this.#hub.url;
  }

  /** Stops the hub server (the bed's services stay): agents find nobody home. */
  async stopHub(): Promise<void> {
    const hub = this.#hub;
    this.#hub = undefined;
    await hub?.stop();
  }

  /** `flotilla ...`, in-process, exactly as `npx flotilla` runs it, with the admin key. */
  async flotilla(
    args: readonly string[],
    opts: { env?: Record<string, string>; onStderr?: (text: string) => void } = {},
  ): Promise<CliRun> {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCli([...args], {
      stdout: (t) => out.push(t),
      stderr: (t) => {
        err.push(t);
        opts.onStderr?.(t);
      },
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        XDG_CONFIG_HOME: join(this.stateDir, 'config'),
        FLOTILLA_STATE_DIR: this.stateDir,
        FLOTILLA_HUB_URL: this.#hubUrl,
        FLOTILLA_ADMIN_KEY: this.adminKey,
        ...opts.env,
      },
      cwd: process.cwd(),
      homeDir: this.stateDir,
    });
    return { code, stdout: out.join(''), stderr: err.join('') };
  }

  /** An admin API call; throws with the hub's error on anything but 2xx. */
  async admin<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.#hubUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.adminKey}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return JSON.parse(text) as T;
  }

  status(): Promise<FleetStatus> {
    return this.admin<FleetStatus>('GET', '/v1/admin/status');
  }

  /**
   * `flotilla bootstrap` for each spoke, all at once: registers it with its labels,
   * installs the agent's namespace, RBAC and Secret, and runs the agent as a local process
   * (kwok fakes pods, so the in-cluster Deployment never runs), waiting for its first heartbeat.
   */
  async bootstrap(
    spokes: readonly LocalSpoke[],
    opts: {
      readonly namespace?: string;
      readonly notify?: 'auto' | 'sqs' | 'poll';
      readonly agentEnv?: Readonly<Record<string, string>>;
      /** The hub URL the agents use, when it is not the hub's own (a proxy in between). */
      readonly agentHubUrl?: string;
      /** Bootstrap's progress lines, each with the cluster it is about; quiet without. */
      readonly progress?: (cluster: string, line: string) => void;
      /**
       * Install the tenants of the fleet repo (`--repo` with this fleet's working copy): a
       * service account and RBAC per tenant, which the agent writes their bundles as.
       */
      readonly tenants?: boolean;
    } = {},
  ): Promise<void> {
    const results = await Promise.all(
      spokes.map((spoke) => {
        let partial = '';
        const onStderr = (text: string) => {
          const lines = (partial + text).split('\n');
          partial = lines.pop() ?? '';
          for (const line of lines) if (line.trim()) opts.progress?.(spoke.name, line);
        };
        return this.flotilla(
          [
            'bootstrap',
            spoke.name,
            '--kubeconfig',
            spoke.kubeconfigPath,
            ...Object.entries(spoke.labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]),
            '--namespace',
            opts.namespace ?? 'flotilla-system',
            '--notify',
            opts.notify ?? 'auto',
            '--run-agent',
            'local',
            ...Object.entries(opts.agentEnv ?? {}).flatMap(([k, v]) => ['--agent-env', `${k}=${v}`]),
            ...(opts.agentHubUrl ? ['--agent-hub-url', opts.agentHubUrl] : []),
            ...(opts.tenants ? ['--repo', this.repo.dir] : []),
            '--timeout',
            '120s',
            ...(opts.progress ? [] : ['--quiet']),
          ],
          { onStderr },
        );
      }),
    );
    const failed = results.flatMap((r, i) =>
      r.code === 0 ? [] : [`${spokes[i]?.name}: ${r.stderr.trim()}`],
    );
    if (failed.length > 0) throw new Error(`bootstrap failed:\n${failed.join('\n')}`);
  }

  /** Stops the agents this fleet started. */
  async stopAgents(): Promise<void> {
    await this.flotilla(['local-agent', 'stop', '--all', '--quiet']);
  }

  /**
   * Edits the working copy and pushes one commit; the git server then calls the hub's
   * webhook, which syncs, which notifies the clusters that changed.
   */
  async push(message: string, edit: (repo: FleetWorkingCopy) => void): Promise<Push> {
    edit(this.repo);
    const commit = await this.repo.commitAsync(message);
    return { commit, pushedAt: Date.now() };
  }

  /** Polls the fleet status until `done` says it is what we wait for. */
  async waitFor(
    what: string,
    done: (s: FleetStatus) => boolean,
    opts: { timeoutMs?: number; intervalMs?: number } = {},
  ): Promise<FleetStatus> {
    const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
    let last: FleetStatus | undefined;
    let lastError: unknown;
    for (;;) {
      try {
        last = await this.status();
        if (done(last)) return last;
      } catch (err) {
        lastError = err;
      }
      if (Date.now() > deadline) {
        const detail = last ? describeStatus(last) : String(lastError);
        throw new Error(`timed out waiting for ${what}; last status:\n${detail}`);
      }
      await new Promise((r) => setTimeout(r, opts.intervalMs ?? 250));
    }
  }

  /** Waits until the hub has synced `commit` and the named clusters (all by default) are in sync. */
  waitInSync(
    opts: { commit?: string; clusters?: readonly string[]; timeoutMs?: number } = {},
  ): Promise<FleetStatus> {
    return this.waitFor(
      opts.commit ? `every cluster in sync at ${opts.commit.slice(0, 12)}` : 'every cluster in sync',
      (s) =>
        (opts.commit === undefined || s.sync?.commit === opts.commit) &&
        s.clusters.length > 0 &&
        s.clusters.filter((c) => !opts.clusters || opts.clusters.includes(c.id)).every((c) => c.inSync),
      opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs },
    );
  }

  /** Stops the agents and the hub, and removes the working copy. The bed is its owner's to stop. */
  async stop(): Promise<void> {
    await this.stopAgents().catch(() => undefined);
    await this.stopHub().catch(() => undefined);
    this.repo.dispose();
  }
}

/** One line per cluster: its state and each bundle's, for messages. */
export function describeStatus(s: FleetStatus): string {
  return s.clusters
    .map(
      (c) =>
        `${c.id}: ${c.connection} ${c.state} desired=${c.desired?.generation ?? '-'} applied=${c.appliedGeneration ?? '-'} inSync=${c.inSync} [${c.bundles
          .map((b) => `${b.name}=${b.state}${b.upToDate ? '' : '(stale)'}`)
          .join(' ')}]`,
    )
    .join('\n');
}
