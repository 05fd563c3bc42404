/**
 * What a person sees of the dashboard's fleet matrix, read from a real browser page and
 * timed by the page's own clock (`performance.now()`, whose zero is the navigation's
 * start): the first cluster row, the rows in the DOM, a search, a scroll. Shared by the
 * dashboard's browser tests and `npm run bench:dashboard`, so both hold the page to the
 * same things.
 */
import type { Page, Request } from 'playwright-core';

/** A cluster row's link: the first thing of the matrix a person can use. */
export const clusterLinkSelector = '.matrix tbody tr[aria-rowindex] th[scope=row] a';

/** The hub calls a page made through the dashboard server (`/api/...`), as they finish. */
export class HubCalls {
  #count = 0;
  #bytes = 0;
  #error: unknown;
  readonly #pending: Promise<void>[] = [];

  constructor(page: Page) {
    const finished = (req: Request) => {
      if (!new URL(req.url()).pathname.startsWith('/api/')) return;
      this.#count++;
      this.#pending.push(
        req.sizes().then(
          (s) => {
            this.#bytes += s.responseBodySize;
          },
          (err: unknown) => {
            this.#error ??= err;
          },
        ),
      );
    };
    page.on('requestfinished', finished);
  }

  /** Requests finished so far, and the bytes of their answers' bodies (as received). */
  async totals(): Promise<{ requests: number; bytes: number }> {
    const requests = this.#count;
    await Promise.all(this.#pending);
    if (this.#error) throw new Error('could not read the size of a hub answer', { cause: this.#error });
    return { requests, bytes: this.#bytes };
  }
}

/**
 * Loads the dashboard and waits for the first cluster row's link to be visible; returns
 * the milliseconds from the navigation's start.
 */
export async function openFleetView(page: Page, url: string, timeoutMs: number): Promise<number> {
  await page.goto(url);
  const at = await page.waitForFunction(
    (selector) => {
      const link = document.querySelector(selector);
      return link?.checkVisibility() ? performance.now() : false;
    },
    clusterLinkSelector,
    { polling: 'raf', timeout: timeoutMs },
  );
  return Math.round((await at.jsonValue()) as number);
}

/** The matrix rows in the DOM (the header row included: all `tr[aria-rowindex]`). */
export function rowsInDom(page: Page): Promise<number> {
  return page.locator('.matrix tr[aria-rowindex]').count();
}

/** The cluster ids of the matrix rows in the DOM, in order. */
export function shownClusters(page: Page): Promise<string[]> {
  return page.locator(clusterLinkSelector).allTextContents();
}

/** The counts line above the matrix ("12 of 10000 clusters ..."). */
export async function countsLine(page: Page): Promise<string> {
  // Its parts (text, then a button per state) joined by spaces, as a person reads them.
  const text = await page
    .locator('.counts')
    .first()
    .evaluate((el) => [...el.childNodes].map((n) => n.textContent?.trim() ?? '').join(' '));
  return text.replace(/\s+/g, ' ').trim();
}

/**
 * Types `text` into the search box (one input event, as a paste) and waits until every
 * cluster row shown contains it; returns the milliseconds that took and the rows shown.
 */
export async function searchClusters(
  page: Page,
  text: string,
  timeoutMs: number,
): Promise<{ ms: number; clusters: string[] }> {
  const start = (await page.evaluate(() => performance.now())) as number;
  await page.locator('input[type=search]').fill(text);
  const at = await page.waitForFunction(
    ({ selector, text }) => {
      const ids = [...document.querySelectorAll(selector)].map((a) => a.textContent ?? '');
      return ids.length > 0 && ids.every((id) => id.includes(text)) ? performance.now() : false;
    },
    { selector: clusterLinkSelector, text },
    { polling: 'raf', timeout: timeoutMs },
  );
  const ms = Math.round(((await at.jsonValue()) as number) - start);
  return { ms, clusters: await shownClusters(page) };
}

/**
 * Scrolls the matrix to its middle and waits until a cluster row of that region (its
 * `aria-rowindex` past a quarter of `aria-rowcount`) is rendered inside the visible part of
 * the scroller; returns the milliseconds that took and that row's `aria-rowindex`.
 */
export async function scrollToMiddle(
  page: Page,
  timeoutMs: number,
): Promise<{ ms: number; rowIndex: number }> {
  const start = (await page.evaluate(() => {
    const el = document.querySelector('.matrix');
    if (!el) throw new Error('no .matrix element to scroll');
    el.scrollTop = (el.scrollHeight - el.clientHeight) / 2;
    return performance.now();
  })) as number;
  const at = await page.waitForFunction(
    () => {
      const el = document.querySelector('.matrix');
      const rowCount = Number(el?.querySelector('table')?.getAttribute('aria-rowcount'));
      if (!el || !(rowCount > 0)) return false;
      const view = el.getBoundingClientRect();
      for (const tr of el.querySelectorAll('tbody tr[aria-rowindex]')) {
        const index = Number(tr.getAttribute('aria-rowindex'));
        const box = tr.getBoundingClientRect();
        if (
          index > rowCount / 4 &&
          box.bottom > view.top &&
          box.top < view.bottom &&
          tr.querySelector('th a')
        )
          return { at: performance.now(), index };
      }
      return false;
    },
    undefined,
    { polling: 'raf', timeout: timeoutMs },
  );
  const { at: end, index } = (await at.jsonValue()) as { at: number; index: number };
  return { ms: Math.round(end - start), rowIndex: index };
}
