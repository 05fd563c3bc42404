import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../functions/src/config.ts';
import {
  FlotillaHubConfigError,
  flotillaConfigFromContext,
  resolveFlotillaHubConfig,
} from '../../../infra/src/config.ts';

const url = 'https://git.acme.test/fleet.git';

function problemsOf(input: unknown): readonly string[] {
  try {
    resolveFlotillaHubConfig(input);
  } catch (err) {
    if (err instanceof FlotillaHubConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('hub deployment configuration', () => {
  it('fills in the defaults', () => {
    expect(resolveFlotillaHubConfig({ fleetRepo: { url } })).toEqual({
      prefix: 'flotilla',
      fleetRepo: { url, ref: 'main' },
      charts: {},
      syncIntervalMinutes: 5,
      logRetentionDays: 30,
      removalPolicy: 'retain',
      signingKey: { mode: 'secret' },
      webhook: true,
      offlineAfterSeconds: 180,
      alarms: {},
      api: { throttleRateLimit: 1000, throttleBurstLimit: 2000 },
      notifications: { topicArns: [], eventBuses: [] },
      tenants: {},
    });
  });

  it('reports every problem at once, each with its field', () => {
    const problems = problemsOf({
      prefix: 'Bad_Prefix',
      fleetRepo: { url: 'ftp://x', credentialsSecretArn: 'arn:aws:secretsmanager:eu-west-1:1:secret:x' },
      syncIntervalMinutes: 0,
      logRetentionDays: 31,
      removalPolicy: 'snapshot',
      signingKey: { mode: 'hsm' },
      webhook: 'yes',
      alarms: { email: 'not-an-address', topicArn: 'arn:aws:sqs:eu-west-1:123456789012:q' },
      api: { throttleRateLimit: -1 },
      colour: 'blue',
    });
    expect(problems.map((p) => p.split(':')[0])).toEqual([
      'colour',
      'prefix',
      'fleetRepo.url',
      'fleetRepo.credentialsSecretArn',
      'syncIntervalMinutes',
      'logRetentionDays',
      'removalPolicy',
      'signingKey.mode',
      'webhook',
      'alarms.email',
      'alarms.topicArn',
      'api.throttleRateLimit',
    ]);
    expect(problemsOf({})).toEqual([
      'fleetRepo: required',
      'fleetRepo.url: required (the HTTPS clone URL of the fleet repo)',
    ]);
  });

  it('needs a complete secret ARN for an existing signing key', () => {
    expect(problemsOf({ fleetRepo: { url }, signingKey: { mode: 'existing-secret' } })).toEqual([
      'signingKey.secretArn: a complete Secrets Manager secret ARN is required with mode "existing-secret"',
    ]);
    const secretArn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:flotilla/signing-key-a1B2c3';
    expect(
      resolveFlotillaHubConfig({ fleetRepo: { url }, signingKey: { mode: 'existing-secret', secretArn } })
        .signingKey,
    ).toEqual({
      mode: 'existing-secret',
      secretArn,
    });
  });

  it('accepts a prefix exactly when the functions do', () => {
    for (const prefix of [
      'flotilla',
      'a',
      'edge-eu-1',
      '0abc',
      'x'.repeat(20),
      'x'.repeat(21),
      'Edge',
      '-edge',
      'e_u',
      '',
    ]) {
      const infraOk = problemsOf({ prefix, fleetRepo: { url } }).length === 0;
      let functionsOk = true;
      try {
        loadConfig({
          FLOTILLA_PREFIX: prefix,
          AWS_REGION: 'eu-west-1',
          FLOTILLA_FLEET_REPO_URL: url,
          FLOTILLA_SIGNING_KMS_KEY_ID: 'k',
        });
      } catch {
        functionsOk = false;
      }
      // An empty prefix means "the default" to the functions and "invalid" here: both refuse to guess otherwise.
      if (prefix === '') continue;
      expect([prefix, infraOk]).toEqual([prefix, functionsOk]);
    }
  });

  it('reads the flotilla context object and applies flotilla:<path> overrides from the command line', () => {
    const raw = flotillaConfigFromContext({
      flotilla: { fleetRepo: { url, ref: 'main' }, syncIntervalMinutes: 5 },
      'flotilla:fleetRepo.ref': 'release',
      'flotilla:syncIntervalMinutes': '10',
      'flotilla:webhook': 'false',
      'flotilla:alarms.email': 'ops@acme.test',
      '@aws-cdk/core:someFlag': true,
    });
    expect(resolveFlotillaHubConfig(raw)).toMatchObject({
      fleetRepo: { url, ref: 'release' },
      syncIntervalMinutes: 10,
      webhook: false,
      alarms: { email: 'ops@acme.test' },
    });
    expect(flotillaConfigFromContext({ flotilla: JSON.stringify({ fleetRepo: { url } }) })).toEqual({
      fleetRepo: { url },
    });
    expect(() => flotillaConfigFromContext({ flotilla: '{nope' })).toThrow(FlotillaHubConfigError);
  });
});
