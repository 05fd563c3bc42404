/**
 * `flotilla bootstrap`: one command from "a kubeconfig context" to "the hub has the
 * agent's first heartbeat". Idempotent: the agent's Secret in the cluster is what ties a
 * Kubernetes cluster to its name at the hub, so a rerun finds it, checks its token with the
 * hub and repairs what is missing or stale, and never registers twice.
 */
import { CliError } from '../core/errors.ts';
import { ExitCode } from '../core/exit-codes.ts';
import type { ClusterView, HubPublicKey, Labels, Registered } from '../hub/hub-client.ts';
import { HubApiError } from '../hub/hub-client.ts';
import type { ApplyResult, SpokeCluster } from '../kube/spoke-cluster.ts';
import type { LocalAgents } from './local-agent.ts';
import {
  type AgentSecretInput,
  agentManifests,
  agentNames,
  agentSecretData,
  objectRef,
  secretKeys,
  type TenantRbacInput,
} from './manifests.ts';

/** The hub calls bootstrap makes; the CLI's HubClient is one. */
export interface BootstrapHub {
  readonly hasAdmin: boolean;
  getCluster(id: string): Promise<ClusterView | undefined>;
  registerCluster(name: string, labels: Labels): Promise<Registered>;
  registerWithToken(registrationToken: string, name: string, labels: Labels): Promise<Registered>;
  ownCluster(
    id: string,
    clusterToken: string,
  ): Promise<{ cluster: ClusterView; publicKey: HubPublicKey } | undefined>;
  rotateClusterToken(id: string): Promise<string>;
  relabelCluster(id: string, change: { set?: Labels }): Promise<{ cluster: ClusterView }>;
  publicKey(): Promise<HubPublicKey>;
  deregisterCluster(id: string): Promise<void>;
}

export interface BootstrapPorts {
  readonly hub: BootstrapHub;
  readonly kube: SpokeCluster;
  readonly localAgents?: LocalAgents;
  /** A line of progress (stderr). */
  readonly progress: (line: string) => void;
  readonly now: () => Date;
  readonly sleep: (ms: number) => Promise<void>;
}

export type NotifyMode = 'auto' | 'sqs' | 'poll';

export interface BootstrapOptions {
  readonly cluster: string;
  readonly labels: Labels;
  readonly namespace: string;
  readonly image: string;
  /** The hub URL the agent uses (may differ from the CLI's when the cluster sees the hub by another name). */
  readonly agentHubUrl: string;
  /** Register with this one-time token instead of admin credentials. */
  readonly registrationToken?: string | undefined;
  readonly notify: NotifyMode;
  /** Region for the agent's SQS client when the queue URL does not name one (local queues). */
  readonly sqsRegion?: string | undefined;
  readonly serviceAccountAnnotations?: Labels;
  /** The fleet's tenants: their service accounts and RBAC, and the agent's right to act as them. */
  readonly tenants?: readonly TenantRbacInput[] | undefined;
  /** Take a name the hub has over for this cluster (admin): its token is rotated, the old holder locked out. */
  readonly takeOver?: boolean;
  readonly runAgent: 'none' | 'local';
  /** Extra variables for a local agent (shorter intervals in a demo, say). */
  readonly localAgentEnv?: Readonly<Record<string, string>>;
  readonly wait: boolean;
  readonly timeoutMs: number;
  readonly pollMs?: number;
}

export type RegistrationOutcome =
  /** A new registration. */
  | 'registered'
  /** The token in the cluster works: nothing to do at the hub. */
  | 'unchanged'
  /** The token in the cluster no longer worked; an admin rotated it. */
  | 'token-rotated'
  /** The cluster had been removed from the hub; it is registered again. */
  | 're-registered';

export interface BootstrapResult {
  readonly cluster: string;
  readonly context: string;
  readonly kubernetesVersion: string;
  readonly registration: RegistrationOutcome;
  readonly via: 'admin' | 'registration-token' | 'existing-token';
  readonly labels: Labels;
  readonly labelsUpdated: boolean;
  readonly hubPublicKeyId: string;
  readonly notifications: 'sqs' | 'polling';
  readonly objects: readonly { readonly object: string; readonly result: ApplyResult }[];
  readonly agent:
    | { readonly mode: 'in-cluster' }
    | { readonly mode: 'local'; readonly pid: number; readonly logFile: string; readonly started: boolean };
  /** The heartbeat waited for; null with --no-wait. */
  readonly heartbeat: { readonly at: string; readonly agentVersion: string | null } | null;
  readonly warnings: readonly string[];
}

/** A heartbeat this recent counts as the agent being up when a rerun changed nothing. */
const recentHeartbeatMs = 5 * 60_000;

/**
 * Bootstraps a spoke.
 *
 * 1. Reach the cluster and read the agent's Secret, if any: a Secret for another name is
 *    refused; one for this name has its token checked with the hub.
 * 2. Registration: keep a working token; otherwise rotate it (admin) or register (admin
 *    or registration token). A name the hub has but this cluster holds no token for
 *    belongs to another cluster: refused.
 * 3. Server-side apply namespace, RBAC, Secret and Deployment; a fresh registration whose
 *    Secret cannot be written is rolled back (admin), so a rerun starts clean.
 * 4. Optionally start the agent locally with the same configuration.
 * 5. Wait for a heartbeat newer than the one before (or a recent one when nothing changed).
 */
export async function bootstrap(ports: BootstrapPorts, opts: BootstrapOptions): Promise<BootstrapResult> {
  const { hub, kube, progress } = ports;
  const warnings: string[] = [];
  const warn = (text: string) => {
    warnings.push(text);
    progress(`warning: ${text}`);
  };

  progress(`checking ${kube.description}`);
  const kubernetesVersion = await kube.serverVersion();
  const existing = await kube.readSecret(opts.namespace, agentNames.secret);
  const existingId = existing?.[secretKeys.clusterId];
  if (existingId && existingId !== opts.cluster) {
    throw new CliError(
      ExitCode.Conflict,
      `${kube.description} is already bootstrapped as cluster "${existingId}" (Secret ${opts.namespace}/${agentNames.secret}); it cannot also be "${opts.cluster}"`,
      {
        hint: `bootstrap it as "${existingId}", or remove it first: flotilla cluster remove ${existingId} --uninstall --context ${kube.context}`,
      },
    );
  }

  // 2. Registration.
  const existingToken = existingId ? existing?.[secretKeys.token] : undefined;
  const own = existingToken ? await hub.ownCluster(opts.cluster, existingToken) : undefined;
  // A name the hub has, for which this cluster holds no working token, is another cluster's:
  // refuse before writing anything here (unless an admin takes the name over).
  const atHub = !own && hub.hasAdmin ? await hub.getCluster(opts.cluster) : undefined;
  if (atHub && !existingToken && !opts.takeOver) throw nameTaken(opts.cluster, kube);
  // The namespace first: a cluster we cannot write to fails before anything is registered.
  const [namespaceObject] = manifestsFor(opts, {});
  const namespaceResult = namespaceObject ? await kube.apply(namespaceObject) : 'unchanged';
  let state: Credentials;
  if (own && existingToken) {
    progress(`"${opts.cluster}" is registered and the token in the cluster works`);
    state = {
      registration: 'unchanged',
      via: 'existing-token',
      token: existingToken,
      hubCluster: own.cluster,
      queueUrl: own.cluster.queueUrl,
      publicKey: own.publicKey,
    };
  } else if (atHub) {
    progress(
      existingToken
        ? 'the token in the cluster is no longer accepted: rotating it'
        : `taking the name "${opts.cluster}" over: rotating its token (the old one stops working)`,
    );
    state = {
      registration: 'token-rotated',
      via: 'admin',
      token: await hub.rotateClusterToken(opts.cluster),
      hubCluster: atHub,
      queueUrl: atHub.queueUrl,
      publicKey: await hub.publicKey(),
    };
  } else if (existingToken) {
    if (hub.hasAdmin || opts.registrationToken) {
      progress(`"${opts.cluster}" is no longer registered at the hub: registering it again`);
      state = await registerFresh(ports, opts, 're-registered');
    } else {
      throw new CliError(
        ExitCode.Unauthorized,
        `the hub does not accept the token in Secret ${opts.namespace}/${agentNames.secret} (rotated, or the cluster was removed), and there are no admin credentials or registration token to fix that`,
        {
          hint: 'pass --registration-token, or ask an admin to run this bootstrap (or `flotilla cluster rotate-token --context ...`)',
        },
      );
    }
  } else {
    state = await registerFresh(ports, opts, 'registered');
  }
  const registeredNow = state.registration === 'registered' || state.registration === 're-registered';

  // Labels: a rerun with --label sets them (admin); it never removes labels.
  let labels = state.hubCluster.labels;
  let labelsUpdated = false;
  const missing = Object.fromEntries(Object.entries(opts.labels).filter(([k, v]) => labels[k] !== v));
  if (!registeredNow && Object.keys(missing).length > 0) {
    if (hub.hasAdmin) {
      progress(
        `setting labels ${Object.entries(missing)
          .map(([k, v]) => `${k}=${v}`)
          .join(',')}`,
      );
      labels = (await hub.relabelCluster(opts.cluster, { set: missing })).cluster.labels;
      labelsUpdated = true;
    } else {
      warn(
        `labels ${Object.keys(missing).join(', ')} differ at the hub and were not changed: that needs admin credentials (flotilla label)`,
      );
    }
  }

  const pinned = existing?.[secretKeys.hubPublicKey];
  if (pinned && pinned.trim() !== state.publicKey.publicKeyPem.trim()) {
    warn(
      `the hub's public key differs from the one pinned in the cluster; pinning the hub's current key ${state.publicKey.keyId}`,
    );
  }

  // Notifications: SQS or HTTPS polling (docs/edge-credentials.md).
  const sqs = notificationSettings(opts, state.queueUrl);
  if (sqs.note) progress(sqs.note);
  const secretInput: AgentSecretInput = {
    clusterId: opts.cluster,
    hubUrl: opts.agentHubUrl,
    token: state.token,
    hubPublicKeyPem: state.publicKey.publicKeyPem,
    ...(sqs.settings ? { sqs: sqs.settings } : {}),
  };
  const secretData = agentSecretData(secretInput);

  // 3. Install.
  const objects: { object: string; result: ApplyResult }[] = [];
  if (namespaceObject) {
    progress(`${objectRef(namespaceObject)} ${namespaceResult}`);
    objects.push({ object: objectRef(namespaceObject), result: namespaceResult });
  }
  for (const object of manifestsFor(opts, secretData).filter((o) => o.kind !== 'Namespace')) {
    let result: ApplyResult;
    try {
      result = await kube.apply(object);
    } catch (err) {
      if (registeredNow && object.kind === 'Secret') await rollBack(hub, opts.cluster, state.via, progress);
      throw err;
    }
    progress(`${objectRef(object)} ${result}`);
    objects.push({ object: objectRef(object), result });
  }

  // 4. A local agent.
  let agent: BootstrapResult['agent'] = { mode: 'in-cluster' };
  if (opts.runAgent === 'local') {
    if (!ports.localAgents) throw new Error('no local agent runner');
    // As the pod runs it: its service account's token and the in-cluster path, never the
    // kubeconfig this command runs with (that only serves to request the tokens).
    const { record, started } = await ports.localAgents.ensure(opts.cluster, {
      secret: secretData,
      env: {
        FLOTILLA_NAMESPACE: opts.namespace,
        // Several local agents share this machine: each its own free port.
        FLOTILLA_HTTP_ADDR: '127.0.0.1:0',
        ...opts.localAgentEnv,
      },
      pod: {
        kubeconfig: kube.kubeconfigPath,
        context: kube.context,
        namespace: opts.namespace,
        serviceAccount: agentNames.serviceAccount,
      },
    });
    progress(
      started
        ? `local agent started (pid ${record.pid}, log ${record.logFile})`
        : `local agent already running (pid ${record.pid})`,
    );
    agent = { mode: 'local', pid: record.pid, logFile: record.logFile, started };
  }

  // 5. The first heartbeat.
  let heartbeat: BootstrapResult['heartbeat'] = null;
  if (opts.wait) {
    const changed =
      state.registration !== 'unchanged' ||
      objects.some((o) => o.result !== 'unchanged') ||
      (agent.mode === 'local' && agent.started);
    heartbeat = await waitForHeartbeat(
      ports,
      opts,
      state.token,
      changed ? state.hubCluster.lastHeartbeatAt : undefined,
      agent,
    );
  }

  return {
    cluster: opts.cluster,
    context: kube.context,
    kubernetesVersion,
    registration: state.registration,
    via: state.via,
    labels,
    labelsUpdated,
    hubPublicKeyId: state.publicKey.keyId,
    notifications: sqs.settings ? 'sqs' : 'polling',
    objects,
    agent,
    heartbeat,
    warnings,
  };
}

function nameTaken(cluster: string, kube: SpokeCluster, cause?: unknown): CliError {
  return new CliError(
    ExitCode.Conflict,
    `the name "${cluster}" is already registered at the hub by another cluster: ${kube.description} holds no credentials for it`,
    {
      ...(cause ? { cause } : {}),
      hint: `choose another name; if this really is "${cluster}" and its agent was uninstalled, an admin can take the name over with --take-over (its old token stops working)`,
    },
  );
}

function manifestsFor(opts: BootstrapOptions, secretData: Readonly<Record<string, string>>) {
  return agentManifests({
    clusterId: opts.cluster,
    namespace: opts.namespace,
    image: opts.image,
    secretData,
    ...(opts.serviceAccountAnnotations ? { serviceAccountAnnotations: opts.serviceAccountAnnotations } : {}),
    ...(opts.tenants ? { tenants: opts.tenants } : {}),
  });
}

interface Credentials {
  readonly registration: RegistrationOutcome;
  readonly via: BootstrapResult['via'];
  readonly token: string;
  readonly hubCluster: ClusterView;
  readonly queueUrl: string | null;
  readonly publicKey: HubPublicKey;
}

async function registerFresh(
  ports: BootstrapPorts,
  opts: BootstrapOptions,
  outcome: 'registered' | 're-registered',
): Promise<Credentials> {
  const { hub, kube, progress } = ports;
  let registered: Registered;
  let via: BootstrapResult['via'];
  try {
    if (opts.registrationToken) {
      progress(`registering "${opts.cluster}" with the registration token`);
      registered = await hub.registerWithToken(opts.registrationToken, opts.cluster, opts.labels);
      via = 'registration-token';
    } else if (hub.hasAdmin) {
      progress(`registering "${opts.cluster}" with the hub`);
      registered = await hub.registerCluster(opts.cluster, opts.labels);
      via = 'admin';
    } else {
      throw new CliError(
        ExitCode.Config,
        `registering "${opts.cluster}" needs admin credentials or a registration token`,
        {
          hint: 'pass --registration-token (from `flotilla token create`), or set FLOTILLA_ADMIN_KEY',
        },
      );
    }
  } catch (err) {
    if (err instanceof HubApiError && err.status === 409) {
      if (outcome === 're-registered') {
        throw new CliError(
          ExitCode.Unauthorized,
          `"${opts.cluster}" is registered at the hub, but the token in Secret ${opts.namespace}/${agentNames.secret} no longer works (it was rotated); a registration token cannot replace it`,
          { cause: err, hint: 'an admin can repair it by running this bootstrap with admin credentials' },
        );
      }
      throw nameTaken(opts.cluster, kube, err);
    }
    throw err;
  }
  return {
    registration: outcome,
    via,
    token: registered.token,
    hubCluster: registered.cluster,
    queueUrl: registered.queueUrl,
    publicKey: registered.publicKey ?? (await hub.publicKey()),
  };
}

async function rollBack(
  hub: BootstrapHub,
  cluster: string,
  via: BootstrapResult['via'],
  progress: (line: string) => void,
) {
  if (via === 'admin') {
    progress(`the agent's Secret could not be written: removing the registration of "${cluster}" again`);
    await hub.deregisterCluster(cluster).catch(() => undefined);
  } else {
    progress(
      `the agent's Secret could not be written, and "${cluster}" stays registered: an admin must remove it (flotilla cluster remove ${cluster})`,
    );
  }
}

/**
 * SQS when asked, or (`auto`) when the queue is a local one (ElasticMQ, LocalStack) that
 * needs no AWS credentials; HTTPS polling otherwise, so an agent outside AWS needs no AWS
 * keys at all (docs/edge-credentials.md).
 */
export function notificationSettings(
  opts: Pick<BootstrapOptions, 'notify' | 'sqsRegion'>,
  queueUrl: string | null,
): { settings?: NonNullable<AgentSecretInput['sqs']>; note?: string } {
  if (opts.notify === 'poll') return { note: 'notifications: the agent polls the hub (--notify poll)' };
  if (!queueUrl) {
    if (opts.notify === 'sqs')
      throw new CliError(ExitCode.Failure, 'the hub gave this cluster no queue, so --notify sqs cannot work');
    return { note: 'notifications: the hub has no queue for this cluster; the agent polls' };
  }
  const url = new URL(queueUrl);
  const awsRegion = /^sqs\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$/.exec(url.host)?.[1];
  if (awsRegion) {
    if (opts.notify === 'auto') {
      return {
        note: 'notifications: the agent polls the hub (pass --notify sqs when its platform gives it AWS credentials for its queue)',
      };
    }
    return {
      settings: { queueUrl, region: opts.sqsRegion ?? awsRegion },
      note: `notifications: SQS ${queueUrl} (AWS credentials from the agent's platform)`,
    };
  }
  return {
    settings: {
      queueUrl,
      region: opts.sqsRegion ?? 'us-east-1',
      endpoint: url.origin,
      localCredentials: true,
    },
    note: `notifications: local SQS at ${url.origin}`,
  };
}

async function waitForHeartbeat(
  ports: BootstrapPorts,
  opts: BootstrapOptions,
  token: string,
  /** When the rerun changed something: a heartbeat must be newer than this one. Undefined: a recent one will do. */
  baseline: string | null | undefined,
  agent: BootstrapResult['agent'],
): Promise<{ at: string; agentVersion: string | null }> {
  const { hub, progress, now } = ports;
  const mustBeNewer = baseline !== undefined;
  const deadline = now().getTime() + opts.timeoutMs;
  progress(`waiting for the agent's first heartbeat (up to ${Math.round(opts.timeoutMs / 1000)}s)`);
  for (;;) {
    const cluster = hub.hasAdmin
      ? await hub.getCluster(opts.cluster)
      : (await hub.ownCluster(opts.cluster, token))?.cluster;
    const at = cluster?.lastHeartbeatAt;
    if (at) {
      const fresh = mustBeNewer
        ? baseline === null || Date.parse(at) > Date.parse(baseline)
        : now().getTime() - Date.parse(at) < recentHeartbeatMs;
      if (fresh) {
        progress(`heartbeat from agent ${cluster.agentVersion ?? '(unknown version)'} at ${at}`);
        return { at, agentVersion: cluster.agentVersion };
      }
    }
    if (now().getTime() >= deadline) {
      const where =
        agent.mode === 'local'
          ? `its log: ${agent.logFile}`
          : `kubectl --context ${ports.kube.context} -n ${opts.namespace} logs deploy/${agentNames.deployment}`;
      throw new CliError(
        ExitCode.Timeout,
        `no heartbeat from the agent of "${opts.cluster}" within ${Math.round(opts.timeoutMs / 1000)}s; everything else is installed`,
        {
          hint: `see ${where}; rerun bootstrap to wait again`,
        },
      );
    }
    await ports.sleep(opts.pollMs ?? 1000);
  }
}
