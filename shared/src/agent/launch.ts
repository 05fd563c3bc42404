/**
 * How the agent's Node process is started, wherever it runs: the image's ENTRYPOINT
 * (agent/Dockerfile), `flotilla bootstrap --run-agent local`, the integration tests and
 * `npm run bench:agent`. A unit test holds the Dockerfile to this list.
 *
 * Only options that size the heap and its collector: V8's optimising tiers stay on (a
 * process that switched them off would run the agent's JavaScript in the interpreter
 * alone, trading speed in a reconcile of thousands of objects for a few megabytes).
 * Measured with `npm run bench:agent`, see bench/README.md:
 * - `--single-threaded-gc`: the collector does its work on the main thread, so its helper
 *   threads keep no memory of their own;
 * - `--max-semi-space-size=1`: a young generation of 1 MB, so that a burst of short-lived
 *   objects (a reconcile) does not grow it to 16 MB, which lowers the peak;
 * - `--expose-gc`: the agent compacts its heap when it goes to sleep after work
 *   (agent/src/memory.ts); without the flag it must load `node:v8` and `node:vm` and keep a
 *   second context alive to reach `gc`, some 0.7 MB.
 */
export const agentNodeArgs: readonly string[] = [
  '--max-semi-space-size=1',
  '--expose-gc',
  '--single-threaded-gc',
];

/**
 * Environment the agent's process runs with, wherever it runs (the image's ENV, local
 * agents, the bench; a unit test holds the Dockerfile to it). Settings of the C library,
 * not of the agent:
 * - `MALLOC_ARENA_MAX=2`: V8 compiles hot functions on worker threads, and glibc gives each
 *   thread that allocates a malloc arena of its own, whose freed pages stay resident. Two
 *   arenas instead of up to eight per core: 78.1 -> 75.0 MB idle in the in-cluster bench
 *   (bench/README.md), the apply no slower.
 */
export const agentEnvironment: Readonly<Record<string, string>> = {
  MALLOC_ARENA_MAX: '2',
};
