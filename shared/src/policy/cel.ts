/**
 * The CEL environment of admission policies: the variables the API server binds
 * (`object`, `oldObject`, `request`, `params`, `namespaceObject`, `variables`) and the
 * Kubernetes extension libraries. Expressions are parsed and checked for unknown names at
 * load, so that a typo is a fleet-repo error rather than a violation on every object.
 */
import {
  type CelFunc,
  type CelInput,
  type CelResult,
  CelScalar,
  type CelValue,
  celEnv,
  celError,
  celList,
  celMap,
  isCelError,
  isCelList,
  isCelMap,
  parse,
} from '@bufbuild/cel';
import { type AstNode, firstAstProblem, visitAll } from '../cel/ast-walk.ts';
import { guardedPlan } from '../cel/guarded-plan.ts';
import { KUBERNETES_CEL_FUNCS } from './cel-library.ts';

export const POLICY_VARIABLES = [
  'object',
  'oldObject',
  'request',
  'params',
  'namespaceObject',
  'variables',
] as const;

const env = celEnv({
  variables: Object.fromEntries(POLICY_VARIABLES.map((v) => [v, CelScalar.DYN])),
  funcs: KUBERNETES_CEL_FUNCS.map(guardTripwires),
});

// `format`, `optional`, `sets`: a call in one of these is a function, never a variable.
const FUNCTION_NAMESPACES = new Set(
  KUBERNETES_CEL_FUNCS.map((f) => f.name.slice(0, Math.max(0, f.name.lastIndexOf('.')))).filter(Boolean),
);

/** A compiled expression: bindings in, a CEL value or error out (it never throws). */
export type CelProgram = (bindings: Record<string, unknown>) => CelResult;

/** Thrown by {@link compilePolicyExpression}; `column` is 1-based within the expression. */
export class PolicyExpressionError extends Error {
  readonly column: number | undefined;
  constructor(message: string, column?: number, options?: ErrorOptions) {
    super(message, options);
    this.name = 'PolicyExpressionError';
    this.column = column;
  }
}

/**
 * Compiles one expression. `variableNames` are the names `variables.<name>` may use.
 *
 * @throws {PolicyExpressionError}
 */
export function compilePolicyExpression(source: string, variableNames: ReadonlySet<string>): CelProgram {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(source);
  } catch (e) {
    const raw = e instanceof Error ? e.message : String(e);
    const at = /^<input>:(\d+):(\d+): (.*)$/s.exec(raw);
    const column = Number(at?.[2]);
    if (at && optionalSyntaxAt(source, column - 1))
      throw new PolicyExpressionError(
        `syntax error at column ${column}: the optional syntax (a.?b, [?x], {?k: v}) is not supported: test for a field with has()`,
        column,
        { cause: e },
      );
    if (at)
      throw new PolicyExpressionError(`syntax error at column ${at[2]}: ${at[3]}`, Number(at[2]), {
        cause: e,
      });
    throw new PolicyExpressionError(`syntax error: ${raw}`, undefined, { cause: e });
  }
  const badEscape = invalidEscape(source);
  if (badEscape !== undefined) {
    throw new PolicyExpressionError(
      `syntax error at column ${badEscape + 1}: invalid escape sequence in a string literal (write \\\\ for a backslash, or use a raw string r'...')`,
      badEscape + 1,
    );
  }
  const problem = unknownNames(parsed.expr as AstNode, variableNames);
  if (problem) throw new PolicyExpressionError(problem);
  return guardedPlan(
    env,
    parsed,
    (message, cause) => new PolicyExpressionError(message, undefined, { cause }),
  );
}

/** Whether `a.?b`, `[?x]` or `{?k: v}` (CEL's optional syntax) begins at the offset. */
function optionalSyntaxAt(source: string, offset: number): boolean {
  if (source.startsWith('.?', offset)) return true;
  return source[offset] === '?' && /[[{,]\s*$/.test(source.slice(0, offset));
}

// The escapes CEL defines; anything else after a backslash in a (non-raw) string is a syntax error.
const ESCAPE = /^(?:[\\?"'`abfnrtv]|x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|[0-3][0-7]{2})/;

/**
 * The offset of the first invalid escape sequence in the string literals of an expression.
 * `@bufbuild/cel` keeps such a sequence as written, where the API server refuses the policy:
 * `'\.'` in a regular expression must be `'\\.'` or `r'\.'`.
 */
function invalidEscape(source: string): number | undefined {
  let i = 0;
  while (i < source.length) {
    const c = source[i] as string;
    if (c !== '"' && c !== "'") {
      i++;
      continue;
    }
    const raw = i > 0 && /[rR]/.test(source[i - 1] as string) && !/[A-Za-z0-9_]/.test(source[i - 2] ?? '');
    const quote = source.startsWith(c.repeat(3), i) ? c.repeat(3) : c;
    i += quote.length;
    while (i < source.length && !source.startsWith(quote, i)) {
      if (source[i] === '\\') {
        if (!raw && !ESCAPE.test(source.slice(i + 1))) return i;
        i += 2;
      } else i++;
    }
    i += quote.length;
  }
  return undefined;
}

/** `a.b.c` as text when the node is a chain of identifiers and selections, else undefined. */
function qualifiedName(node: AstNode | undefined): string | undefined {
  if (!node) return undefined;
  const { case: kind, value } = node.exprKind;
  if (kind === 'identExpr') return (value as { name: string }).name;
  if (kind === 'selectExpr') {
    const sel = value as { operand?: AstNode; field: string; testOnly: boolean };
    if (sel.testOnly) return undefined;
    const base = qualifiedName(sel.operand);
    return base === undefined ? undefined : `${base}.${sel.field}`;
  }
  return undefined;
}

function unknownNames(root: AstNode, variableNames: ReadonlySet<string>): string | undefined {
  const known = (name: string) => (POLICY_VARIABLES as readonly string[]).includes(name);
  return firstAstProblem(root, {
    ident: (name) => {
      if (known(name)) return undefined;
      if (name === 'authorizer')
        return 'authorizer is not supported: Flotilla checks policies at the hub, where there is no requesting user';
      return `undeclared reference to '${name}' (the variables are ${POLICY_VARIABLES.join(', ')})`;
    },
    select: (sel, bound, visit) => {
      const operand = sel.operand?.exprKind;
      if (
        operand?.case === 'identExpr' &&
        (operand.value as { name: string }).name === 'variables' &&
        !bound.has('variables') &&
        !variableNames.has(sel.field)
      ) {
        return `undeclared reference to 'variables.${sel.field}' (spec.variables has no such name)`;
      }
      return visit(sel.operand, bound);
    },
    call: (call, bound, visit) => {
      const qual = qualifiedName(call.target);
      if (
        qual !== undefined &&
        !bound.has(qual.split('.')[0] as string) &&
        !known(qual.split('.')[0] as string)
      ) {
        // `format.dns1123Label()`: a function in a namespace, not a member call on a value.
        if (env.funcs.find(`${qual}.${call.function}`)) return visitAll(call.args, bound, visit);
        if (FUNCTION_NAMESPACES.has(qual))
          return `undeclared reference to function '${qual}.${call.function}'`;
      }
      const inner = visitAll([call.target, ...call.args], bound, visit);
      if (inner) return inner;
      if (/^[A-Za-z]/.test(call.function) && !env.funcs.find(call.function)) {
        return `undeclared reference to function '${call.function}'`;
      }
      return undefined;
    },
  });
}

/**
 * A hole: where a masked object (a render with each cluster variable replaced by a marker)
 * has a string containing U+0001, the string stands for every value a cluster could fill in.
 * In CEL it is an error value, a tripwire: an expression whose result is not an error did
 * not depend on it (CEL errors propagate; `||` and `&&` drop one only when the other side
 * decides, and @bufbuild/cel only when that side is on the left: `a || hole` is shared when
 * `a` is true, `hole || a` is not), so that result holds for every fill.
 */
export const HOLE_MARK = '\u0001';

/** Thrown by the evaluation of a masked object whose result could depend on a hole. */
export class HoleRead extends Error {
  constructor(what: string) {
    super(`the result depends on a cluster variable (${what})`);
    this.name = 'HoleRead';
  }
}

const TRIPWIRE = celError(new HoleRead('a string value'));

/** Whether the functions of the Kubernetes library refuse lists and maps that hold a tripwire. */
let armed = false;

/** Runs `fn` with the library's functions guarding against tripwires inside their arguments. */
export function withTripwires<T>(fn: () => T): T {
  const before = armed;
  armed = true;
  try {
    return fn();
  } finally {
    armed = before;
  }
}

/**
 * Defence in depth for the Kubernetes library (lists, sets, strings.join, format...), whose
 * functions read inside lists and maps, where a tripwire compared like any value would be
 * unsound (`sets.contains(l, ['x'])` false where a fill could give 'x'). @bufbuild/cel 0.6
 * already refuses it: a list or map holding an error value throws on every read of an
 * element (`size()` and identity aside), which the evaluation turns into an error. Armed, a
 * call whose arguments hold a tripwire is an error before the function runs, whatever a
 * later version of the engine does.
 */
function guardTripwires(f: CelFunc): CelFunc {
  const call = f.call.bind(f);
  return Object.create(f, {
    call: {
      value: (id: number, target: CelValue | undefined, args: CelValue[]) =>
        armed && (holdsError(target) || args.some(holdsError)) ? TRIPWIRE : call(id, target, args),
    },
  }) as CelFunc;
}

function holdsError(v: unknown): boolean {
  if (isCelError(v)) return true;
  try {
    if (isCelList(v)) {
      for (const x of v) if (holdsError(x)) return true;
    } else if (isCelMap(v)) {
      for (const x of v.values()) if (holdsError(x)) return true;
    }
  } catch {
    return true; // a variable that fails to evaluate
  }
  return false;
}

/**
 * JSON as CEL sees a Kubernetes object: integral numbers are `int`s, as the schema types
 * them. Built as CEL lists and maps once: a plain object would be converted again by the
 * engine at every field access (most of the evaluation time, measured).
 */
export function toCelValue(value: unknown): unknown {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? BigInt(value) : value;
  if (Array.isArray(value)) return celList(value.map(toCelValue) as CelInput[]);
  if (value !== null && typeof value === 'object') {
    const out = new Map<string, CelInput>();
    for (const [k, v] of Object.entries(value)) out.set(k, toCelValue(v) as CelInput);
    return celMap(out);
  }
  return value;
}

/**
 * {@link toCelValue} of a masked object: strings holding {@link HOLE_MARK} are tripwires.
 *
 * @throws {HoleRead} when a map key holds the mark (fills could make keys collide or match).
 */
export function toMaskedCelValue(value: unknown): unknown {
  if (typeof value === 'string') return value.includes(HOLE_MARK) ? TRIPWIRE : value;
  if (typeof value === 'number') return Number.isSafeInteger(value) ? BigInt(value) : value;
  if (Array.isArray(value)) return celList(value.map(toMaskedCelValue) as CelInput[]);
  if (value !== null && typeof value === 'object') {
    const out = new Map<string, CelInput>();
    for (const [k, v] of Object.entries(value)) {
      if (k.includes(HOLE_MARK)) throw new HoleRead('a map key');
      out.set(k, toMaskedCelValue(v) as CelInput);
    }
    return celMap(out);
  }
  return value;
}
