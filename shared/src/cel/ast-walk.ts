/**
 * A walk over a parsed CEL expression (@bufbuild/cel's AST) that stops at the first
 * problem a caller's rules find: health checks and admission policies each check that an
 * expression names only what their environment defines, with their own messages and their
 * own notion of variables and function namespaces. Comprehension variables (`all(c, …)`)
 * are bound inside their loop.
 */

export interface AstNode {
  readonly exprKind: { readonly case?: string; readonly value?: unknown };
}

export interface SelectNode {
  readonly operand?: AstNode;
  readonly field: string;
  readonly testOnly?: boolean;
}

export interface CallNode {
  readonly function: string;
  readonly target?: AstNode;
  readonly args: readonly AstNode[];
}

/** Walks a node with the identifiers bound around it; the first problem found, or undefined. */
export type AstVisit = (node: AstNode | undefined, bound: ReadonlySet<string>) => string | undefined;

export interface AstRules {
  /** An identifier that no comprehension around it binds. */
  ident(name: string, bound: ReadonlySet<string>): string | undefined;
  /** A selection `operand.field`; by default only its operand is walked. */
  select?(node: SelectNode, bound: ReadonlySet<string>, visit: AstVisit): string | undefined;
  /** A call: the rule walks the target and arguments it wants walked (with `visit`). */
  call(node: CallNode, bound: ReadonlySet<string>, visit: AstVisit): string | undefined;
}

/** Walks `nodes` in order; the first problem. */
export function visitAll(
  nodes: readonly (AstNode | undefined)[],
  bound: ReadonlySet<string>,
  visit: AstVisit,
) {
  for (const n of nodes) {
    const p = visit(n, bound);
    if (p) return p;
  }
  return undefined;
}

export function firstAstProblem(root: AstNode, rules: AstRules): string | undefined {
  const visit: AstVisit = (node, bound) => {
    if (!node) return undefined;
    const { case: kind, value } = node.exprKind;
    switch (kind) {
      case 'identExpr': {
        const name = (value as { name: string }).name;
        return bound.has(name) ? undefined : rules.ident(name, bound);
      }
      case 'selectExpr': {
        const sel = value as SelectNode;
        return rules.select ? rules.select(sel, bound, visit) : visit(sel.operand, bound);
      }
      case 'callExpr':
        return rules.call(value as CallNode, bound, visit);
      case 'listExpr':
        return visitAll((value as { elements: AstNode[] }).elements, bound, visit);
      case 'structExpr':
        for (const e of (
          value as { entries: { keyKind: { case?: string; value?: unknown }; value?: AstNode }[] }
        ).entries) {
          const p =
            (e.keyKind.case === 'mapKey' ? visit(e.keyKind.value as AstNode, bound) : undefined) ??
            visit(e.value, bound);
          if (p) return p;
        }
        return undefined;
      case 'comprehensionExpr': {
        const c = value as {
          iterVar: string;
          iterVar2?: string;
          accuVar: string;
          iterRange?: AstNode;
          accuInit?: AstNode;
          loopCondition?: AstNode;
          loopStep?: AstNode;
          result?: AstNode;
        };
        const inner = new Set([...bound, c.iterVar, c.accuVar, ...(c.iterVar2 ? [c.iterVar2] : [])]);
        return (
          visit(c.iterRange, bound) ??
          visit(c.accuInit, bound) ??
          visit(c.loopCondition, inner) ??
          visit(c.loopStep, inner) ??
          visit(c.result, inner)
        );
      }
      default:
        return undefined;
    }
  };
  return visit(root, new Set());
}
