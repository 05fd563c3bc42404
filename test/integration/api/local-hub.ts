import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSigningKeyPair } from '@flotilla/shared';
import { loadConfig } from '../../../functions/src/config.ts';
import type { Logger } from '../../../functions/src/http/log.ts';
import { type LocalHub, startLocalHub } from '../../../functions/src/local/server.ts';
import type { BedState } from '../../bed/src/bed.ts';
import { bedHubEnv } from '../../support/hub.ts';

let counter = 0;

export interface ApiHub extends LocalHub {
  readonly adminKey: string;
  readonly webhookSecret: string;
  readonly logLines: string[];
  /** fetch against the hub: `path` is joined to its URL. */
  call(path: string, init?: RequestInit & { token?: string | undefined }): Promise<Response>;
  /** An admin call with the admin key. */
  admin(path: string, init?: RequestInit & { json?: unknown }): Promise<Response>;
}

/** A local hub server of its own (fresh tables and queues) on the bed's services, reached over real HTTP. */
export async function startApiHub(
  bed: BedState,
  fleetRepoUrl: string,
  env: Record<string, string> = {},
): Promise<ApiHub> {
  const { privateKeyPem } = generateSigningKeyPair();
  const adminKey = `adm_${randomBytes(24).toString('base64url')}`;
  const webhookSecret = randomBytes(24).toString('hex');
  const config = loadConfig({
    ...bedHubEnv(bed, {
      prefix: `api${process.pid % 10000}-${Date.now().toString(36)}-${counter++}`,
      fleetRepoUrl,
      signingKeyPem: privateKeyPem,
      gitCacheDir: mkdtempSync(join(tmpdir(), 'flotilla-api-git-')),
      adminKey,
      webhookSecret,
    }),
    ...env,
  });
  const logLines: string[] = [];
  const log: Logger = {
    info: (message, fields) => logLines.push(JSON.stringify({ level: 'info', message, ...fields })),
    warn: (message, fields) => logLines.push(JSON.stringify({ level: 'warn', message, ...fields })),
    error: (message, fields) => logLines.push(JSON.stringify({ level: 'error', message, ...fields })),
  };
  const local = await startLocalHub({
    config,
    credentials: { accessKeyId: 'bed', secretAccessKey: 'bed' },
    log,
  });
  const call: ApiHub['call'] = (path, init = {}) => {
    const { token, ...rest } = init;
    const headers = new Headers(rest.headers);
    if (token !== undefined) headers.set('authorization', `Bearer ${token}`);
    return fetch(`${local.url}${path}`, { ...rest, headers });
  };
  const admin: ApiHub['admin'] = (path, init = {}) => {
    const { json, ...rest } = init;
    const headers = new Headers(rest.headers);
    if (json !== undefined) headers.set('content-type', 'application/json');
    return call(path, {
      ...rest,
      headers,
      token: adminKey,
      ...(json !== undefined ? { body: JSON.stringify(json) } : {}),
    });
  };
  return Object.assign(local, { adminKey, webhookSecret, logLines, call, admin });
}

/** The `error` of a JSON error response. */
export async function errorOf(res: Response): Promise<{
  code: string;
  message: string;
  field?: string;
  problems?: { field: string; message: string }[];
  requestId?: string;
}> {
  const body = (await res.json()) as { error: never };
  return body.error;
}
