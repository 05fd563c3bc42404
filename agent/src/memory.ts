/**
 * Gives back the memory of a burst of work, once the agent goes to sleep after it.
 *
 * A reconcile of a thousand objects grows V8's heap by tens of megabytes of short-lived
 * data. V8 keeps the pages it grew to; an ordinary collection, even a full one, frees the
 * objects but not the pages. A last-resort collection (what V8 runs before it gives up on
 * an allocation) shrinks the heap to what is live, in some tens of milliseconds. Idle
 * keep-alive connections hold their TLS state in the C heap: closing them lets the
 * collection free their native halves.
 *
 * The agent runs with `--expose-gc` (shared/src/agent/launch.ts); without it, `gc` is taken
 * from a new context, where setting the flag at run time exposes it.
 */
import { createRequire } from 'node:module';
import type * as V8 from 'node:v8';
import type * as Vm from 'node:vm';

type Gc = (opts: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

const require = createRequire(import.meta.url);
let gc: Gc | undefined;

/** Shrinks V8's heap to what is live. */
export function compactHeap(): void {
  gc ??= (globalThis as { gc?: Gc }).gc ?? gcFromNewContext();
  gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}

/** `gc` for a process started without `--expose-gc` (tests): exposed to a new context only. */
function gcFromNewContext(): Gc {
  (require('node:v8') as typeof V8).setFlagsFromString('--expose-gc');
  return (require('node:vm') as typeof Vm).runInNewContext('gc') as Gc;
}

/** Something holding idle keep-alive connections. */
export interface IdleConnections {
  closeIdle(): Promise<void>;
}

/**
 * The agent loop's `settle`: closes the idle connections (their TLS state is the bulk of
 * the C heap a burst leaves), then compacts V8's heap (which frees the closed sockets'
 * native halves). The loop does not wait for it; a call while one runs returns that one.
 */
export function releaseMemoryAfterWork(
  connections: readonly IdleConnections[],
  onError: (e: unknown) => void,
): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () => {
    running ??= Promise.all(connections.map((c) => c.closeIdle()))
      .then(() => {
        compactHeap();
      })
      .catch(onError)
      .finally(() => {
        running = undefined;
      });
    return running;
  };
}
