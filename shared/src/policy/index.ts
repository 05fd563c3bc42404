/**
 * The policy gate: Kubernetes ValidatingAdmissionPolicy documents from the fleet repo's
 * `policies/`, loaded once ({@link loadPolicies}) and evaluated on rendered objects at the
 * hub ({@link evaluatePolicies}), with the same CEL and matching rules as the API server.
 */

export { HOLE_MARK, HoleRead, POLICY_VARIABLES, PolicyExpressionError } from './cel.ts';
export { KUBERNETES_CEL_FUNCS } from './cel-library.ts';
export {
  type EvaluateOptions,
  evaluateObject,
  evaluatePolicies,
  type PolicyContext,
  type PolicyViolation,
  policiesDependOnCluster,
  policyContext,
} from './evaluate.ts';
export {
  type Binding,
  CLUSTER_SELECTOR_ANNOTATION,
  loadPolicies,
  type Policy,
  type PolicyFile,
  type PolicySet,
  type ValidationAction,
} from './load.ts';
export { kindToResource } from './match.ts';
