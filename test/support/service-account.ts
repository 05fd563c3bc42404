/**
 * A connection to a bed API server as a service account rather than as its admin, with a
 * token from the TokenRequest API: how tests check what RBAC lets the agent (or a tenant's
 * account) do.
 */
import type { KubeClient } from '../../agent/src/kube/client.ts';
import { type KubeConnection, loadKubeConnection } from '../../agent/src/kube/connection.ts';

export async function serviceAccountConnection(
  admin: Pick<KubeClient, 'request'>,
  kubeconfigPath: string,
  namespace: string,
  name = 'flotilla-agent',
): Promise<KubeConnection> {
  const res = await admin.request<{ status: { token: string } }>(
    'POST',
    `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`,
    {
      body: {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: { expirationSeconds: 3600 },
      },
    },
  );
  const connection = await loadKubeConnection({ kind: 'kubeconfig', path: kubeconfigPath });
  const token = res.body.status.token;
  return {
    server: connection.server,
    tls: { ca: connection.tls.ca },
    token: () => token,
    description: `service account ${namespace}/${name}`,
  };
}
