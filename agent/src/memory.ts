/**
 * Gives back the memory of a burst of work, once the agent goes to sleep after it.
 *
 * A reconcile of a thousand objects grows V8's heap by tens of megabytes of short-lived
 * data and the C heap by several more (sixteen TLS connections, thousands of HTTP
 * buffers). Neither shrinks by itself:
 * - V8 keeps the pages it grew to; an ordinary collection, even a full one, frees the
 *   objects but not the pages. A last-resort collection (what V8 runs before it gives up
 *   on an allocation) shrinks the heap to what is live, in some tens of milliseconds.
 * - glibc's malloc returns memory to the system only from the top of its heap. The native
 *   addon in agent/native calls malloc_trim(0), which releases every whole free page.
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

/** Where agent/native/build.ts puts the addon. */
export const nativeAddonPath = new URL('../native/build/malloc-trim.node', import.meta.url).pathname;

type NativeHeap = { trim(): boolean };
let native: NativeHeap | undefined;
let unavailable: string | undefined;

function loadNative(): NativeHeap | undefined {
  if (!native && unavailable === undefined) {
    try {
      native = require(nativeAddonPath) as NativeHeap;
    } catch (e) {
      unavailable = (e instanceof Error ? e.message : String(e)).split('\n')[0] ?? 'unknown';
    }
  }
  return native;
}

/**
 * Whether the C heap can be trimmed here: the addon is built and loads (glibc on Linux).
 * Otherwise why not, for the agent's start-up line.
 */
export function nativeHeapTrim(): { available: true } | { available: false; reason: string } {
  return loadNative() ? { available: true } : { available: false, reason: unavailable ?? 'unknown' };
}

/** Releases the C heap's free pages; false when nothing could be (or no addon). */
export function trimNativeHeap(): boolean {
  return loadNative()?.trim() ?? false;
}

/** Something holding idle keep-alive connections. */
export interface IdleConnections {
  closeIdle(): Promise<void>;
}

/**
 * The agent loop's `settle`: closes the idle connections (their TLS state is the bulk of
 * the C heap a burst leaves), then compacts V8's heap (which frees the closed sockets'
 * native halves) and trims the C heap. The loop does not wait for it; a call while one
 * runs returns that one.
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
        // The sockets' native halves are deleted by the collection's weak callbacks, which
        // may run after it returns: trim once they have.
        return new Promise<void>((resolve) => setImmediate(resolve));
      })
      .then(() => {
        trimNativeHeap();
      })
      .catch(onError)
      .finally(() => {
        running = undefined;
      });
    return running;
  };
}
