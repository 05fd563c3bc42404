import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChromiumUnavailableError, ensureChromium, openBrowser } from '../../bed/src/browser.ts';

// The bed's real browser: headless Chromium from Debian's packages driven by
// playwright-core, against a page served over real HTTP on loopback. The page builds its
// content from a JSON endpoint in a script, so a passing DOM check means the script ran
// and fetched over the network.

const page = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>bed page</title>
<style>body { font: 16px sans-serif; } :focus { outline: 3px solid #c00; }</style></head>
<body>
<h1 id="title">loading</h1>
<ul id="clusters"></ul>
<script type="module">
  const response = await fetch('/clusters.json');
  const clusters = await response.json();
  const list = document.getElementById('clusters');
  for (const c of clusters) {
    const item = document.createElement('li');
    const button = document.createElement('button');
    button.id = 'open-' + c.name;
    button.textContent = c.name + ': ' + c.state;
    button.addEventListener('click', () => { document.getElementById('title').textContent = 'picked ' + c.name; });
    item.append(button);
    list.append(item);
  }
  document.getElementById('title').textContent = clusters.length + ' clusters';
</script>
</body>
</html>`;

const clusters = [
  { name: 'spoke-a', state: 'Ready' },
  { name: 'spoke-b', state: 'Drifted' },
  { name: 'spoke-c', state: 'Failed' },
];

let server: Server;
let url: string;
let browser: Browser;
let dir: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page);
    } else if (req.url === '/clusters.json') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(clusters));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  browser = await openBrowser();
  dir = mkdtempSync(join(tmpdir(), 'flotilla-browser-'));
});

afterAll(async () => {
  await browser?.close();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the bed browser', () => {
  it('is the system Chromium', async () => {
    const { version } = await ensureChromium();
    expect(version).toMatch(/^Chromium \d+\./);
    expect(browser.version()).toMatch(/^\d+\./);
    expect(version).toContain(browser.version().split('.')[0]);
  });

  it('runs the page script and shows what it fetched', async () => {
    const context = await browser.newContext();
    try {
      const tab = await context.newPage();
      await tab.goto(url);
      await expect.poll(() => tab.textContent('#title')).toBe('3 clusters');
      expect(await tab.locator('#clusters li').allTextContents()).toEqual([
        'spoke-a: Ready',
        'spoke-b: Drifted',
        'spoke-c: Failed',
      ]);
      await tab.click('#open-spoke-b');
      expect(await tab.textContent('#title')).toBe('picked spoke-b');
    } finally {
      await context.close();
    }
  });

  it('moves keyboard focus with Tab and activates with Enter', async () => {
    const context = await browser.newContext();
    try {
      const tab = await context.newPage();
      await tab.goto(url);
      await expect.poll(() => tab.locator('#clusters button').count()).toBe(3);
      // An expression rather than a function: the tests compile without the DOM's types.
      const focused = () => tab.evaluate<string>("document.activeElement?.id ?? ''");
      expect(await focused()).toBe('');
      await tab.keyboard.press('Tab');
      expect(await focused()).toBe('open-spoke-a');
      await tab.keyboard.press('Tab');
      expect(await focused()).toBe('open-spoke-b');
      await tab.keyboard.press('Shift+Tab');
      expect(await focused()).toBe('open-spoke-a');
      await tab.keyboard.press('Enter');
      expect(await tab.textContent('#title')).toBe('picked spoke-a');
    } finally {
      await context.close();
    }
  });

  it('writes a screenshot', async () => {
    const context = await browser.newContext({ viewport: { width: 640, height: 360 } });
    try {
      const tab = await context.newPage();
      await tab.goto(url);
      await expect.poll(() => tab.textContent('#title')).toBe('3 clusters');
      const file = join(dir, 'page.png');
      await tab.screenshot({ path: file });
      const png = readFileSync(file);
      expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
      // IHDR: width and height, big-endian, at bytes 16 and 20.
      expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([640, 360]);
      expect(statSync(file).size).toBeGreaterThan(1000);
    } finally {
      await context.close();
    }
  });
});

describe('ensureChromium', () => {
  it('takes FLOTILLA_CHROMIUM when set, and says when it is no executable', async () => {
    const saved = process.env.FLOTILLA_CHROMIUM;
    const fake = join(dir, 'fake-chromium');
    writeFileSync(
      fake,
      '#!/bin/sh\necho "some warning on stderr" >&2\necho "Chromium 1.2.3.4 built on test"\n',
    );
    try {
      chmodSync(fake, 0o644);
      process.env.FLOTILLA_CHROMIUM = fake;
      const refused = ensureChromium();
      await expect(refused).rejects.toBeInstanceOf(ChromiumUnavailableError);
      await expect(refused).rejects.toThrow(`FLOTILLA_CHROMIUM=${fake} is not an executable file`);
      chmodSync(fake, 0o755);
      expect(await ensureChromium()).toEqual({ path: fake, version: 'Chromium 1.2.3.4 built on test' });
    } finally {
      if (saved === undefined) delete process.env.FLOTILLA_CHROMIUM;
      else process.env.FLOTILLA_CHROMIUM = saved;
    }
  });
});
