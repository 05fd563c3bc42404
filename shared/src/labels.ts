/** Cluster labels: string keys to string values, as in Kubernetes. */
export type Labels = Readonly<Record<string, string>>;

const NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/**
 * Checks a label key as Kubernetes does (an optional DNS subdomain prefix and `/`, then a
 * name of at most 63 characters). Returns a problem description, or undefined when valid.
 */
export function labelKeyProblem(key: string): string | undefined {
  const slash = key.indexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined) {
    if (prefix.length === 0) return `invalid label key "${key}": prefix part must not be empty`;
    if (prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix)) {
      return `invalid label key "${key}": prefix part must be a lowercase DNS subdomain`;
    }
  }
  if (name.length === 0) return `invalid label key "${key}": name part must not be empty`;
  if (name.length > 63) return `invalid label key "${key}": name part must be no more than 63 characters`;
  if (!NAME_PART.test(name)) {
    return `invalid label key "${key}": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character`;
  }
  return undefined;
}

/** Checks a label value as Kubernetes does (empty, or at most 63 characters of `[A-Za-z0-9-_.]` with alphanumeric ends). */
export function labelValueProblem(value: string): string | undefined {
  if (value === '') return undefined;
  if (value.length > 63) return `invalid label value "${value}": must be no more than 63 characters`;
  if (!NAME_PART.test(value)) {
    return `invalid label value "${value}": must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character`;
  }
  return undefined;
}

/**
 * Checks a bundle, group or cluster name: a lowercase DNS-1123 label (at most 63
 * characters of `a-z`, `0-9` and `-`, starting and ending with an alphanumeric).
 */
export function nameProblem(name: string): string | undefined {
  if (name.length === 0) return 'must not be empty';
  if (name.length > 63) return `"${name}" is longer than 63 characters`;
  if (!DNS1123_LABEL.test(name)) {
    return `"${name}" is not a valid name (lowercase letters, digits and '-', starting and ending with a letter or digit)`;
  }
  return undefined;
}

/**
 * Checks a bundle's full name: a platform bundle's is a DNS-1123 label (`web`), a source's
 * bundle is `<source>/<bundle>` with both parts labels (`team-a/web`).
 */
export function bundleNameProblem(name: string): string | undefined {
  const slash = name.indexOf('/');
  if (slash < 0) return nameProblem(name);
  const source = name.slice(0, slash);
  const bundle = name.slice(slash + 1);
  const problem = nameProblem(source) ?? nameProblem(bundle);
  if (problem) return `"${name}" is not a valid bundle name (<source>/<bundle>): ${problem}`;
  if (source === 'platform') return `"${name}": the platform's bundles are named without a source`;
  return undefined;
}

/** Validates a whole label set; returns the problems found, in key order. */
export function labelsProblems(labels: Labels): string[] {
  const out: string[] = [];
  for (const key of Object.keys(labels).sort()) {
    const kp = labelKeyProblem(key);
    if (kp) out.push(kp);
    const value = labels[key];
    if (typeof value !== 'string') out.push(`label "${key}": value must be a string`);
    else {
      const vp = labelValueProblem(value);
      if (vp) out.push(`label "${key}": ${vp}`);
    }
  }
  return out;
}

/**
 * A cluster's effective labels: those registered with the hub, overridden key by key by
 * those declared in git (`clusters/<name>.yaml`), since git is the reviewed source of truth.
 */
export function effectiveLabels(registered: Labels | undefined, declared: Labels | undefined): Labels {
  const merged = new Map<string, string>();
  if (registered) for (const k of Object.keys(registered)) merged.set(k, registered[k] as string);
  if (declared) for (const k of Object.keys(declared)) merged.set(k, declared[k] as string);
  // Sorted keys keep every output built from these labels deterministic.
  return Object.fromEntries([...merged].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
