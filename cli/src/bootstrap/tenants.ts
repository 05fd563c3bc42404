/**
 * The tenants whose service accounts `flotilla bootstrap --repo` installs: the Tenant
 * declarations of a fleet checkout (`tenants/*.yaml`, as the hub reads them), or none.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { formatFleetError } from '@flotilla/shared';
import { loadTenants, TENANTS_FOLDER } from '@flotilla/shared/tenants';
import { CliError } from '../core/errors.ts';
import { ExitCode } from '../core/exit-codes.ts';
import type { TenantRbacInput } from './manifests.ts';

/**
 * Reads `<dir>/tenants/*.yaml` and returns each tenant's name and cluster-scoped kinds.
 *
 * @throws {CliError} (usage) when `dir` is not a directory or a declaration has an error:
 *   a tenant half-read would get RBAC that does not match what the hub enforces.
 */
export function tenantsOfCheckout(dir: string, cwd: string): TenantRbacInput[] {
  const root = resolve(cwd, dir);
  let isDir = false;
  try {
    isDir = statSync(root).isDirectory();
  } catch {
    isDir = false;
  }
  if (!isDir) throw new CliError(ExitCode.Usage, `--repo ${dir}: no such directory`);
  const folder = join(root, TENANTS_FOLDER);
  let names: string[] = [];
  try {
    names = readdirSync(folder).filter((n) => /\.ya?ml$/.test(n) && !n.startsWith('.'));
  } catch {
    return [];
  }
  const files = names.sort().map((n) => ({
    path: `${TENANTS_FOLDER}/${n}`,
    content: readFileSync(join(folder, n), 'utf8'),
  }));
  const { tenants, errors } = loadTenants(files);
  if (errors.length > 0) {
    throw new CliError(
      ExitCode.Usage,
      `--repo ${dir}: the tenant declarations have errors:\n${errors.map(formatFleetError).join('\n')}`,
    );
  }
  return [...tenants.values()].map((t) => ({
    name: t.name,
    clusterResources: t.clusterResources.map((r) => ({ group: r.group, kind: r.kind })),
  }));
}
