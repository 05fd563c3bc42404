import { applyWouldChange, mergeFieldSets, takeOverClientSideFields } from '@flotilla/shared/agent';
import { describe, expect, it } from 'vitest';

const entry = (manager: string, operation: string, fieldsV1: object, more: object = {}) => ({
  manager,
  operation,
  apiVersion: 'v1',
  time: '2026-01-01T00:00:00Z',
  fieldsType: 'FieldsV1',
  fieldsV1,
  ...more,
});
const object = (...managedFields: object[]) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'c', managedFields },
  data: { a: '1', b: '2' },
});

describe('managed fields', () => {
  it('merges field sets key by key', () => {
    expect(
      mergeFieldSets(
        { 'f:data': { 'f:a': {} } },
        { 'f:data': { 'f:b': {} }, 'f:metadata': { 'f:labels': { '.': {} } } },
      ),
    ).toEqual({ 'f:data': { 'f:a': {}, 'f:b': {} }, 'f:metadata': { 'f:labels': { '.': {} } } });
  });

  it("folds kubectl's client-side entries into the agent's Apply entry, and leaves the others", () => {
    const live = object(
      entry('kubectl-client-side-apply', 'Update', { 'f:data': { 'f:b': {} } }),
      entry('flotilla-agent', 'Apply', { 'f:data': { 'f:a': {} } }),
      entry('kubectl-edit', 'Update', { 'f:data': { 'f:c': {} } }),
      entry('kubectl', 'Update', { 'f:status': {} }, { subresource: 'status' }),
    );
    expect(takeOverClientSideFields(live, 'flotilla-agent', 'now')).toEqual([
      entry('flotilla-agent', 'Apply', { 'f:data': { 'f:a': {}, 'f:b': {} } }),
      entry('kubectl-edit', 'Update', { 'f:data': { 'f:c': {} } }),
      entry('kubectl', 'Update', { 'f:status': {} }, { subresource: 'status' }),
    ]);
    // Without an Apply entry of its own (kubectl create, never applied), one is made.
    expect(
      takeOverClientSideFields(
        object(entry('kubectl-create', 'Update', { 'f:data': {} })),
        'flotilla-agent',
        'now',
      ),
    ).toEqual([{ ...entry('flotilla-agent', 'Apply', { 'f:data': {} }), time: 'now' }]);
    expect(
      takeOverClientSideFields(object(entry('helm', 'Update', {})), 'flotilla-agent', 'now'),
    ).toBeUndefined();
  });

  it('an apply changes the object when an owned value or the owned set differs, and only then', () => {
    const owned = { 'f:data': { 'f:a': {} } };
    const live = object(entry('flotilla-agent', 'Apply', owned));
    expect(applyWouldChange(live, live, 'flotilla-agent')).toBe(false);
    expect(applyWouldChange({ ...live, data: { a: '9', b: '2' } }, live, 'flotilla-agent')).toBe(true);
    // A key removed from git: the dry run owns less, though no value it keeps differs.
    const less = { ...object(entry('flotilla-agent', 'Apply', { 'f:data': {} })), data: { b: '2' } };
    expect(applyWouldChange(less, live, 'flotilla-agent')).toBe(true);
    // A field not owned by the agent changing in the dry run's copy is not the agent's change.
    expect(applyWouldChange({ ...live, data: { a: '1', b: '3' } }, live, 'flotilla-agent')).toBe(false);
    expect(applyWouldChange(live, object(), 'flotilla-agent')).toBe(true);
  });
});
