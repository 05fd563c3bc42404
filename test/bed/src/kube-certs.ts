import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from './process.ts';

export interface CertPair {
  readonly cert: string;
  readonly key: string;
}

/** Paths of one plane's certificates and keys; each plane has its own CA. */
export interface PlanePki {
  readonly ca: CertPair;
  readonly apiserver: CertPair;
  readonly admin: CertPair;
  readonly controllerManager: CertPair;
  readonly scheduler: CertPair;
  readonly kwok: CertPair;
  /** Signs service-account tokens (apiserver) and mints them (controller-manager). */
  readonly serviceAccount: { readonly key: string; readonly pub: string };
}

/** First address of the service range, which in-cluster clients dial as kubernetes.default. */
export const serviceClusterIpRange = '10.96.0.0/12';
const kubernetesServiceIp = '10.96.0.1';

/**
 * Makes a CA, the API server's serving certificate and one client certificate per
 * component with openssl (Node can check certificates but not issue them). EC P-256
 * keys keep generation at a few milliseconds each.
 */
export async function generatePki(dir: string, planeName: string): Promise<PlanePki> {
  mkdirSync(dir, { recursive: true });
  const pair = (name: string): CertPair => ({
    cert: join(dir, `${name}.crt`),
    key: join(dir, `${name}.key`),
  });
  const pki: PlanePki = {
    ca: pair('ca'),
    apiserver: pair('apiserver'),
    admin: pair('admin'),
    controllerManager: pair('kube-controller-manager'),
    scheduler: pair('kube-scheduler'),
    kwok: pair('kwok'),
    serviceAccount: { key: join(dir, 'sa.key'), pub: join(dir, 'sa.pub') },
  };

  await issue(dir, 'ca', pki.ca, `/CN=flotilla-bed-${planeName}-ca`, [
    'basicConstraints = critical,CA:TRUE',
    'keyUsage = critical,keyCertSign,cRLSign,digitalSignature',
    'subjectKeyIdentifier = hash',
  ]);
  const leaf = (usage: 'serverAuth' | 'clientAuth') => [
    'basicConstraints = critical,CA:FALSE',
    'keyUsage = critical,digitalSignature,keyEncipherment',
    `extendedKeyUsage = ${usage}`,
    'subjectKeyIdentifier = hash',
    'authorityKeyIdentifier = keyid',
  ];
  const sans = [
    'IP:127.0.0.1',
    `IP:${kubernetesServiceIp}`,
    'DNS:localhost',
    'DNS:kubernetes',
    'DNS:kubernetes.default',
    'DNS:kubernetes.default.svc',
    'DNS:kubernetes.default.svc.cluster.local',
  ];
  await Promise.all([
    issue(
      dir,
      'apiserver',
      pki.apiserver,
      '/CN=kube-apiserver',
      [...leaf('serverAuth'), `subjectAltName = ${sans.join(',')}`],
      pki.ca,
    ),
    // Group system:masters is bound to cluster-admin by the API server's bootstrap policy.
    issue(dir, 'admin', pki.admin, '/O=system:masters/CN=flotilla-admin', leaf('clientAuth'), pki.ca),
    // The controller-manager runs every controller with its own identity rather than
    // one service account per controller: minting ~40 of those serially added 5 s to
    // every plane start. That needs cluster-admin, hence system:masters.
    issue(
      dir,
      'kube-controller-manager',
      pki.controllerManager,
      '/O=system:masters/CN=system:kube-controller-manager',
      leaf('clientAuth'),
      pki.ca,
    ),
    // The bootstrap RBAC role system:kube-scheduler is bound to this user name.
    issue(dir, 'kube-scheduler', pki.scheduler, '/CN=system:kube-scheduler', leaf('clientAuth'), pki.ca),
    // kwok writes node and pod status, leases and deletes pods: no narrow built-in role covers that.
    issue(dir, 'kwok', pki.kwok, '/O=system:masters/CN=kwok', leaf('clientAuth'), pki.ca),
  ]);

  const sa = generateKeyPairSync('ec', {
    namedCurve: 'prime256v1',
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  writeFileSync(pki.serviceAccount.key, sa.privateKey, { mode: 0o600 });
  writeFileSync(pki.serviceAccount.pub, sa.publicKey);
  return pki;
}

async function issue(
  dir: string,
  name: string,
  out: CertPair,
  subject: string,
  extensions: readonly string[],
  signer?: CertPair,
): Promise<void> {
  // A config of our own, so the distribution's openssl.cnf adds no extensions of its own.
  const config = join(dir, `${name}.cnf`);
  writeFileSync(config, ['[req]', 'distinguished_name = dn', '[dn]', '[ext]', ...extensions, ''].join('\n'));
  await run('openssl', [
    'req',
    '-x509',
    '-config',
    config,
    '-extensions',
    'ext',
    ...(signer ? ['-CA', signer.cert, '-CAkey', signer.key] : []),
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    out.key,
    '-out',
    out.cert,
    '-days',
    '3650',
    '-subj',
    subject,
  ]);
}
