/**
 * A parsed CEL expression planned into a program that never throws: what the planner
 * rejects is the expression's problem (`fail` makes the caller's compile error), and
 * anything thrown while it runs comes back as a CEL error value, so an expression can fail
 * a check but never crash the hub's sync or the agent.
 */
import { type CelResult, celError, plan } from '@bufbuild/cel';

export type GuardedProgram = (bindings: Record<string, unknown>) => CelResult;

export function guardedPlan(
  env: Parameters<typeof plan>[0],
  parsed: Parameters<typeof plan>[1],
  fail: (message: string, cause: unknown) => Error,
): GuardedProgram {
  let run: GuardedProgram;
  try {
    run = plan(env, parsed) as GuardedProgram;
  } catch (e) {
    throw fail(e instanceof Error ? e.message : String(e), e);
  }
  return (bindings) => {
    try {
      return run(bindings);
    } catch (e) {
      return celError(e);
    }
  };
}
