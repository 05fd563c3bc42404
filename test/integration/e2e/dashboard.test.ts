/**
 * The dashboard in a real browser (the bed's headless Chromium), served as `flotilla
 * dashboard` serves it, against the real local hub with a spoke and its real agent: the
 * matrix shows the spoke's real states, a hand edit under driftPolicy warn turns its cell
 * to Drifted without a reload, a broken commit shows its file:line, and a wrong admin key
 * shows the banner instead of a blank page.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
const notes = `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${namespace}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  text: hello\n`;

let fleet: LocalFleet;
let browser: Browser;
const servers: { close(): Promise<void> }[] = [];
const fleetDir = mkdtempSync(join(tmpdir(), 'flotilla-db-e2e-fleet-'));

async function dashboard(key: string): Promise<string> {
  const hub = new HubClient({ baseUrl: fleet.hubUrl, admin: { kind: 'key', key } });
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
});
