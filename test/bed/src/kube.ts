/**
 * Real Kubernetes control planes for tests and the local demo: etcd, kube-apiserver,
 * kube-controller-manager, kube-scheduler and kwok (fake nodes), built from the Go
 * module proxy and started as plain processes on loopback ports.
 */

export interface KubeBinaries {
  dir: string;
  etcd: string;
  kubeApiserver: string;
  kubeControllerManager: string;
  kubeScheduler: string;
  kubectl: string;
  kwok: string;
  /** kwok config holding the node and pod stages that make fake objects Ready. */
  kwokConfig: string;
  versions: { kubernetes: string; etcd: string; kwok: string };
}

export interface ControlPlane {
  name: string;
  dir: string;
  /** https://127.0.0.1:<port> */
  server: string;
  /** Admin kubeconfig (client certificate in group system:masters), context named after the plane. */
  kubeconfigPath: string;
  /** Every process of the plane, also written to `<dir>/plane.json` for cleanup by another process. */
  pids: number[];
  /** Names of the fake nodes kwok manages. */
  nodes: string[];
  stop(): Promise<void>;
}

export interface StartControlPlaneOptions {
  name: string;
  dir: string;
  bins: KubeBinaries;
  log: (line: string) => void;
  /** Fake nodes to create; 1 when not given. */
  nodes?: number;
  /** How long the whole start may take before it fails; 120 s when not given. */
  timeoutMs?: number;
}

export { ensureKubeBinaries, kubeModulesDir, kubeVersions } from './kube-build.ts';
export { startControlPlane } from './kube-plane.ts';
