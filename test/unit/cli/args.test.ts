import { describe, expect, it } from 'vitest';
import {
  age,
  formatDuration,
  formatLabels,
  parseClusterName,
  parseDuration,
  parseLabelChanges,
  parseLabels,
  parseOfflineCluster,
} from '../../../cli/src/core/args.ts';
import { UsageError } from '../../../cli/src/core/errors.ts';
import { ExitCode } from '../../../cli/src/core/exit-codes.ts';
import { formatData, formatTable, parseOutputFormat } from '../../../cli/src/core/output.ts';

describe('label arguments', () => {
  it('parses repeated and comma-separated k=v, and refuses what Kubernetes would refuse', () => {
    expect(parseLabels(['env=prod', 'region=eu,tier=gold'])).toEqual({
      env: 'prod',
      region: 'eu',
      tier: 'gold',
    });
    expect(parseLabels(['example.com/team=web', 'empty='])).toEqual({ 'example.com/team': 'web', empty: '' });
    expect(() => parseLabels(['env'])).toThrow(/--label "env": expected key=value/);
    expect(() => parseLabels(['Bad Key=x'])).toThrow(/invalid label key "Bad Key"/);
    expect(() => parseLabels(['env=a', 'env=b'])).toThrow(/"env" is given twice/);
    expect(() => parseLabels(['env=not valid'])).toThrow(UsageError);
  });

  it('reads kubectl label changes: k=v sets, k- removes', () => {
    expect(parseLabelChanges(['tier=gold', 'canary-', 'region=eu'])).toEqual({
      set: { tier: 'gold', region: 'eu' },
      remove: ['canary'],
    });
    expect(() => parseLabelChanges([])).toThrow(/at least one label change/);
    expect(() => parseLabelChanges(['tier'])).toThrow(/expected key=value \(set\) or key- \(remove\)/);
    expect(() => parseLabelChanges(['a=b', 'a-'])).toThrow(/both set and removed/);
  });

  it('reads offline clusters as name=k=v,k=v', () => {
    expect(parseOfflineCluster('edge-1=env=edge,site=berlin')).toEqual({
      name: 'edge-1',
      labels: { env: 'edge', site: 'berlin' },
    });
    expect(parseOfflineCluster('bare')).toEqual({ name: 'bare', labels: {} });
    expect(() => parseOfflineCluster('Bad_Name=env=x')).toThrow(/cluster name/);
  });

  it('checks cluster names as the hub does', () => {
    expect(parseClusterName('prod-eu-1')).toBe('prod-eu-1');
    expect(() => parseClusterName(undefined)).toThrow(/missing the cluster name/);
    expect(() => parseClusterName('Prod')).toThrow(/not a valid name/);
    expect(() => parseClusterName('a'.repeat(51))).toThrow(/longer than 50/);
  });

  it('formats labels sorted by key', () => {
    expect(formatLabels({ region: 'eu', env: 'prod' })).toBe('env=prod,region=eu');
  });
});

describe('durations', () => {
  it('parses 90s, 15m, 1h30m, 7d and plain seconds', () => {
    expect(parseDuration('90s', '--ttl')).toBe(90);
    expect(parseDuration('15m', '--ttl')).toBe(900);
    expect(parseDuration('1h30m', '--ttl')).toBe(5400);
    expect(parseDuration('7d', '--ttl')).toBe(604800);
    expect(parseDuration('42', '--ttl')).toBe(42);
    expect(() => parseDuration('1 hour', '--ttl')).toThrow(/--ttl "1 hour": expected a duration/);
    expect(() => parseDuration('1h-', '--ttl')).toThrow(UsageError);
  });

  it('formats durations and ages the way kubectl shows them', () => {
    expect(formatDuration(45)).toBe('45s');
    expect(formatDuration(90)).toBe('1m30s');
    expect(formatDuration(3600)).toBe('1h');
    expect(formatDuration(3 * 86400 + 7200)).toBe('3d2h');
    const now = new Date('2024-05-01T12:00:00Z');
    expect(age('2024-05-01T11:58:00Z', now)).toBe('2m');
    expect(age(null, now)).toBe('<never>');
  });
});

describe('output formats', () => {
  it('accepts table, json and yaml only', () => {
    expect(parseOutputFormat(undefined)).toBe('table');
    expect(parseOutputFormat('yaml')).toBe('yaml');
    const err = (() => {
      try {
        parseOutputFormat('wide');
      } catch (e) {
        return e as UsageError;
      }
    })();
    expect(err?.exitCode).toBe(ExitCode.Usage);
    expect(err?.message).toMatch(/expected one of table, json, yaml/);
  });

  it('aligns tables as kubectl does, with <none> for empty cells', () => {
    expect(
      formatTable(
        ['name', 'labels', 'agent'],
        [
          ['c1', 'env=prod', '0.1.0'],
          ['cluster-two', '', null],
        ],
      ),
    ).toBe(
      'NAME          LABELS     AGENT\nc1            env=prod   0.1.0\ncluster-two   <none>     <none>\n',
    );
  });

  it('prints whole values as JSON or YAML', () => {
    expect(formatData({ a: [1, { b: 'x' }] }, 'json')).toBe(
      '{\n  "a": [\n    1,\n    {\n      "b": "x"\n    }\n  ]\n}\n',
    );
    expect(formatData({ a: [1, { b: 'x' }] }, 'yaml')).toBe('a:\n  - 1\n  - b: x\n');
  });
});
