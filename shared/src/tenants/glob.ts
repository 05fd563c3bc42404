/**
 * The globs of a Tenant declaration: namespace names (`team-a-*`) and repository URLs
 * (`https://charts.example.com/*`, `oci://registry.example.com/team-a/*`). `*` matches any
 * run of characters but `/`, `**` any run including `/`, `?` one character but `/`; every
 * other character stands for itself. Namespace names have no `/`, so there `*` is any run.
 */

/** A compiled glob: the pattern as written and its predicate. */
export interface Glob {
  readonly pattern: string;
  readonly matches: (text: string) => boolean;
}

/** Compiles a glob (see the module comment); the pattern is taken as valid. */
export function compileGlob(pattern: string): Glob {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        re += '.*';
        i++;
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  const compiled = new RegExp(`^${re}$`, 's');
  return { pattern, matches: (text) => compiled.test(text) };
}

const NAMESPACE_GLOB = /^[a-z0-9*?-]+$/;

/** Why a namespace glob is not one, or undefined when it is. */
export function namespaceGlobProblem(pattern: string): string | undefined {
  if (pattern === '') return 'must not be empty';
  if (pattern.length > 63) return `"${pattern}" is longer than 63 characters`;
  if (!NAMESPACE_GLOB.test(pattern))
    return `"${pattern}" is not a namespace name or glob (lowercase letters, digits, '-', and the wildcards * and ?)`;
  return undefined;
}

/**
 * A repository URL in the form globs are matched against: scheme and host in lower case,
 * no trailing `/`. Undefined when it is not a URL of one of the `schemes`, or when it
 * carries credentials, a query or a fragment (a repository is never named that way, and
 * `https://charts.example.com@evil.example/` must not pass for charts.example.com).
 *
 * @example
 * normalizeRepoUrl('HTTPS://Charts.Example.com/stable/', ['https:']); // 'https://charts.example.com/stable'
 */
export function normalizeRepoUrl(text: string, schemes: readonly string[]): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return undefined;
  }
  const scheme = url.protocol.toLowerCase();
  if (!schemes.includes(scheme)) return undefined;
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') return undefined;
  if (url.host === '') return undefined;
  // The parser has resolved `.` and `..` segments (oci:// too), so a glob sees where the URL leads.
  const path = url.pathname.replace(/\/+$/, '');
  return `${scheme}//${url.host.toLowerCase()}${path}`;
}

/**
 * Why a repository URL glob is not one, or undefined when it is. The wildcards may not be
 * in the scheme or directly after `://` and the host must be followed by `/` or nothing,
 * so that a glob always pins the host it allows (`https://*` is refused; write `https://**`
 * to allow any host on purpose).
 */
export function repoGlobProblem(pattern: string, schemes: readonly string[]): string | undefined {
  const m = /^([a-z]+:)\/\/([^/]*)(\/.*)?$/i.exec(pattern);
  if (!m) return `"${pattern}" is not a URL glob (${schemes.map((s) => `${s}//...`).join(' or ')})`;
  const scheme = (m[1] as string).toLowerCase();
  if (!schemes.includes(scheme))
    return `"${pattern}": expected a ${schemes.map((s) => `${s}//`).join(' or ')} URL`;
  const host = m[2] as string;
  if (host === '**') return m[3] === undefined || m[3].startsWith('/') ? undefined : `"${pattern}": bad host`;
  if (host === '' || /[@?#]/.test(host) || (host.includes('*') && !/^\*\.[^*?]+$/.test(host)))
    return `"${pattern}": the host must be a name, or *.domain for its subdomains`;
  if (pattern.endsWith('/')) return `"${pattern}": leave out the trailing /`;
  return undefined;
}

/** A repository glob normalised like the URLs it is matched against (scheme and host in lower case). */
export function normalizeRepoGlob(pattern: string): string {
  const m = /^([a-z]+:\/\/)([^/]*)(.*)$/i.exec(pattern);
  return m ? `${(m[1] as string).toLowerCase()}${(m[2] as string).toLowerCase()}${m[3] as string}` : pattern;
}
