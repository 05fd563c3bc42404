/**
 * Who calls an admin or tenant route: the platform admin (the admin key, or an IAM
 * principal), or a tenant's admin (a tenant key, or an IAM principal configured for the
 * tenant). Tenant routes answer a tenant caller only on its own tenant's path; admin
 * routes answer only the platform.
 */

export type Caller =
  | { readonly kind: 'platform'; readonly id: string }
  | { readonly kind: 'tenant'; readonly tenant: string; readonly id: string };

/** Tenant name to the IAM principal ARNs that act as its admins. */
export type TenantPrincipals = ReadonlyMap<string, readonly string[]>;

const tenantName = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const principalArn = /^arn:aws[a-z-]*:(iam|sts)::[0-9]{12}:[A-Za-z0-9+=,.@_/-]+$/;

/**
 * Reads FLOTILLA_TENANT_PRINCIPALS: a JSON object of tenant name to a list of IAM
 * principal ARNs (roles, users, or assumed-role sessions). Every problem is named.
 *
 * @example
 * parseTenantPrincipals('{"team-a":["arn:aws:iam::123456789012:role/team-a-admins"]}');
 */
export function parseTenantPrincipals(text: string | undefined): {
  principals: TenantPrincipals;
  problems: string[];
} {
  const principals = new Map<string, readonly string[]>();
  const problems: string[] = [];
  if (text === undefined || text.trim() === '') return { principals, problems };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return {
      principals,
      problems: [
        `FLOTILLA_TENANT_PRINCIPALS is not JSON: ${err instanceof Error ? err.message : String(err)}`,
      ],
    };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return {
      principals,
      problems: ['FLOTILLA_TENANT_PRINCIPALS must be a JSON object of tenant to ARN list'],
    };
  }
  const owner = new Map<string, string>();
  for (const [tenant, arns] of Object.entries(value)) {
    if (!tenantName.test(tenant)) {
      problems.push(`FLOTILLA_TENANT_PRINCIPALS: "${tenant}" is not a tenant name (a DNS-1123 label)`);
      continue;
    }
    if (!Array.isArray(arns) || arns.some((a) => typeof a !== 'string' || !principalArn.test(a))) {
      problems.push(`FLOTILLA_TENANT_PRINCIPALS.${tenant}: expected a list of IAM principal ARNs`);
      continue;
    }
    for (const arn of arns as string[]) {
      const other = owner.get(arn);
      if (other && other !== tenant)
        problems.push(`FLOTILLA_TENANT_PRINCIPALS: ${arn} is given to both "${other}" and "${tenant}"`);
      owner.set(arn, tenant);
    }
    principals.set(tenant, arns as string[]);
  }
  return { principals, problems };
}

const roleArn = /^arn:(aws[a-z-]*):iam::([0-9]{12}):role\/(?:.*\/)?([^/]+)$/;
const sessionArn = /^arn:(aws[a-z-]*):sts::([0-9]{12}):assumed-role\/([^/]+)\/.+$/;

/**
 * Whether a caller's ARN (API Gateway's `userArn`) is a configured principal: the same
 * ARN, or a session of the configured role (`arn:aws:sts::<account>:assumed-role/<role>/<session>`
 * for `arn:aws:iam::<account>:role/<path>/<role>`).
 */
export function principalMatches(configured: string, caller: string): boolean {
  if (configured === caller) return true;
  const role = roleArn.exec(configured);
  const session = sessionArn.exec(caller);
  return (
    role !== null &&
    session !== null &&
    role[1] === session[1] &&
    role[2] === session[2] &&
    role[3] === session[3]
  );
}

/** The tenant whose admins include this caller ARN, if any. */
export function tenantOfPrincipal(principals: TenantPrincipals, arn: string): string | undefined {
  for (const [tenant, arns] of principals) if (arns.some((a) => principalMatches(a, arn))) return tenant;
  return undefined;
}
