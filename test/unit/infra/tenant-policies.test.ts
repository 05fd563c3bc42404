import { AwsSolutionsChecks } from 'cdk-nag';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../functions/src/config.ts';
import { FlotillaHubConfigError, resolveFlotillaHubConfig } from '../../../infra/src/config.ts';
import { type CfnValue, flat, resourcesOfType, synthHub } from './synth.ts';

const teamARole = 'arn:aws:iam::123456789012:role/teams/team-a-admins';
const teamAUser = 'arn:aws:iam::123456789012:user/alice';
const teamBRole = 'arn:aws:iam::123456789012:role/team-b-admins';

const hub = synthHub({
  prefix: 'tenanted',
  fleetRepo: { url: 'https://git.acme.test/platform/fleet.git' },
  tenants: {
    'team-a': { principals: [teamARole, teamAUser] },
    'team-b': { principals: [teamBRole] },
  },
});
const nagReport = new AwsSolutionsChecks(hub.app).validateScope(hub.app);

function policies() {
  return resourcesOfType(hub, 'AWS::IAM::ManagedPolicy').map(({ id, props }) => ({
    id,
    description: String(props.Description),
    statements: (props.PolicyDocument as { Statement: Record<string, CfnValue>[] }).Statement,
    roles: (props.Roles as CfnValue[] | undefined)?.map(flat) ?? [],
    users: (props.Users as CfnValue[] | undefined)?.map(flat) ?? [],
  }));
}

describe('tenant admins in AWS (IAM)', () => {
  it("creates one policy per tenant allowing execute-api:Invoke on that tenant's routes only", () => {
    const tenant = policies().filter((p) => p.id.startsWith('HubTenantPolicyteam'));
    expect(tenant.map((p) => p.id).sort()).toEqual([
      expect.stringMatching(/^HubTenantPolicyteama[0-9A-F]{8}$/),
      expect.stringMatching(/^HubTenantPolicyteamb[0-9A-F]{8}$/),
    ]);
    for (const [name, p] of [
      ['team-a', tenant.find((x) => x.id.startsWith('HubTenantPolicyteama'))],
      ['team-b', tenant.find((x) => x.id.startsWith('HubTenantPolicyteamb'))],
    ] as const) {
      expect(p?.statements).toHaveLength(1);
      const statement = p?.statements[0] ?? {};
      expect(statement.Effect).toBe('Allow');
      expect(statement.Action).toBe('execute-api:Invoke');
      expect(flat(statement.Resource as CfnValue)).toMatch(
        new RegExp(
          `^arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<HubHttpApi[0-9A-F]{8}>/\\$default/\\*/v1/tenants/${name}/\\*$`,
        ),
      );
    }
    // Attached to the tenant's own roles and users, by name (a role's path is not part of it).
    const a = tenant.find((x) => x.id.startsWith('HubTenantPolicyteama'));
    expect(a?.roles).toEqual(['team-a-admins']);
    expect(a?.users).toEqual(['alice']);
    expect(tenant.find((x) => x.id.startsWith('HubTenantPolicyteamb'))?.roles).toEqual(['team-b-admins']);
    // The admin policy stays the platform's: /v1/admin/ only.
    const admin = policies().find((p) => p.id.startsWith('HubAdminPolicy'));
    expect(flat(admin?.statements[0]?.Resource as CfnValue)).toMatch(/\/v1\/admin\/\*$/);
  });

  it('tells the API function which principals are which tenant, in a form its config reads', () => {
    const api = resourcesOfType(hub, 'AWS::Lambda::Function').find(({ id }) =>
      id.startsWith('HubApiFunction'),
    );
    const vars =
      (api?.props.Environment as { Variables: Record<string, CfnValue> } | undefined)?.Variables ?? {};
    const text = vars.FLOTILLA_TENANT_PRINCIPALS as string;
    expect(JSON.parse(text)).toEqual({ 'team-a': [teamARole, teamAUser], 'team-b': [teamBRole] });
    const config = loadConfig({
      FLOTILLA_FLEET_REPO_URL: 'https://git.acme.test/platform/fleet.git',
      FLOTILLA_SIGNING_KEY_SECRET_ID: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:k-AbC123',
      AWS_REGION: 'eu-west-1',
      FLOTILLA_TENANT_PRINCIPALS: text,
    });
    expect([...config.tenantPrincipals.keys()]).toEqual(['team-a', 'team-b']);
  });

  it('passes cdk-nag with the tenant policies', () => {
    expect(nagReport.violations.map((v) => `${v.ruleName} ${JSON.stringify(v.violatingResources)}`)).toEqual(
      [],
    );
  });

  it('names every wrong tenant setting', () => {
    const problems = (tenants: unknown) => {
      try {
        resolveFlotillaHubConfig({ fleetRepo: { url: 'https://git.acme.test/f.git' }, tenants });
        return [];
      } catch (err) {
        if (err instanceof FlotillaHubConfigError) return err.problems;
        throw err;
      }
    };
    expect(problems({ 'Team A': { principals: [teamARole] } })).toEqual([
      'tenants.Team A: "Team A" is not a tenant name (a DNS-1123 label, as in tenants/<name>.yaml)',
    ]);
    expect(problems({ 'team-a': { principals: ['arn:aws:sts::123456789012:assumed-role/x/y'] } })).toEqual([
      'tenants.team-a.principals[0]: not an IAM role or user ARN: "arn:aws:sts::123456789012:assumed-role/x/y"',
    ]);
    expect(problems({ 'team-a': { principals: [] } })).toEqual([
      'tenants.team-a.principals: give at least one IAM role or user ARN',
    ]);
    expect(
      problems({ 'team-a': { principals: [teamARole] }, 'team-b': { principals: [teamARole] } }),
    ).toEqual([`tenants.team-b.principals: ${teamARole} is already an admin of tenant "team-a"`]);
    expect(problems({ 'team-a': { principals: [teamARole], extra: 1 } })).toEqual([
      expect.stringMatching(/^tenants\.team-a\.extra/),
    ]);
  });

  it('creates no tenant policy and no variable without tenants', () => {
    const plain = synthHub({ fleetRepo: { url: 'https://git.acme.test/platform/fleet.git' } });
    expect(
      resourcesOfType(plain, 'AWS::IAM::ManagedPolicy').filter(({ id }) => id.startsWith('HubTenantPolicy')),
    ).toEqual([]);
    const api = resourcesOfType(plain, 'AWS::Lambda::Function').find(({ id }) =>
      id.startsWith('HubApiFunction'),
    );
    expect(
      (api?.props.Environment as { Variables: Record<string, CfnValue> } | undefined)?.Variables
        .FLOTILLA_TENANT_PRINCIPALS,
    ).toBeUndefined();
  });
});
