/**
 * Polls `fn` until it returns something other than undefined, and returns that; throws
 * naming `what` when `timeoutMs` passes first. For waits on other processes (agents,
 * control planes), whose timing a test does not control.
 */
export async function until<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  opts: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 250));
  }
}
