/**
 * `flotilla secrets encrypt` and `flotilla secrets check`: SOPS files in the fleet repo,
 * encrypted to exactly the clusters that get them. Recipients come from the hub (each
 * agent reports its own and its group keys'); which clusters get a file comes from the
 * checkout's targeting, as the hub computes it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadFleet, type RepoFile } from '@flotilla/shared';
import {
  decryptSopsFileToMaps,
  encryptSopsFile,
  isSopsFile,
  SopsDecryptError,
  SopsEncryptError,
  type SopsFormat,
  sopsFileRecipients,
} from '@flotilla/shared/sops';
import { stringify } from 'yaml';
import type { Command, CommandContext } from '../core/command.ts';
import { CliError, UsageError } from '../core/errors.ts';
import { ExitCode } from '../core/exit-codes.ts';
import { formatTable } from '../core/output.ts';
import type { ClusterView } from '../hub/hub-client.ts';
import { readCheckout } from '../repo/checkout.ts';
import { checkSelector } from './cluster.ts';

/** What `encrypt` encrypts by default: a Secret's values, leaving what the hub places objects by in clear. */
export const DEFAULT_ENCRYPTED_REGEX = '^(data|stringData)$';

function formatOf(path: string): SopsFormat {
  return /\.json$/i.test(path) ? 'json' : 'yaml';
}

/** The recipients a cluster can decrypt with: its own key's and its group keys'. */
function recipientsOf(cluster: ClusterView): readonly string[] {
  return (cluster.recipients ?? []).map((r) => r.recipient);
}

/** The SOPS files of each bundle in a checkout (files under bundles/<name>/, overlays aside). */
export function sopsFilesByBundle(files: readonly RepoFile[]): Map<string, RepoFile[]> {
  const out = new Map<string, RepoFile[]>();
  for (const f of files) {
    const m = /^bundles\/([^/]+)\/(.+)$/.exec(f.path);
    if (!m || (m[2] as string).startsWith('overlays/') || !/\.(ya?ml|json)$/i.test(f.path)) continue;
    if (!isSopsFile(f.content, formatOf(f.path))) continue;
    const list = out.get(m[1] as string) ?? [];
    list.push(f);
    out.set(m[1] as string, list);
  }
  return out;
}

/** The registered clusters a bundle of the checkout targets (as the hub would), by name. */
function targetedBy(
  files: readonly RepoFile[],
  bundle: string,
  clusters: readonly ClusterView[],
): ClusterView[] {
  const fleet = loadFleet(files);
  return clusters.filter((c) =>
    fleet
      .matchBundles({ name: c.id, labels: c.labels })
      .some((m) => m.bundle === bundle && m.status === 'targeted'),
  );
}

/** The age identities of the person running the command, from sops's own variables, for re-encrypting a SOPS file. */
function ownIdentities(env: Readonly<Record<string, string | undefined>>, cwd: string): string[] {
  const keys: string[] = [];
  const take = (text: string) => {
    for (const line of text.split('\n'))
      if (line.trim().startsWith('AGE-SECRET-KEY-')) keys.push(line.trim());
  };
  if (env.SOPS_AGE_KEY) take(env.SOPS_AGE_KEY);
  if (env.SOPS_AGE_KEY_FILE) {
    try {
      take(readFileSync(resolve(cwd, env.SOPS_AGE_KEY_FILE), 'utf8'));
    } catch (e) {
      throw new CliError(
        ExitCode.Usage,
        `SOPS_AGE_KEY_FILE: cannot read ${env.SOPS_AGE_KEY_FILE}: ${(e as Error).message}`,
      );
    }
  }
  return keys;
}

export const secretsEncryptCommand: Command = {
  name: 'secrets encrypt',
  summary: 'encrypt a file (a Secret, say) as SOPS for exactly the clusters a bundle or selector names',
  usage:
    'secrets encrypt <file> --for <bundle|selector> [--repo <checkout>] [--group <name>] [-i | --output <file>]',
  description: [
    "Encrypts the file's values to the age recipients of the clusters that --for names: a bundle of the",
    'checkout (the clusters it targets, as the hub computes it) or, when no bundle has that name, a label',
    'selector. Only values under data and stringData are encrypted unless --encrypted-regex says otherwise:',
    'the hub needs apiVersion, kind and metadata in clear. The result is an ordinary SOPS file (sops -d',
    'reads it). A file that is SOPS already is decrypted first with your own age key (SOPS_AGE_KEY or',
    'SOPS_AGE_KEY_FILE, as sops reads them; add your recipient with --add-recipient to keep that ability)',
    'and encrypted again, keeping its rule: how to follow a new cluster or a rotated key. Prints to stdout',
    'unless -i or --output. Values never appear in messages.',
  ].join('\n'),
  positionals: [1, 1],
  options: {
    for: { type: 'string', valueName: 'bundle|selector', description: 'the clusters to encrypt for' },
    repo: { type: 'string', valueName: 'checkout', description: 'the fleet repo checkout (default: .)' },
    'in-place': { type: 'boolean', short: 'i', description: 'write the encrypted file over <file>' },
    output: { type: 'string', valueName: 'file', description: 'write the encrypted file there' },
    'encrypted-regex': {
      type: 'string',
      valueName: 'regex',
      description: `encrypt values under keys matching it (default ${DEFAULT_ENCRYPTED_REGEX})`,
    },
    group: {
      type: 'string',
      valueName: 'secret-name',
      description:
        "encrypt to the clusters' shared group key (group/<secret-name>) instead of each cluster's own",
    },
    'add-recipient': {
      type: 'string',
      multiple: true,
      valueName: 'age1…',
      description: 'also encrypt for this recipient (an operator key kept off the clusters)',
    },
  },
  examples: [
    'flotilla secrets encrypt bundles/db/secret.yaml --for db -i',
    'flotilla secrets encrypt secret.yaml --for env=prod --output bundles/db/secret.enc.yaml',
  ],
  async run(ctx, { positionals, values }) {
    const path = positionals[0] as string;
    const target = values.for as string | undefined;
    if (!target) throw new UsageError('--for is required: a bundle of the checkout, or a label selector');
    if (values['in-place'] && values.output) throw new UsageError('give -i or --output, not both');
    const format = formatOf(path);
    let content: string;
    try {
      content = readFileSync(resolve(ctx.io.cwd, path), 'utf8');
    } catch (e) {
      throw new CliError(
        ExitCode.NotFound,
        `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      );
    }
    const { clusters, what } = await clustersFor(ctx, target, (values.repo as string | undefined) ?? '.');
    if (clusters.length === 0) throw new CliError(ExitCode.NotFound, `${what} matches no registered cluster`);
    const group = values.group as string | undefined;
    const keyName = group === undefined ? 'cluster' : `group/${group}`;
    const keyless = clusters.filter((c) => !(c.recipients ?? []).some((r) => r.name === keyName));
    if (keyless.length > 0)
      throw new CliError(
        ExitCode.Failure,
        `no ${group === undefined ? 'age key' : `group key ${keyName}`} reported by ${keyless.map((c) => c.id).join(', ')}: encrypting without them would leave them unable to read the file`,
        {
          hint:
            group === undefined
              ? 'wait for their agents to report (flotilla secrets recipients shows what each has), or narrow --for'
              : 'install the group key in their agent namespace (docs/agent.md, "Age keys for SOPS secrets"), or narrow --for',
        },
      );
    const recipients = [
      ...new Set([
        ...clusters.map((c) => (c.recipients ?? []).find((r) => r.name === keyName)?.recipient as string),
        ...((values['add-recipient'] as string[] | undefined) ?? []),
      ]),
    ];
    let plain = content;
    let encryptedRegex = (values['encrypted-regex'] as string | undefined) ?? DEFAULT_ENCRYPTED_REGEX;
    if (isSopsFile(content, format)) {
      const identities = ownIdentities(ctx.io.env, ctx.io.cwd);
      if (identities.length === 0)
        throw new CliError(
          ExitCode.Usage,
          `${path} is SOPS-encrypted already, and no age key of yours is set to open it`,
          {
            hint: 'set SOPS_AGE_KEY_FILE to a key the file is encrypted for (see --add-recipient), or encrypt the plaintext again',
          },
        );
      try {
        // Maps keep the file's key order, integer-like keys included.
        const docs = await decryptSopsFileToMaps(content, format, identities, { file: path });
        plain =
          format === 'json'
            ? JSON.stringify(docs[0], (_k, v: unknown) => (v instanceof Map ? Object.fromEntries(v) : v), 2)
            : docs.map((d) => stringify(d, { lineWidth: 0 })).join('---\n');
      } catch (e) {
        if (e instanceof SopsDecryptError) throw new CliError(ExitCode.Failure, e.message);
        throw e;
      }
      if (values['encrypted-regex'] === undefined) encryptedRegex = ruleOf(content, format) ?? encryptedRegex;
    }
    let encrypted: string;
    try {
      encrypted = await encryptSopsFile(plain, format, recipients, { encryptedRegex });
    } catch (e) {
      if (e instanceof SopsEncryptError) throw new CliError(ExitCode.Failure, `${path}: ${e.message}`);
      throw e;
    }
    const out = values['in-place'] ? path : (values.output as string | undefined);
    if (out) {
      writeFileSync(resolve(ctx.io.cwd, out), encrypted);
      ctx.progress(
        `encrypted ${path} for ${clusters.length} cluster${clusters.length === 1 ? '' : 's'} (${what})${out === path ? '' : ` into ${out}`}`,
      );
    } else ctx.io.stdout(encrypted);
    return undefined;
  },
};

/** The `encrypted_regex` a SOPS file was made with, to keep when it is encrypted again. */
function ruleOf(content: string, format: SopsFormat): string | undefined {
  const m =
    format === 'json'
      ? /"encrypted_regex"\s*:\s*"((?:[^"\\]|\\.)*)"/.exec(content)
      : /^\s+encrypted_regex:\s*(.+)$/m.exec(content);
  if (!m) return undefined;
  const raw = (m[1] as string).trim();
  if (format === 'json') return JSON.parse(`"${raw}"`) as string;
  return raw.replace(/^(['"])(.*)\1$/, '$2');
}

async function clustersFor(
  ctx: CommandContext,
  target: string,
  repo: string,
): Promise<{ clusters: ClusterView[]; what: string }> {
  let files: RepoFile[] | undefined;
  try {
    files = readCheckout(repo, ctx.io.cwd);
  } catch {
    files = undefined;
  }
  if (files?.some((f) => f.path === `bundles/${target}/bundle.yaml`)) {
    const all = await ctx.hub().listClusters();
    return { clusters: targetedBy(files, target, all), what: `bundle ${target}` };
  }
  const selector = checkSelector(target) as string;
  return { clusters: await ctx.hub().listClusters(selector), what: `selector ${selector}` };
}

/** One SOPS file that some cluster getting it cannot open. */
export interface UncoveredFile {
  readonly file: string;
  readonly bundle: string;
  /** Clusters that get the file and hold no key it is encrypted for. */
  readonly clusters: readonly { readonly cluster: string; readonly why: string }[];
}

export const secretsCheckCommand: Command = {
  name: 'secrets check',
  summary: 'list SOPS files that some cluster getting them cannot decrypt (a new cluster, a rotated key)',
  usage: 'secrets check [--repo <checkout>]',
  description: [
    "For every SOPS file of the checkout's bundles, compares its age recipients with the keys of the",
    'registered clusters the bundle targets. Exit 1 when a file misses a cluster: encrypt it again',
    '(flotilla secrets encrypt <file> --for <bundle> -i) and push.',
  ].join('\n'),
  positionals: [0, 0],
  options: {
    repo: { type: 'string', valueName: 'checkout', description: 'the fleet repo checkout (default: .)' },
  },
  examples: ['flotilla secrets check', 'flotilla secrets check --repo ../fleet -o json'],
  async run(ctx, { values }) {
    const files = readCheckout((values.repo as string | undefined) ?? '.', ctx.io.cwd);
    const byBundle = sopsFilesByBundle(files);
    const clusters = byBundle.size > 0 ? await ctx.hub().listClusters() : [];
    const uncovered: UncoveredFile[] = [];
    let checked = 0;
    for (const [bundle, sops] of [...byBundle].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const targeted = targetedBy(files, bundle, clusters);
      for (const f of sops) {
        checked++;
        let fileRecipients: string[];
        try {
          fileRecipients = sopsFileRecipients(f.content, formatOf(f.path), { file: f.path });
        } catch (e) {
          uncovered.push({ file: f.path, bundle, clusters: [{ cluster: '*', why: (e as Error).message }] });
          continue;
        }
        const missing = targeted.flatMap((c) => {
          const keys = recipientsOf(c);
          if (keys.some((k) => fileRecipients.includes(k))) return [];
          return [
            {
              cluster: c.id,
              why:
                keys.length === 0 ? 'its agent has reported no key yet' : 'not encrypted for any of its keys',
            },
          ];
        });
        if (missing.length > 0) uncovered.push({ file: f.path, bundle, clusters: missing });
      }
    }
    ctx.print({ checked, uncovered }, () =>
      uncovered.length === 0
        ? `${checked} SOPS file${checked === 1 ? '' : 's'}: every cluster that gets one can decrypt it\n`
        : formatTable(
            ['file', 'bundle', 'cluster', 'why'],
            uncovered.flatMap((u) => u.clusters.map((c) => [u.file, u.bundle, c.cluster, c.why])),
          ),
    );
    return uncovered.length > 0 ? ExitCode.Failure : undefined;
  },
};
