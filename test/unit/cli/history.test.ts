import { describe, expect, it } from 'vitest';
import { historyTable, pinsTable, shortHash } from '../../../cli/src/commands/history.ts';

const now = new Date('2024-05-01T12:00:00Z');
const h = (c: string) => `sha256:${c.repeat(64)}`;

describe('history and pins tables', () => {
  it('marks what changed against the generation before, and why each generation exists', () => {
    const text = historyTable(
      {
        clusterId: 'prod-eu-1',
        historyDepth: 25,
        nextBefore: 6,
        generations: [
          {
            generation: 8,
            commit: '4b825dc642cb6eb9a060e54bf8d69288fbee4904',
            createdAt: '2024-05-01T11:59:00Z',
            reason: 'rollback',
            current: true,
            etag: h('e'),
            rollback: { toGeneration: 6, bundle: 'web', by: 'admin-key' },
            bundles: [
              { name: 'baseline', hash: h('9'), change: 'unchanged' },
              { name: 'web', hash: h('b'), change: 'changed' },
            ],
            removed: ['old'],
          },
          {
            generation: 7,
            commit: '4b825dc642cb6eb9a060e54bf8d69288fbee4904',
            createdAt: '2024-05-01T10:00:00Z',
            reason: 'sync',
            current: false,
            etag: h('d'),
            pinsEnded: ['db'],
            bundles: [{ name: 'web', hash: h('7'), change: null }],
            removed: [],
          },
        ],
      },
      now,
    );
    expect(text).toBe(
      [
        'GENERATION   COMMIT         AGE      WHY                   BUNDLES',
        '8*           4b825dc642cb   1m ago   rollback to 6 (web)   baseline@999999999999 ~web@bbbbbbbbbbbb -old',
        '7            4b825dc642cb   2h ago   sync; pin ended: db   web@777777777777',
        '',
        '* current   + added   ~ changed   - removed (against the generation before)',
        'older: flotilla history prod-eu-1 --before 6',
        'the hub keeps the last 25 generations of each cluster',
        '',
      ].join('\n'),
    );
  });

  it('shows a bundle held off the cluster as <absent>', () => {
    expect(shortHash(null)).toBe('<absent>');
    const text = pinsTable(
      [
        {
          cluster: 'edge-1',
          pin: {
            bundle: 'web',
            hash: null,
            plannedHash: h('7'),
            fromGeneration: 3,
            generation: 5,
            pinnedBy: 'admin-key',
            pinnedAt: '2024-05-01T11:55:00Z',
          },
        },
      ],
      now,
    );
    expect(text).toContain(
      'edge-1    web      <absent>    3                 777777777777   admin-key   5m ago',
    );
  });
});
