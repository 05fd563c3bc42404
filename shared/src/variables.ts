import { labelKeyProblem } from './labels.ts';

/** A variable a manifest can reference. */
export type VariableRef =
  | { readonly kind: 'cluster.name'; readonly text: string }
  | { readonly kind: 'cluster.labels'; readonly key: string; readonly text: string }
  | { readonly kind: 'values'; readonly path: readonly string[]; readonly text: string };

/** A string split into literal text and variable references. */
export type TemplatePart = string | VariableRef;

export type ParsedTemplate =
  | { readonly ok: true; readonly parts: readonly TemplatePart[] }
  | { readonly ok: false; readonly message: string };

const EXPECTED = 'expected cluster.name, cluster.labels.<key> or values.<key>';

/** Whether a string needs template parsing at all (the fast path skips plain strings). */
export function hasTemplateSyntax(s: string): boolean {
  return s.includes('${');
}

/**
 * Splits a string into literals and `${...}` variable references. `$${` is an escape for a
 * literal `${`. Supported variables: `${cluster.name}`, `${cluster.labels.<key>}` (the key
 * is everything after `cluster.labels.`, so `${cluster.labels.topology.kubernetes.io/zone}`
 * works) and `${values.<key>[.<key>...]}`.
 *
 * @example
 * parseTemplate('img:${values.tag}-$${x}'); // { ok: true, parts: ['img:', {kind:'values',...}, '-${x}'] }
 */
export function parseTemplate(s: string): ParsedTemplate {
  const parts: TemplatePart[] = [];
  let literal = '';
  let i = 0;
  while (i < s.length) {
    const dollar = s.indexOf('$', i);
    if (dollar < 0) {
      literal += s.slice(i);
      break;
    }
    literal += s.slice(i, dollar);
    if (s.startsWith('$${', dollar)) {
      literal += '${';
      i = dollar + 3;
      continue;
    }
    if (!s.startsWith('${', dollar)) {
      literal += '$';
      i = dollar + 1;
      continue;
    }
    const close = s.indexOf('}', dollar + 2);
    if (close < 0) {
      return {
        ok: false,
        message: `unterminated variable reference "${s.slice(dollar)}" (write $\${ for a literal \${)`,
      };
    }
    const inner = s.slice(dollar + 2, close);
    const ref = parseVariable(inner);
    if (typeof ref === 'string') return { ok: false, message: ref };
    if (literal !== '') parts.push(literal);
    literal = '';
    parts.push(ref);
    i = close + 1;
  }
  if (literal !== '') parts.push(literal);
  return { ok: true, parts };
}

function parseVariable(inner: string): VariableRef | string {
  const text = inner;
  if (inner === 'cluster.name') return { kind: 'cluster.name', text };
  if (inner.startsWith('cluster.labels.')) {
    const key = inner.slice('cluster.labels.'.length);
    const problem = labelKeyProblem(key);
    if (problem) return `variable \${${inner}}: ${problem}`;
    return { kind: 'cluster.labels', key, text };
  }
  if (inner.startsWith('values.')) {
    const path = inner.slice('values.'.length).split('.');
    if (path.some((p) => p === '')) return `variable \${${inner}}: empty key in values path`;
    return { kind: 'values', path, text };
  }
  if (inner === '') return `empty variable reference \${} (${EXPECTED}; write $\${ for a literal \${)`;
  return `unknown variable \${${inner}} (${EXPECTED}; write $\${ for a literal \${)`;
}
