/**
 * Custom health checks in CEL (bundle.yaml `healthChecks`): compiled at the hub, where a bad
 * expression is a fleet-repo error, and evaluated by the agent on live objects. The CEL
 * engine (`@bufbuild/cel`, pure JavaScript) is loaded by this module alone, which the agent
 * imports only when a bundle has checks: its idle memory stays without it.
 *
 * The environment is Kubernetes' own (as in ValidatingAdmissionPolicy and CRD validation
 * rules): the live object is `self`, also named `object`; and, as in Flux's
 * `healthCheckExprs`, its `metadata`, `spec` and `status` are variables of their own, so
 * Flux expressions carry over unchanged. Integral JSON numbers are CEL `int`s, as the
 * Kubernetes schema types them, so `self.status.readyReplicas + 1` works.
 */

import { type CelResult, CelScalar, type CelValue, celEnv, celError, isCelError, parse } from '@bufbuild/cel';
import { strings } from '@bufbuild/cel/ext';
import { type AstNode, firstAstProblem, visitAll } from './cel/ast-walk.ts';
import { guardedPlan } from './cel/guarded-plan.ts';
import type { HealthCheck } from './protocol/desired-state.ts';
import type { Health } from './readiness.ts';

const VARIABLES = ['self', 'object', 'metadata', 'spec', 'status'] as const;

const env = celEnv({
  variables: Object.fromEntries(VARIABLES.map((v) => [v, CelScalar.DYN])),
  funcs: strings,
});

/** The expression fields of a check, in the order they are evaluated. */
export const HEALTH_CHECK_EXPRESSIONS = ['inProgress', 'failed', 'current', 'message'] as const;
export type HealthCheckExpression = (typeof HEALTH_CHECK_EXPRESSIONS)[number];

type Program = (bindings: Record<string, unknown>) => CelResult;

/** Thrown by {@link compileExpression}; `column` is 1-based within the expression. */
export class CelCompileError extends Error {
  readonly column: number | undefined;
  constructor(message: string, column?: number, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CelCompileError';
    this.column = column;
  }
}

/**
 * Compiles one CEL expression: parses it, and checks that it names only the variables
 * and functions the environment has (CEL would only notice at evaluation, on the spoke).
 *
 * @throws {CelCompileError}
 */
export function compileExpression(source: string): Program {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(source);
  } catch (e) {
    const raw = e instanceof Error ? e.message : String(e);
    const at = /^<input>:(\d+):(\d+): (.*)$/s.exec(raw);
    if (at)
      throw new CelCompileError(`syntax error at column ${at[2]}: ${at[3]}`, Number(at[2]), { cause: e });
    throw new CelCompileError(`syntax error: ${raw}`, undefined, { cause: e });
  }
  const problem = unknownNames(parsed.expr);
  if (problem) throw new CelCompileError(problem);
  return guardedPlan(env, parsed, (message, cause) => new CelCompileError(message, undefined, { cause }));
}

/** The first identifier or function the environment does not define, as a message. */
function unknownNames(root: AstNode): string | undefined {
  return firstAstProblem(root, {
    ident: (name) =>
      (VARIABLES as readonly string[]).includes(name)
        ? undefined
        : `unknown variable "${name}" (the object is self; metadata, spec and status are also variables)`,
    call: (call, bound, visit) => {
      if (/^[A-Za-z]/.test(call.function) && !env.funcs.find(call.function)) {
        return `unknown function "${call.function}"`;
      }
      return visitAll([call.target, ...call.args], bound, visit);
    },
  });
}

/**
 * Compile errors of one check, by field (`current`, `failed`...), for the hub to report
 * with the field's position. Empty when every expression compiles.
 */
export function healthCheckProblems(
  check: Partial<Record<HealthCheckExpression, string>>,
): { field: HealthCheckExpression; message: string }[] {
  const out: { field: HealthCheckExpression; message: string }[] = [];
  for (const field of HEALTH_CHECK_EXPRESSIONS) {
    const source = check[field];
    if (source === undefined) continue;
    try {
      compileExpression(source);
    } catch (e) {
      if (!(e instanceof CelCompileError)) throw e;
      out.push({ field, message: e.message });
    }
  }
  return out;
}

/** JSON as CEL sees a Kubernetes object: integral numbers are `int`s. */
function toCel(value: unknown): unknown {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? BigInt(value) : value;
  if (Array.isArray(value)) return value.map(toCel);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = toCel(v);
    return out;
  }
  return value;
}

function bindings(live: unknown): Record<string, unknown> {
  const self = toCel(live) as Record<string, unknown>;
  const out: Record<string, unknown> = { self, object: self };
  for (const k of ['metadata', 'spec', 'status'] as const) if (self[k] !== undefined) out[k] = self[k];
  return out;
}

/** A compiled check: its source and one program per expression. */
export interface CompiledHealthCheck {
  readonly check: HealthCheck;
  readonly programs: Partial<Record<HealthCheckExpression, Program>>;
}

/**
 * Compiles the checks of one rendered bundle. The hub compiled the same sources, so this
 * only fails on a document the hub did not write; such a check then reports its error on
 * every object it matches instead of failing the reconcile.
 */
export function compileHealthChecks(checks: readonly HealthCheck[]): CompiledHealthCheck[] {
  return checks.map((check) => {
    const programs: Partial<Record<HealthCheckExpression, Program>> = {};
    for (const field of HEALTH_CHECK_EXPRESSIONS) {
      const source = check[field];
      if (source === undefined) continue;
      try {
        programs[field] = compileExpression(source);
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        programs[field] = () => celError(message);
      }
    }
    return { check, programs };
  });
}

function describe(v: CelValue): string {
  if (typeof v === 'bigint') return `int ${v}`;
  if (typeof v === 'number') return `double ${v}`;
  if (typeof v === 'string') return 'a string';
  if (v === null) return 'null';
  return typeof v === 'object' ? 'a list, map or object' : typeof v;
}

/**
 * Readiness of one live object by a custom check, in the order Flux evaluates them:
 * a pending deletion or an unobserved generation first (as kstatus), then `inProgress`
 * (true: not ready), `failed` (true: failed for good), `current` (true: ready); none true
 * means not ready. An expression that errors on this object, or does not give a bool,
 * makes it not ready with the error in the message, never fails the reconcile.
 *
 * @example
 * const [check] = compileHealthChecks([{ kind: 'Claim', current: 'self.status.phase == "Bound"' }]);
 * evaluateHealthCheck(check, { kind: 'Claim', status: { phase: 'Pending' } });
 * // { ready: false, message: 'health check: self.status.phase == "Bound" is false' }
 */
export function evaluateHealthCheck(compiled: CompiledHealthCheck, live: unknown): Health {
  const meta = (live as { metadata?: { generation?: unknown; deletionTimestamp?: unknown } }).metadata;
  const seen = (live as { status?: { observedGeneration?: unknown } }).status?.observedGeneration;
  if (meta?.deletionTimestamp) return { ready: false, message: 'being deleted' };
  if (typeof meta?.generation === 'number' && typeof seen === 'number' && seen < meta.generation) {
    return { ready: false, message: `the controller has not observed generation ${meta.generation} yet` };
  }
  const vars = bindings(live);
  const { check, programs } = compiled;
  const test = (field: 'inProgress' | 'failed' | 'current'): boolean | string => {
    const program = programs[field];
    if (!program) return false;
    const result = program(vars);
    if (isCelError(result)) {
      return `cannot evaluate health check "${field}" (${check[field]}): ${result.message}`;
    }
    if (typeof result !== 'boolean') {
      return `health check "${field}" (${check[field]}) gave ${describe(result)}, not a bool`;
    }
    return result;
  };
  const why = (fallback: string): string => {
    const program = programs.message;
    if (!program) return fallback;
    const result = program(vars);
    if (typeof result === 'string') return result;
    if (isCelError(result)) return `${fallback} (message: ${result.message})`;
    return `${fallback} (message gave ${describe(result)}, not a string)`;
  };
  for (const field of ['inProgress', 'failed', 'current'] as const) {
    const r = test(field);
    if (typeof r === 'string') return { ready: false, message: r };
    if (!r) continue;
    if (field === 'current') return { ready: true, message: '' };
    return field === 'failed'
      ? { ready: false, message: why(`health check: ${check.failed} is true`), failed: true }
      : { ready: false, message: why(`health check: ${check.inProgress} is true`) };
  }
  return { ready: false, message: why(`health check: ${check.current} is false`) };
}
