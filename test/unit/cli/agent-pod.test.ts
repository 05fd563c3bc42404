import { KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { AgentPodError, inClusterEndpoint } from '../../../cli/src/bootstrap/agent-pod.ts';

function kubeconfig(cluster: { server: string; caData?: string }): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', ...cluster }],
    users: [{ name: 'u', token: 't' }],
    contexts: [{ name: 'ctx', cluster: 'c', user: 'u' }],
    currentContext: 'ctx',
  });
  return kc;
}

describe('inClusterEndpoint: the API server as a pod sees it', () => {
  it('takes the service host and port from the server URL, and the CA from the kubeconfig', () => {
    const e = inClusterEndpoint(
      kubeconfig({ server: 'https://127.0.0.1:36443', caData: Buffer.from('CA PEM').toString('base64') }),
    );
    expect(e).toEqual({ host: '127.0.0.1', port: '36443', ca: Buffer.from('CA PEM') });
  });

  it('strips the brackets of an IPv6 host (KUBERNETES_SERVICE_HOST has none) and defaults the port to 443', () => {
    const e = inClusterEndpoint(kubeconfig({ server: 'https://[fd00::1]', caData: 'Q0E=' }));
    expect(e).toMatchObject({ host: 'fd00::1', port: '443' });
  });

  it('refuses a server a pod could not reach the same way: plain http, or no CA', () => {
    expect(() => inClusterEndpoint(kubeconfig({ server: 'http://127.0.0.1:8080', caData: 'Q0E=' }))).toThrow(
      AgentPodError,
    );
    expect(() => inClusterEndpoint(kubeconfig({ server: 'https://127.0.0.1:6443' }))).toThrow(
      /gives no CA for https:\/\/127\.0\.0\.1:6443/,
    );
  });
});
