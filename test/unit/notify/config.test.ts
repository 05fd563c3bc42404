import { readFileSync } from 'node:fs';
import { formatFleetError } from '@flotilla/shared';
import { loadNotifications } from '@flotilla/shared/notify';
import { describe, expect, it } from 'vitest';

const load = (files: Record<string, string>) => {
  const { config, errors } = loadNotifications(new Map(Object.entries(files)));
  return { config, errors: errors.map(formatFleetError) };
};

const platform = `providers:
  - name: platform-slack
    type: slack
    secretRef: platform-slack-webhook
    channel: "#fleet"
  - name: teams
    type: msteams
    secretRef: teams-webhook
    rateLimit: {messages: 5, per: 1m}
  - name: audit
    type: webhook
    secretRef: audit-hook
  - name: ops-topic
    type: sns
    topicArn: arn:aws:sns:eu-west-1:123456789012:fleet-events
  - name: bus
    type: eventbridge
    eventBus: default
alerts:
  - name: prod-failures
    providers: [platform-slack, teams]
    eventTypes: ["bundle.*", cluster.offline]
    severity: warning
    bundles: [web, "api-*"]
    clusterSelector: env=prod,tier in (web, api)
  - name: everything
    providers: [audit, ops-topic, bus]
`;

describe('notifications/*.yaml', () => {
  it('reads providers and alerts', () => {
    const { config, errors } = load({ 'notifications/platform.yaml': platform });
    expect(errors).toEqual([]);
    expect(config.providers.map((p) => [p.name, p.type, p.rateLimit.messages])).toEqual([
      ['platform-slack', 'slack', 20],
      ['teams', 'msteams', 5],
      ['audit', 'webhook', 20],
      ['ops-topic', 'sns', 20],
      ['bus', 'eventbridge', 20],
    ]);
    expect(config.providers[0]).toMatchObject({
      secretRef: 'platform-slack-webhook',
      channel: '#fleet',
      line: 2,
    });
    expect(config.providers[4]).toMatchObject({ eventBus: 'default', source: 'flotilla' });
    expect(config.alerts[0]).toEqual({
      name: 'prod-failures',
      file: 'notifications/platform.yaml',
      line: 20,
      providers: ['platform-slack', 'teams'],
      eventTypes: ['bundle.*', 'cluster.offline'],
      severity: 'warning',
      bundles: ['web', 'api-*'],
      clusterSelector: {
        matchLabels: { env: 'prod' },
        matchExpressions: [{ key: 'tier', operator: 'In', values: ['api', 'web'] }],
      },
    });
    expect(config.alerts[1]).toMatchObject({ severity: 'info', providers: ['audit', 'ops-topic', 'bus'] });
    expect(config.alerts[1]?.eventTypes).toBeUndefined();
  });

  it('ignores files outside notifications/ and reads an empty file as nothing', () => {
    const { config, errors } = load({ 'notifications/empty.yaml': '', 'bundles/web/bundle.yaml': 'x: [' });
    expect(errors).toEqual([]);
    expect(config).toEqual({ providers: [], alerts: [] });
  });

  it('reports unknown fields, bad values and missing ones with file:line', () => {
    const { config, errors } = load({
      'notifications/bad.yaml': `providers:
  - name: s
    type: slack
    url: https://hooks.slack.com/services/T/B/X
  - name: t
    type: pager
  - name: sns
    type: sns
    topicArn: not-an-arn
  - name: w
    type: webhook
    secretRef: w
    rateLimit: {messages: 0, per: 100ms}
alerts:
  - name: a
    providers: []
    eventTypes: [bundle.exploded]
    severity: fatal
    clusterSelector: "env in (a"
    matchers: 1
`,
    });
    expect(errors).toEqual([
      'notifications/bad.yaml:2: providers[0].secretRef: required (a secret name)',
      'notifications/bad.yaml:4: providers[0]: unknown field "url" (expected name, type, secretRef, channel, rateLimit)',
      'notifications/bad.yaml:6: providers[1].type: unknown provider type "pager" (expected slack, msteams, webhook, sns, eventbridge)',
      'notifications/bad.yaml:9: providers[2].topicArn: "not-an-arn" is not an SNS topic ARN',
      'notifications/bad.yaml:13: providers[3].rateLimit.messages: expected a whole number of at least 1',
      'notifications/bad.yaml:13: providers[3].rateLimit.per: "100ms" is not a duration of at least 1s (write it as 30s, 1m or 1h)',
      'notifications/bad.yaml:16: alerts[0].providers: name at least one provider',
      'notifications/bad.yaml:17: alerts[0].eventTypes[0]: "bundle.exploded" matches no event type (the types are sync.failed, fleet.errors, fleet.errors-cleared, policy.violation, bundle.failed, bundle.not-ready, bundle.drifted, bundle.recovered, cluster.offline, cluster.online, rollout.wave-opened, rollout.paused, rollout.reverted, rollout.completed)',
      'notifications/bad.yaml:18: alerts[0].severity: expected one of info, warning, error, got "fatal"',
      expect.stringMatching(/^notifications\/bad\.yaml:19: alerts\[0\]\.clusterSelector: /),
      'notifications/bad.yaml:20: alerts[0]: unknown field "matchers" (expected name, providers, eventTypes, severity, bundles, clusterSelector)',
    ]);
    // A file with problems contributes nothing.
    expect(config).toEqual({ providers: [], alerts: [] });
  });

  it('checks names across files: duplicates and alerts naming a missing provider', () => {
    const { config, errors } = load({
      'notifications/a.yaml': 'providers:\n  - {name: s, type: slack, secretRef: x}\n',
      'notifications/b.yaml':
        'providers:\n  - {name: s, type: msteams, secretRef: y}\nalerts:\n  - {name: al, providers: [s, nope]}\n  - {name: ok, providers: [s]}\n',
    });
    expect(errors).toEqual([
      'notifications/b.yaml:2: provider "s" is also defined in notifications/a.yaml:2',
      'notifications/b.yaml:4: alert "al": no provider named "nope"',
    ]);
    expect(config.providers.map((p) => p.type)).toEqual(['slack']);
    expect(config.alerts.map((a) => a.name)).toEqual(['ok']);
  });

  it('reports YAML syntax errors and several documents', () => {
    const { errors } = load({
      'notifications/x.yaml': 'providers: [\n',
      'notifications/y.yaml': 'alerts: []\n---\nalerts: []\n',
    });
    expect(errors[0]).toMatch(/^notifications\/x\.yaml:\d+: /);
    expect(errors[1]).toBe(
      'notifications/y.yaml:3: notifications/y.yaml must hold one YAML document, found 2',
    );
  });
});

describe('docs/notifications.md', () => {
  it('shows an example that loads without errors', () => {
    const doc = readFileSync(new URL('../../../docs/notifications.md', import.meta.url), 'utf8');
    const example = doc.match(/```yaml\n# notifications\/platform\.yaml\n([\s\S]*?)```/)?.[1];
    expect(example).toBeDefined();
    const { config, errors } = load({ 'notifications/platform.yaml': example ?? '' });
    expect(errors).toEqual([]);
    expect(config.providers.map((p) => p.type)).toEqual([
      'slack',
      'msteams',
      'webhook',
      'sns',
      'eventbridge',
    ]);
    expect(config.alerts.map((a) => a.name)).toEqual(['prod-failures', 'everything-to-audit']);
  });
});
