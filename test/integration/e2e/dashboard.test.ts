/**
 * The dashboard in a real browser (the bed's headless Chromium), served as `flotilla
 * dashboard` serves it, against the real local hub with a spoke and its real agent: the
 * matrix shows the spoke's real states, a hand edit under driftPolicy warn turns its cell
 * to Drifted without a reload, a broken commit shows its file:line, and a wrong admin key
 * shows the banner instead of a blank page.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { buildDashboard } from '@flotilla/dashboard/build.ts';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startDashboardServer } from '../../../cli/src/dashboard/server.ts';
import { HubClient } from '../../../cli/src/hub/hub-client.ts';
import { openBrowser } from '../../bed/src/browser.ts';
import { LocalFleet, type LocalSpoke } from '../../support/local-fleet.ts';

const bed = inject('bed');
const id = `${process.pid % 1000}${Date.now().toString(36).slice(-4)}`;
const spoke: LocalSpoke = {
  name: `db${id}-a`,
  labels: { suite: id },
  kubeconfigPath: bed.clusters[0]?.kubeconfigPath ?? '',
};
const namespace = `db-${id}`;
const notesYaml = `namespace: ${namespace}\ndriftPolicy: warn\ntargets: [{clusterSelector: {matchLabels: {suite: "${id}"}}}]\n`;
const secretValue = 'kept-out-of-the-page-7f3a';
const notes = `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${namespace}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  text: hello\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: notes-token\nstringData:\n  token: ${secretValue}\n`;
// A bundle in a rollout whose only wave bakes for an hour: it stays progressing, so the
// Rollouts view has actions to take.
const stagedYaml = `namespace: ${namespace}\ntargets: [{clusterSelector: {matchLabels: {suite: "${id}"}}}]\nrollout:\n  waves:\n    - { name: canary, clusterSelector: {matchLabels: {suite: "${id}"}}, bake: 1h }\n`;
const staged = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: staged\ndata:\n  step: one\n';
/** Set FLOTILLA_SCREENSHOTS to a folder to have the tests save a screenshot of each view there (docs/dashboard.md shows them). */
const screenshots = process.env.FLOTILLA_SCREENSHOTS;
async function shoot(page: Page, name: string): Promise<void> {
  if (screenshots) await page.screenshot({ path: join(screenshots, `${name}.png`), fullPage: true });
}

let fleet: LocalFleet;
let browser: Browser;
const servers: { close(): Promise<void> }[] = [];
const fleetDir = mkdtempSync(join(tmpdir(), 'flotilla-db-e2e-fleet-'));

async function dashboard(key: string, hubUrl = fleet.hubUrl): Promise<string> {
  const hub = new HubClient({ baseUrl: hubUrl, admin: { kind: 'key', key } });
  const server = await startDashboardServer({ hub, assets: await buildDashboard() });
  servers.push(server);
  return server.url;
}

function core(): CoreV1Api {
  const kc = new KubeConfig();
  kc.loadFromFile(spoke.kubeconfigPath);
  return kc.makeApiClient(CoreV1Api);
}

/** The text of the matrix row of the spoke. */
async function rowText(page: Page): Promise<string> {
  return (await page.locator('.matrix tr', { hasText: spoke.name }).first().textContent()) ?? '';
}

beforeAll(async () => {
  for (const [path, content] of Object.entries({
    'bundles/notes/bundle.yaml': notesYaml,
    'bundles/notes/notes.yaml': notes,
    'bundles/staged/bundle.yaml': stagedYaml,
    'bundles/staged/staged.yaml': staged,
  })) {
    mkdirSync(dirname(join(fleetDir, path)), { recursive: true });
    writeFileSync(join(fleetDir, path), content);
  }
  fleet = await LocalFleet.start({ bed, repoName: `db-e2e-${id}`, fleetFrom: fleetDir, prefix: `db${id}` });
  await fleet.bootstrap([spoke], {
    namespace: `flotilla-${spoke.name}`,
    notify: 'sqs',
    agentEnv: { FLOTILLA_HEARTBEAT_INTERVAL: '1s', FLOTILLA_DRIFT_INTERVAL: '2s' },
  });
  await fleet.waitInSync({ timeoutMs: 120_000 });
  browser = await openBrowser();
}, 300_000);

afterAll(async () => {
  await browser?.close();
  for (const s of servers) await s.close();
  await fleet?.stop();
  rmSync(fleetDir, { recursive: true, force: true });
  for (const ns of [namespace, `flotilla-${spoke.name}`])
    await core()
      .deleteNamespace({ name: ns })
      .catch(() => undefined);
}, 120_000);

describe('the dashboard in a browser, on a real hub and spoke', () => {
  it("shows the spoke's real state, then Drifted after a hand edit, without a reload", async () => {
    const page = await browser.newPage();
    await page.goto(await dashboard(fleet.adminKey));
    await expect.poll(() => rowText(page), { timeout: 20_000 }).toContain('Ready');
    const marker = await page.evaluate('window.__flotillaLoaded = "same page"');
    expect(marker).toBe('same page');

    const api = core();
    const live = await api.readNamespacedConfigMap({ name: 'notes', namespace });
    await api.replaceNamespacedConfigMap({
      name: 'notes',
      namespace,
      body: { ...live, data: { text: 'edited by hand' } },
    });
    await expect.poll(() => rowText(page), { timeout: 30_000 }).toContain('Drifted');
    // The same page (no reload): what was set on it is still there.
    expect(await page.evaluate('window.__flotillaLoaded')).toBe('same page');
    await shoot(page, 'fleet');
    // The cluster's own view names the drifted object and field.
    await page.getByRole('link', { name: spoke.name, exact: true }).click();
    expect(page.url()).toContain(`#/clusters/${spoke.name}`);
    const main = page.locator('main');
    await expect
      .poll(() => main.textContent(), { timeout: 20_000 })
      .toMatch(/drifted\s*\/ConfigMap\/.*notes/i);
    expect(await main.textContent()).toContain('data.text');
    expect(await main.textContent()).toContain(`suite=${id}`);
    await shoot(page, 'cluster');
    await page.close();
  }, 90_000);

  it("shows a broken commit's file:line at the top", async () => {
    const page = await browser.newPage();
    await page.goto(await dashboard(fleet.adminKey));
    await fleet.push('break notes', (repo) =>
      repo.write('bundles/notes/bundle.yaml', `${notesYaml}paused: sometimes\n`),
    );
    await expect
      .poll(
        () =>
          page
            .locator('.fleet-errors')
            .textContent()
            .catch(() => ''),
        { timeout: 30_000 },
      )
      .toMatch(/bundles\/notes\/bundle\.yaml:4: paused/);
    // Its column says it is held, and its cell keeps the state of the revision in force.
    await expect
      .poll(() => page.locator('.matrix thead th', { hasText: 'notes' }).textContent(), { timeout: 10_000 })
      .toContain('Held');
    await fleet.push('fix notes', (repo) => repo.write('bundles/notes/bundle.yaml', notesYaml));
    await page.close();
  }, 90_000);

  it('shows a banner, not a blank page, when the admin key is refused', async () => {
    const page = await browser.newPage();
    await page.goto(await dashboard('adm_wrong_key_for_the_test_00000000'));
    const banner = page.locator('[role="alert"]');
    await expect
      .poll(
        () =>
          banner
            .first()
            .textContent()
            .catch(() => ''),
        { timeout: 20_000 },
      )
      .toMatch(/refused/i);
    await page.close();
  }, 60_000);

  it('keeps filters in the address: a new page shows the same rows, the back button returns', async () => {
    const page = await browser.newPage();
    const base = await dashboard(fleet.adminKey);
    await page.goto(base);
    await expect.poll(() => rowText(page), { timeout: 20_000 }).toContain(spoke.name);
    await page.getByLabel('Selector').fill(`suite=${id}`);
    await page.getByLabel('Search').fill(spoke.name.slice(-6));
    await expect.poll(() => page.url(), { timeout: 5000 }).toContain('search=');
    const filtered = page.url();
    expect(decodeURIComponent(filtered)).toContain(`selector=suite=${id}`);
    await expect.poll(() => rowText(page), { timeout: 10_000 }).toContain(spoke.name);
    // The same address in a new page: the same filter, the same row.
    const other = await browser.newPage();
    await other.goto(filtered);
    await expect.poll(() => rowText(other), { timeout: 20_000 }).toContain(spoke.name);
    expect(await other.getByLabel('Selector').inputValue()).toBe(`suite=${id}`);
    await other.close();
    // A filter that matches nothing says so; one that does not parse names the error and keeps the rows.
    await page.getByLabel('Selector').fill('suite=nobody-has-this');
    await expect
      .poll(() => page.locator('main').textContent(), { timeout: 10_000 })
      .toContain('No clusters match');
    await page.getByLabel('Selector').fill('suite in nope');
    await expect
      .poll(() => page.locator('[role="alert"]').first().textContent(), { timeout: 5000 })
      .toMatch(/invalid selector/);
    await page.getByLabel('Selector').fill(`suite=${id}`);
    await expect.poll(() => rowText(page), { timeout: 10_000 }).toContain(spoke.name);
    // Into a cluster and back: the filtered fleet view again.
    await page.getByRole('link', { name: spoke.name, exact: true }).click();
    await expect.poll(() => page.url()).toContain('#/clusters/');
    await page.goBack();
    await expect.poll(() => page.url()).toContain('search=');
    await expect.poll(() => rowText(page), { timeout: 10_000 }).toContain(spoke.name);
    await page.close();
  }, 90_000);

  it("shows a bundle's clusters, its rendered objects (no Secret values) and the targeting preview", async () => {
    const page = await browser.newPage();
    await page.goto(`${await dashboard(fleet.adminKey)}#/bundles/notes`);
    const main = page.locator('main');
    await expect.poll(() => main.textContent(), { timeout: 20_000 }).toContain(`Rendered for ${spoke.name}`);
    await expect.poll(() => main.textContent(), { timeout: 20_000 }).toMatch(/ConfigMap .*\/notes/);
    // Every object opens to its YAML; a Secret's values never reach the page.
    for (const summary of await page.locator('ul.objects summary').all()) await summary.click();
    await expect.poll(() => main.textContent()).toContain('text: hello');
    expect(await main.textContent()).toContain('token: (hidden)');
    expect(await page.content()).not.toContain(secretValue);
    await page.getByRole('button', { name: 'Preview targeting' }).click();
    await expect.poll(() => main.textContent(), { timeout: 30_000 }).toContain('gets it');
    await shoot(page, 'bundle');
    await page.close();
  }, 90_000);

  it('pauses and resumes a rollout after a confirmation, and the phase changes', async () => {
    // A new revision of the staged bundle starts a rollout (a cluster's first revision of a
    // bundle, at registration, reaches it directly).
    await fleet.push('stage two', (repo) =>
      repo.write('bundles/staged/staged.yaml', staged.replace('step: one', 'step: two')),
    );
    const page = await browser.newPage();
    await page.goto(`${await dashboard(fleet.adminKey)}#/rollouts`);
    const section = page.locator('section[aria-label="rollout of staged"]');
    await expect
      .poll(() => section.textContent().catch(() => ''), { timeout: 30_000 })
      .toContain('progressing');
    await shoot(page, 'rollouts');
    // Dismissing the confirmation does nothing.
    page.once('dialog', (d) => void d.dismiss());
    await section.getByRole('button', { name: 'pause' }).click();
    await new Promise((r) => setTimeout(r, 2500));
    expect(await section.textContent()).toContain('progressing');
    const asked: string[] = [];
    page.once('dialog', (d) => {
      asked.push(d.message());
      void d.accept();
    });
    await section.getByRole('button', { name: 'pause' }).click();
    await expect.poll(() => section.textContent(), { timeout: 10_000 }).toContain('paused');
    expect(asked[0]).toMatch(/^Pause the rollout of staged\?/);
    page.once('dialog', (d) => void d.accept());
    await section.getByRole('button', { name: 'resume' }).click();
    await expect.poll(() => section.textContent(), { timeout: 10_000 }).toContain('progressing');
    // The canary has the new revision: its Bundle view compares it with the generation before.
    await expect
      .poll(
        async () =>
          (
            await new HubClient({
              baseUrl: fleet.hubUrl,
              admin: { kind: 'key', key: fleet.adminKey },
            }).clusterHistory(spoke.name)
          ).generations.length,
        { timeout: 30_000 },
      )
      .toBeGreaterThan(1);
    await page.goto(`${new URL(page.url()).origin}/#/bundles/staged`);
    const main = page.locator('main');
    await expect.poll(() => main.textContent(), { timeout: 20_000 }).toContain(`Rendered for ${spoke.name}`);
    const select = page.locator('select[name="compare-generation"]');
    await expect.poll(() => select.locator('option').count(), { timeout: 20_000 }).toBeGreaterThan(1);
    await select.selectOption({ index: 1 });
    const diff = page.locator('pre.diff-hunks', { hasText: 'step:' }).first();
    await expect.poll(() => diff.textContent().catch(() => ''), { timeout: 20_000 }).toContain('step: two');
    expect(await diff.locator('del').allTextContents()).toContainEqual(expect.stringContaining('step: one'));
    expect(await diff.locator('ins').allTextContents()).toContainEqual(expect.stringContaining('step: two'));
    await shoot(page, 'bundle-diff');
    await page.close();
  }, 120_000);

  it('says the hub cannot be reached when it stops, and keeps what it showed', async () => {
    // A hop between the dashboard and the hub that the test can take away.
    const target = new URL(fleet.hubUrl);
    const hop = createServer((req, res) => {
      const out = httpRequest(
        { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers },
        (back) => {
          res.writeHead(back.statusCode ?? 502, back.headers);
          back.pipe(res);
        },
      );
      out.on('error', () => res.destroy());
      req.pipe(out);
    });
    await new Promise<void>((r) => hop.listen(0, '127.0.0.1', r));
    const page = await browser.newPage();
    await page.goto(
      await dashboard(fleet.adminKey, `http://127.0.0.1:${(hop.address() as AddressInfo).port}`),
    );
    await expect.poll(() => rowText(page), { timeout: 20_000 }).toContain(spoke.name);
    hop.closeAllConnections();
    await new Promise<void>((r) => hop.close(() => r()));
    const banner = page.locator('[role="alert"]');
    await expect
      .poll(
        () =>
          banner
            .first()
            .textContent()
            .catch(() => ''),
        { timeout: 20_000 },
      )
      .toMatch(/cannot be reached/);
    expect(await rowText(page)).toContain(spoke.name);
    await page.close();
  }, 60_000);

  it('is reached by keyboard, asks nothing of other origins, never shows the key, and has a dark theme', async () => {
    const page = await browser.newPage();
    const base = await dashboard(fleet.adminKey);
    const origin = new URL(base).origin;
    const foreign: string[] = [];
    const leaks: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith(origin) && !r.url().startsWith('data:')) foreign.push(r.url());
    });
    page.on('response', async (r) => {
      const headers = await r.allHeaders();
      if ('authorization' in headers || 'set-cookie' in headers) leaks.push(`${r.url()}: header`);
      const body = await r.text().catch(() => '');
      if (body.includes(fleet.adminKey)) leaks.push(`${r.url()}: body`);
    });
    await page.goto(base);
    await expect.poll(() => rowText(page), { timeout: 20_000 }).toContain(spoke.name);
    // Tab through the page: the filters, a cluster link and a bundle column are reached, each with a visible focus ring.
    const reached: string[] = [];
    for (let i = 0; i < 30; i++) {
      await page.keyboard.press('Tab');
      const focused = await page.evaluate(() => {
        const el = document.activeElement as HTMLElement | null;
        if (!el) return null;
        const style = getComputedStyle(el);
        return {
          what: `${el.tagName.toLowerCase()}:${el.getAttribute('name') ?? el.textContent?.trim() ?? ''}`,
          ring: style.outlineStyle !== 'none' && style.outlineWidth !== '0px',
        };
      });
      if (!focused || focused.what.startsWith('body:')) continue;
      reached.push(focused.what);
      expect(focused.ring, `focus ring on ${focused.what}`).toBe(true);
    }
    expect(reached).toContain('input:selector');
    expect(reached).toContain('select:state');
    expect(reached).toContain('input:search');
    expect(reached).toContain(`a:${spoke.name}`);
    expect(reached).toContain('a:notes');
    // Dark theme: other colours, and text that stays readable (WCAG contrast of at least 4.5).
    const colours = () =>
      page.evaluate(() => {
        const s = getComputedStyle(document.body);
        return { bg: s.backgroundColor, fg: s.color };
      });
    const light = await colours();
    await page.emulateMedia({ colorScheme: 'dark' });
    const dark = await colours();
    expect(dark.bg).not.toBe(light.bg);
    expect(contrast(dark.fg, dark.bg)).toBeGreaterThanOrEqual(4.5);
    expect(contrast(light.fg, light.bg)).toBeGreaterThanOrEqual(4.5);
    await shoot(page, 'fleet-dark');
    expect(foreign).toEqual([]);
    expect(leaks).toEqual([]);
    await page.close();
  }, 90_000);
});

/** The WCAG contrast ratio of two `rgb(r, g, b)` colours. */
function contrast(a: string, b: string): number {
  const lum = (c: string) => {
    const [r, g, bl] = (c.match(/\d+(\.\d+)?/g) ?? []).slice(0, 3).map((x) => {
      const v = Number(x) / 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * (r ?? 0) + 0.7152 * (g ?? 0) + 0.0722 * (bl ?? 0);
  };
  const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x) as [number, number];
  return (hi + 0.05) / (lo + 0.05);
}
