import { type Labels, labelKeyProblem, labelValueProblem } from './labels.ts';

/** Label-selector operators, as in Kubernetes' `LabelSelectorRequirement`. */
export const SelectorOperator = {
  In: 'In',
  NotIn: 'NotIn',
  Exists: 'Exists',
  DoesNotExist: 'DoesNotExist',
} as const;
export type SelectorOperator = (typeof SelectorOperator)[keyof typeof SelectorOperator];

const OPERATORS: readonly string[] = Object.values(SelectorOperator);

export interface LabelSelectorRequirement {
  readonly key: string;
  readonly operator: SelectorOperator;
  readonly values?: readonly string[];
}

/**
 * A Kubernetes label selector: every `matchLabels` pair and every `matchExpressions`
 * requirement must hold. The empty selector `{}` matches every cluster.
 */
export interface LabelSelector {
  readonly matchLabels?: Readonly<Record<string, string>>;
  readonly matchExpressions?: readonly LabelSelectorRequirement[];
}

/** A compiled selector: a fast predicate over a label set. */
export type LabelMatcher = (labels: Labels) => boolean;

const hasOwn = Object.hasOwn;

function labelOf(labels: Labels, key: string): string | undefined {
  return hasOwn(labels, key) ? labels[key] : undefined;
}

/**
 * Whether a label set satisfies a selector, with Kubernetes semantics: `NotIn` and
 * `DoesNotExist` match clusters that lack the key; the empty selector matches everything.
 *
 * @example
 * matchesSelector({ matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['gold'] }] }, { env: 'prod' }); // true
 */
export function matchesSelector(selector: LabelSelector, labels: Labels): boolean {
  return compileSelector(selector)(labels);
}

/** Compiles a (valid) selector into a predicate; use it when matching many clusters. */
export function compileSelector(selector: LabelSelector): LabelMatcher {
  const checks: LabelMatcher[] = [];
  const matchLabels = selector.matchLabels ?? {};
  for (const key of Object.keys(matchLabels).sort()) {
    const want = matchLabels[key];
    checks.push((labels) => labelOf(labels, key) === want);
  }
  for (const req of selector.matchExpressions ?? []) {
    const key = req.key;
    const values = new Set(req.values ?? []);
    switch (req.operator) {
      case 'In':
        checks.push((labels) => {
          const v = labelOf(labels, key);
          return v !== undefined && values.has(v);
        });
        break;
      case 'NotIn':
        checks.push((labels) => {
          const v = labelOf(labels, key);
          return v === undefined || !values.has(v);
        });
        break;
      case 'Exists':
        checks.push((labels) => hasOwn(labels, key));
        break;
      case 'DoesNotExist':
        checks.push((labels) => !hasOwn(labels, key));
        break;
      default:
        // An unknown operator matches nothing, as Kubernetes refuses such a selector.
        checks.push(() => false);
    }
  }
  if (checks.length === 0) return () => true;
  if (checks.length === 1) return checks[0] as LabelMatcher;
  return (labels) => {
    for (const check of checks) if (!check(labels)) return false;
    return true;
  };
}

/**
 * The operator/values rule Kubernetes enforces for one requirement. Returns a problem
 * (relative to the requirement) or undefined.
 */
export function requirementProblem(
  operator: string,
  values: readonly string[] | undefined,
): string | undefined {
  if (!OPERATORS.includes(operator)) {
    return `operator: unknown operator "${operator}" (expected ${OPERATORS.join(', ')})`;
  }
  if ((operator === 'In' || operator === 'NotIn') && (values === undefined || values.length === 0)) {
    return `values: must be non-empty when operator is ${operator}`;
  }
  if ((operator === 'Exists' || operator === 'DoesNotExist') && values !== undefined && values.length > 0) {
    return `values: must be empty when operator is ${operator}`;
  }
  return undefined;
}

/**
 * Validates a selector given as untrusted data (for example a JSON request body).
 * Returns problems as `path: message` strings; an empty list means valid.
 */
export function labelSelectorProblems(value: unknown): string[] {
  const problems: string[] = [];
  if (!isRecord(value)) return ['selector: expected an object'];
  for (const k of Object.keys(value)) {
    if (k !== 'matchLabels' && k !== 'matchExpressions') {
      problems.push(`${k}: unknown field (expected matchLabels, matchExpressions)`);
    }
  }
  const ml = value.matchLabels;
  if (ml !== undefined) {
    if (!isRecord(ml)) problems.push('matchLabels: expected an object');
    else {
      for (const k of Object.keys(ml)) {
        const kp = labelKeyProblem(k);
        if (kp) problems.push(`matchLabels: ${kp}`);
        const v = ml[k];
        if (typeof v !== 'string') problems.push(`matchLabels.${k}: expected a string`);
        else {
          const vp = labelValueProblem(v);
          if (vp) problems.push(`matchLabels.${k}: ${vp}`);
        }
      }
    }
  }
  const me = value.matchExpressions;
  if (me !== undefined) {
    if (!Array.isArray(me)) problems.push('matchExpressions: expected a list');
    else {
      me.forEach((req: unknown, i: number) => {
        const path = `matchExpressions[${i}]`;
        if (!isRecord(req)) {
          problems.push(`${path}: expected an object`);
          return;
        }
        for (const k of Object.keys(req)) {
          if (k !== 'key' && k !== 'operator' && k !== 'values') {
            problems.push(`${path}.${k}: unknown field (expected key, operator, values)`);
          }
        }
        if (typeof req.key !== 'string') problems.push(`${path}.key: expected a string`);
        else {
          const kp = labelKeyProblem(req.key);
          if (kp) problems.push(`${path}.key: ${kp}`);
        }
        if (typeof req.operator !== 'string') {
          problems.push(`${path}.operator: expected a string`);
          return;
        }
        let values: string[] | undefined;
        if (req.values !== undefined) {
          if (!Array.isArray(req.values) || req.values.some((v) => typeof v !== 'string')) {
            problems.push(`${path}.values: expected a list of strings`);
            return;
          }
          values = req.values as string[];
          for (const v of values) {
            const vp = labelValueProblem(v);
            if (vp) problems.push(`${path}.values: ${vp}`);
          }
        }
        const rp = requirementProblem(req.operator, values);
        if (rp) problems.push(`${path}.${rp}`);
      });
    }
  }
  return problems;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
