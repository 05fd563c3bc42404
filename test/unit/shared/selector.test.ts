import {
  compileSelector,
  formatLabelSelector,
  type LabelSelector,
  LabelSelectorSyntaxError,
  labelSelectorProblems,
  matchesSelector,
  parseLabelSelector,
} from '@flotilla/shared';
import { describe, expect, it } from 'vitest';

const prodEu = { env: 'prod', region: 'eu' };

describe('label selector semantics (as Kubernetes)', () => {
  const cases: [string, LabelSelector, Record<string, string>, boolean][] = [
    ['empty selector matches everything', {}, prodEu, true],
    ['empty selector matches a cluster without labels', {}, {}, true],
    [
      'empty matchLabels and matchExpressions match everything',
      { matchLabels: {}, matchExpressions: [] },
      {},
      true,
    ],
    ['matchLabels equal', { matchLabels: { env: 'prod' } }, prodEu, true],
    ['matchLabels different value', { matchLabels: { env: 'staging' } }, prodEu, false],
    ['matchLabels missing key', { matchLabels: { tier: 'gold' } }, prodEu, false],
    ['matchLabels pairs are ANDed', { matchLabels: { env: 'prod', region: 'us' } }, prodEu, false],
    ['matchLabels empty value matches an empty label', { matchLabels: { canary: '' } }, { canary: '' }, true],
    [
      'In matches a listed value',
      { matchExpressions: [{ key: 'region', operator: 'In', values: ['eu', 'us'] }] },
      prodEu,
      true,
    ],
    [
      'In fails on an unlisted value',
      { matchExpressions: [{ key: 'region', operator: 'In', values: ['us'] }] },
      prodEu,
      false,
    ],
    [
      'In fails on a missing key',
      { matchExpressions: [{ key: 'tier', operator: 'In', values: ['gold'] }] },
      prodEu,
      false,
    ],
    [
      'NotIn fails on a listed value',
      { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }] },
      prodEu,
      false,
    ],
    [
      'NotIn matches an unlisted value',
      { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['dev'] }] },
      prodEu,
      true,
    ],
    [
      'NotIn matches a cluster lacking the key',
      { matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['gold'] }] },
      prodEu,
      true,
    ],
    [
      'Exists matches a present key',
      { matchExpressions: [{ key: 'env', operator: 'Exists' }] },
      prodEu,
      true,
    ],
    [
      'Exists matches a present key with an empty value',
      { matchExpressions: [{ key: 'canary', operator: 'Exists' }] },
      { canary: '' },
      true,
    ],
    [
      'Exists fails on a missing key',
      { matchExpressions: [{ key: 'tier', operator: 'Exists' }] },
      prodEu,
      false,
    ],
    [
      'DoesNotExist matches a missing key',
      { matchExpressions: [{ key: 'legacy', operator: 'DoesNotExist' }] },
      prodEu,
      true,
    ],
    [
      'DoesNotExist fails on a present key',
      { matchExpressions: [{ key: 'env', operator: 'DoesNotExist' }] },
      prodEu,
      false,
    ],
    [
      'expressions are ANDed (all hold)',
      {
        matchExpressions: [
          { key: 'env', operator: 'In', values: ['prod'] },
          { key: 'region', operator: 'NotIn', values: ['us'] },
          { key: 'legacy', operator: 'DoesNotExist' },
        ],
      },
      prodEu,
      true,
    ],
    [
      'expressions are ANDed (one fails)',
      {
        matchExpressions: [
          { key: 'env', operator: 'In', values: ['prod'] },
          { key: 'region', operator: 'In', values: ['us'] },
        ],
      },
      prodEu,
      false,
    ],
    [
      'matchLabels AND matchExpressions',
      { matchLabels: { env: 'prod' }, matchExpressions: [{ key: 'region', operator: 'In', values: ['us'] }] },
      prodEu,
      false,
    ],
    [
      'a key named like an Object member is not present by accident',
      { matchExpressions: [{ key: 'constructor', operator: 'Exists' }] },
      {},
      false,
    ],
    [
      'a key named like an Object member matches NotIn',
      { matchExpressions: [{ key: 'toString', operator: 'NotIn', values: ['x'] }] },
      {},
      true,
    ],
  ];
  it.each(cases)('%s', (_name, selector, labels, expected) => {
    expect(matchesSelector(selector, labels)).toBe(expected);
    expect(compileSelector(selector)(labels)).toBe(expected);
  });
});

describe('labelSelectorProblems (untrusted selectors, e.g. from the API)', () => {
  it('accepts valid selectors', () => {
    expect(labelSelectorProblems({})).toEqual([]);
    expect(
      labelSelectorProblems({
        matchLabels: { 'app.kubernetes.io/name': 'web' },
        matchExpressions: [{ key: 'env', operator: 'In', values: ['prod'] }],
      }),
    ).toEqual([]);
  });

  it('rejects operator/values combinations as Kubernetes does', () => {
    expect(
      labelSelectorProblems({
        matchExpressions: [
          { key: 'a', operator: 'Exists', values: ['x'] },
          { key: 'b', operator: 'In', values: [] },
          { key: 'c', operator: 'NotIn' },
          { key: 'd', operator: 'DoesNotExist', values: ['y'] },
          { key: 'e', operator: 'Inn', values: ['z'] },
          { key: 'f', operator: 'Gt', values: ['1'] },
        ],
      }),
    ).toEqual([
      'matchExpressions[0].values: must be empty when operator is Exists',
      'matchExpressions[1].values: must be non-empty when operator is In',
      'matchExpressions[2].values: must be non-empty when operator is NotIn',
      'matchExpressions[3].values: must be empty when operator is DoesNotExist',
      'matchExpressions[4].operator: unknown operator "Inn" (expected In, NotIn, Exists, DoesNotExist)',
      'matchExpressions[5].operator: unknown operator "Gt" (expected In, NotIn, Exists, DoesNotExist)',
    ]);
  });

  it('rejects invalid keys, values and unknown fields', () => {
    expect(
      labelSelectorProblems({
        matchLabels: { 'bad key': 'x', env: 'not valid!' },
        matchExpressions: [{ key: 'env', operator: 'In', values: ['ok'], extra: 1 }],
        matchFields: {},
      }),
    ).toEqual([
      'matchFields: unknown field (expected matchLabels, matchExpressions)',
      `matchLabels: invalid label key "bad key": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character`,
      `matchLabels.env: invalid label value "not valid!": must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character`,
      'matchExpressions[0].extra: unknown field (expected key, operator, values)',
    ]);
  });
});

describe('string selectors (kubectl -l syntax)', () => {
  it('parses the documented example', () => {
    expect(parseLabelSelector('env=prod,region in (eu,us),!legacy')).toEqual({
      matchLabels: { env: 'prod' },
      matchExpressions: [
        { key: 'region', operator: 'In', values: ['eu', 'us'] },
        { key: 'legacy', operator: 'DoesNotExist' },
      ],
    });
  });

  it.each([
    ['', {}],
    ['   ', {}],
    ['env==prod', { matchLabels: { env: 'prod' } }],
    ['env != prod', { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }] }],
    ['tier', { matchExpressions: [{ key: 'tier', operator: 'Exists' }] }],
    [
      'region notin (us, ap)',
      { matchExpressions: [{ key: 'region', operator: 'NotIn', values: ['ap', 'us'] }] },
    ],
    ['canary=', { matchLabels: { canary: '' } }],
    ['app.kubernetes.io/name=web', { matchLabels: { 'app.kubernetes.io/name': 'web' } }],
    [
      'env=prod,env=staging',
      {
        matchLabels: { env: 'prod' },
        matchExpressions: [{ key: 'env', operator: 'In', values: ['staging'] }],
      },
    ],
  ])('parses %j', (text, expected) => {
    expect(parseLabelSelector(text)).toEqual(expected);
  });

  it('keeps kubectl semantics: != matches clusters without the key', () => {
    const sel = parseLabelSelector('env!=prod');
    expect(matchesSelector(sel, {})).toBe(true);
    expect(matchesSelector(sel, { env: 'prod' })).toBe(false);
  });

  it('reads "in ()" and "notin ()" as Kubernetes does: the set of one empty value', () => {
    expect(parseLabelSelector('env in ()')).toEqual({
      matchExpressions: [{ key: 'env', operator: 'In', values: [''] }],
    });
    expect(parseLabelSelector('env notin ()').matchExpressions).toEqual([
      { key: 'env', operator: 'NotIn', values: [''] },
    ]);
    const emptyEnv = parseLabelSelector('env in ()');
    expect(matchesSelector(emptyEnv, { env: '' })).toBe(true);
    expect(matchesSelector(emptyEnv, { env: 'prod' })).toBe(false);
    expect(matchesSelector(emptyEnv, {})).toBe(false);
  });

  it('round-trips through formatLabelSelector', () => {
    for (const text of ['env=prod,region in (eu,us),!legacy', 'tier,zone notin (a,b),env!=dev', '']) {
      const sel = parseLabelSelector(text);
      expect(parseLabelSelector(formatLabelSelector(sel))).toEqual(sel);
    }
  });

  it.each([
    [
      'env in (prod',
      'invalid selector "env in (prod": expected "," or ")", found end of selector (at column 13)',
    ],
    ['env in prod', 'invalid selector "env in prod": expected "(" after "in" (at column 8)'],
    [
      'env>1',
      'invalid selector "env>1": operator ">" is not supported (use =, ==, !=, in, notin, key or !key) (at column 4)',
    ],
    ['env=prod,', 'invalid selector "env=prod,": expected a requirement after "," (at column 10)'],
    ['=prod', 'invalid selector "=prod": expected a label key, found "=" (at column 1)'],
    [
      'env=prod region=eu',
      'invalid selector "env=prod region=eu": expected "," or end of selector, found "region" (at column 10)',
    ],
    [
      'Bad Key=1',
      'invalid selector "Bad Key=1": expected an operator (=, ==, !=, in, notin) or ",", found "Key" (at column 5)',
    ],
    [
      'env=not/valid',
      `invalid selector "env=not/valid": invalid label value "not/valid": must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (at column 5)`,
    ],
  ])('rejects %j', (text, message) => {
    let error: unknown;
    try {
      parseLabelSelector(text);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(LabelSelectorSyntaxError);
    expect((error as Error).name).toBe('LabelSelectorSyntaxError');
    expect((error as Error).message).toBe(message);
  });
});
