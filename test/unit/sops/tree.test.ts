import { describe, expect, it } from 'vitest';
import { formatGoFloat, resolvePlainScalar } from '../../../shared/src/sops/tree.ts';

// SOPS hashes values in the form Go prints them, and reads YAML with yaml.v3:
// these pin the tree reader to those (cases checked against sops in
// test/integration/sops/differential.test.ts).

describe('formatGoFloat (strconv.FormatFloat(x, "f", -1, 64))', () => {
  it.each([
    [1, '1'],
    [0.1, '0.1'],
    [-2.5, '-2.5'],
    [1e21, '1000000000000000000000'],
    [1.5e-7, '0.00000015'],
    [123456789.125, '123456789.125'],
    [0, '0'],
    [Number.POSITIVE_INFINITY, '+Inf'],
    [Number.NaN, 'NaN'],
  ])('%s -> %s', (x, text) => {
    expect(formatGoFloat(x)).toBe(text);
  });
});

describe('resolvePlainScalar (yaml.v3 typing of unquoted scalars)', () => {
  it.each([
    ['hello', { kind: 'scalar', type: 'str', text: 'hello' }],
    ['yes', { kind: 'scalar', type: 'str', text: 'yes' }],
    ['True', { kind: 'scalar', type: 'bool', text: 'True' }],
    ['~', { kind: 'null' }],
    ['42', { kind: 'scalar', type: 'int', text: '42' }],
    ['+12', { kind: 'scalar', type: 'int', text: '12' }],
    ['0644', { kind: 'scalar', type: 'int', text: '420' }],
    ['0o17', { kind: 'scalar', type: 'int', text: '15' }],
    ['0x1F', { kind: 'scalar', type: 'int', text: '31' }],
    ['-0b101', { kind: 'scalar', type: 'int', text: '-5' }],
    ['1_000', { kind: 'scalar', type: 'int', text: '1000' }],
    ['09', { kind: 'scalar', type: 'float', text: '9' }],
    ['1e3', { kind: 'scalar', type: 'float', text: '1000' }],
    ['.5', { kind: 'scalar', type: 'float', text: '0.5' }],
    ['.inf', { kind: 'scalar', type: 'float', text: '+Inf' }],
    ['2026-12-01', { kind: 'scalar', type: 'time', text: '2026-12-01T00:00:00Z' }],
    ['2026-1-2T3:04:05.500+01:00', { kind: 'scalar', type: 'time', text: '2026-01-02T03:04:05.5+01:00' }],
    ['2026-12-01 10:00:00', { kind: 'scalar', type: 'time', text: '2026-12-01T10:00:00Z' }],
    ['2026-02-30', { kind: 'scalar', type: 'str', text: '2026-02-30' }],
    ['1.2.3', { kind: 'scalar', type: 'str', text: '1.2.3' }],
  ])('%s', (source, expected) => {
    expect(resolvePlainScalar(source)).toEqual(expected);
  });

  it('refuses integers beyond 64 bits, as sops cannot hold them', () => {
    expect(resolvePlainScalar('18446744073709551615')).toBeUndefined();
  });
});
