import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type EngineRequest,
  type EngineResult,
  type FleetError,
  formatFleetError,
  type RenderEngine,
  type RepoFile,
} from '@flotilla/shared';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Turns `{ path: content }` into the file list the core takes. */
export function repo(files: Record<string, string>): RepoFile[] {
  return Object.entries(files).map(([path, content]) => ({ path, content }));
}

/** Reads a directory of the project (an example or fixture repo) as repo files. */
export function readRepoDir(dir: string): RepoFile[] {
  const base = join(ROOT, dir);
  const out: RepoFile[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push({ path: relative(base, p), content: readFileSync(p, 'utf8') });
    }
  };
  walk(base);
  return out;
}

export function formatted(errors: readonly FleetError[]): string[] {
  return errors.map(formatFleetError);
}

/** A deterministic shuffle (so a failing order can be reproduced). */
export function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

export const DEPLOYMENT = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  template:
    spec:
      containers:
        - name: web
          image: nginx:1.27
`;

/**
 * A plain fake of the render engine port for tests of what surrounds rendering: overlays
 * come back unapplied (the resources as sent), Helm and kustomize requests fail. What the
 * real engine does is tested against helm and kustomize in test/integration/renderer/.
 */
export const passThroughEngine: RenderEngine = {
  async render(request: EngineRequest): Promise<EngineResult> {
    if (request.kind !== 'patch') return { ok: false, error: { message: `no ${request.kind} in this fake` } };
    const count = request.resources.split(/^---$/m).filter((d) => d.trim() !== '').length;
    return { ok: true, manifests: request.resources, sources: [...Array(count).keys()] };
  },
};

/** The example fleet repo without its Helm and Kustomize bundles (rendered by the real engines in integration tests). */
export function examplePlainFiles(): RepoFile[] {
  return readRepoDir('examples/fleet-repo').filter(
    (f) => !f.path.startsWith('bundles/ingress/') && !f.path.startsWith('bundles/shop/'),
  );
}
