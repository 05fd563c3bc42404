/**
 * Fleet-wide settings (`fleet.yaml` at the repo's root, optional) and the checks they
 * drive. Today one: what a plain `kind: Secret` with data in the repo gets, a warning (the
 * default) or a refusal that holds its bundle. SOPS-encrypted Secrets are not plain.
 */
import { type FleetError, fleetError } from '../errors.ts';
import type { SpecReader } from '../spec-reader.ts';
import { getEntry, type YNode } from '../yaml-source.ts';
import type { ManifestDoc } from './model.ts';

export const FLEET_SETTINGS_FILE = 'fleet.yaml';

export const PlaintextSecrets = { warn: 'warn', refuse: 'refuse' } as const;
export type PlaintextSecrets = (typeof PlaintextSecrets)[keyof typeof PlaintextSecrets];

export interface FleetSettings {
  readonly secrets: { readonly plaintext: PlaintextSecrets };
}

export const DEFAULT_FLEET_SETTINGS: FleetSettings = { secrets: { plaintext: 'warn' } };

/** Reads `fleet.yaml`'s root mapping; problems go to the reader, defaults fill what is unset. */
export function readFleetSettings(reader: SpecReader, node: YNode | null): FleetSettings {
  if (node === null) return DEFAULT_FLEET_SETTINGS;
  const root = reader.expectMap(node, '');
  if (!root) return DEFAULT_FLEET_SETTINGS;
  const secretsNode = reader.fields(root, '', ['secrets']).get('secrets');
  if (!secretsNode) return DEFAULT_FLEET_SETTINGS;
  const secrets = reader.expectMap(secretsNode, 'secrets');
  if (!secrets) return DEFAULT_FLEET_SETTINGS;
  const plaintextNode = reader.fields(secrets, 'secrets', ['plaintext']).get('plaintext');
  if (!plaintextNode) return DEFAULT_FLEET_SETTINGS;
  const value = reader.expectString(plaintextNode, 'secrets.plaintext');
  if (value === undefined) return DEFAULT_FLEET_SETTINGS;
  if (value !== 'warn' && value !== 'refuse') {
    reader.error(plaintextNode.pos, `secrets.plaintext: expected warn or refuse, got "${value}"`);
    return DEFAULT_FLEET_SETTINGS;
  }
  return { secrets: { plaintext: value } };
}

/**
 * Plain Secrets with data among a bundle's documents (its files, or an overlay's patches):
 * each one a problem at its file and line, a warning or an error as the settings say.
 */
export function plaintextSecrets(docs: readonly ManifestDoc[], bundle: string): FleetError[] {
  const out: FleetError[] = [];
  for (const doc of docs) {
    if (doc.sealed) continue;
    const kind = getEntry(doc.node, 'kind')?.value;
    const apiVersion = getEntry(doc.node, 'apiVersion')?.value;
    if (kind?.kind !== 'scalar' || kind.value !== 'Secret') continue;
    if (apiVersion?.kind !== 'scalar' || apiVersion.value !== 'v1') continue;
    const data = ['data', 'stringData']
      .map((k) => getEntry(doc.node, k)?.value)
      .find((v) => v !== undefined && v.kind === 'map' && v.entries.length > 0);
    if (!data) continue;
    const meta = getEntry(doc.node, 'metadata')?.value;
    const nameNode = meta?.kind === 'map' ? getEntry(meta, 'name')?.value : undefined;
    const name = nameNode?.kind === 'scalar' ? String(nameNode.value) : '';
    out.push(
      fleetError(
        doc.pos,
        `Secret "${name}" holds plain data in the fleet repo: encrypt it for the clusters it goes to (flotilla secrets encrypt ${doc.file} --for ${bundle}; docs/secrets.md)`,
        bundle,
      ),
    );
  }
  return out;
}
