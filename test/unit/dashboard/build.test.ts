import { buildDashboard } from '@flotilla/dashboard/build.ts';
import { describe, expect, it } from 'vitest';

describe('the dashboard bundle', () => {
  it('builds into one JavaScript and one CSS file that load nothing from elsewhere', async () => {
    const bundle = await buildDashboard();
    expect(bundle.js.length).toBeGreaterThan(1000);
    // Everything is inlined: no import from a URL or a bare module left for a CDN to serve.
    expect(bundle.js).not.toMatch(/\bfrom\s*["'](?!\.)[^"']+["']/);
    expect(bundle.js).not.toMatch(/\bimport\s*\(\s*["']/);
    expect(bundle.css).not.toMatch(/@import|url\(\s*["']?https?:/);
    // Both themes, chosen by the system setting.
    expect(bundle.css).toContain('prefers-color-scheme:dark');
    // The page reaches the hub only through the dashboard server's /api.
    expect(bundle.js).toContain('/api');
    expect(bundle.js).toContain('x-flotilla-dashboard');
  });
});
