/**
 * Gives back the memory of a burst of work. A reconcile of a thousand objects grows V8's
 * heap by tens of megabytes of short-lived data; V8 keeps the pages it grew to, and an
 * ordinary collection, even a full one, frees the objects but not the pages. A last-resort
 * collection (what V8 runs before it gives up on an allocation) shrinks the heap to what is
 * live. It takes some tens of milliseconds for the agent's heap, once per burst: the loop
 * calls it when it goes to sleep after work.
 *
 * `gc` is not exposed to scripts without `--expose-gc`; setting the flag at run time exposes
 * it to new contexts only, so the agent takes it from one and nothing else sees it.
 */
import { createRequire } from 'node:module';
import type * as V8 from 'node:v8';
import type * as Vm from 'node:vm';

type Gc = (opts: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

const require = createRequire(import.meta.url);
let gc: Gc | undefined;

export function compactHeap(): void {
  if (!gc) {
    (require('node:v8') as typeof V8).setFlagsFromString('--expose-gc');
    gc = (require('node:vm') as typeof Vm).runInNewContext('gc') as Gc;
  }
  gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}
