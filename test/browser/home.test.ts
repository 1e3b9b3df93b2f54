import { describe, expect, it } from 'vitest';
import { allApps } from '../../src/apps/index.js';
import { useBrowser } from './browser.js';

/** The home page in Chromium: the list of applications and the server's reachability. */

const web = useBrowser();

describe('home page', () => {
  it('lists every application with a line on each, linking those with a page', async () => {
    const page = await web.newPage();
    await page.goto(web.url('/'));
    const items = page.locator('#apps > li');
    await items.first().waitFor();
    expect(await items.count()).toBe(allApps.length);
    for (const app of allApps) {
      const item = page.locator(`#apps > li[data-app="${app.name}"]`);
      expect(await item.locator('.title').textContent()).toBe(app.title);
      expect(await item.locator('.summary').textContent()).toBe(app.summary);
      expect(await item.locator('.endpoint').textContent()).toContain(`/${app.name}/ws`);
      const link = item.locator('a.title');
      expect(await link.count()).toBe(app.pageDir === undefined ? 0 : 1);
      if (app.pageDir !== undefined) expect(await link.getAttribute('href')).toBe(`/${app.name}/`);
    }
  });

  it('says the server is reachable, then unreachable once it stops, then reachable again after a restart', async () => {
    const page = await web.newPage();
    await page.goto(web.url('/'));
    const status = page.locator('#status');
    await page.locator('#status[data-state="open"]').waitFor();
    expect(await status.textContent()).toBe('server reachable');

    await web.stopServer();
    await page.locator('#status[data-state="reconnecting"]').waitFor({ timeout: 5000 });
    expect(await status.textContent()).toMatch(/^server unreachable/);

    await web.startServer();
    await page.locator('#status[data-state="open"]').waitFor({ timeout: 10_000 });
    expect(await status.textContent()).toBe('server reachable');
  });

  it('follows an application link to its page', async () => {
    const page = await web.newPage();
    await page.goto(web.url('/'));
    await page.locator('#apps a[href="/clock/"]').click();
    await page.waitForURL(web.url('/clock/'));
    expect(await page.title()).toMatch(/Clock/);
  });

  it('loads everything from the test server itself', async () => {
    const page = await web.newPage();
    await page.goto(web.url('/'));
    await page.locator('#status[data-state="open"]').waitFor();
    await page.locator('#apps > li').first().waitFor();
    const origin = web.origin;
    // The page, its script, style, icon, the shared module, the list, and the reachability socket.
    for (const path of ['/', '/home.js', '/style.css', '/web/reconnecting-websocket.js', '/api/apps']) {
      expect(web.requests).toContain(new URL(path, origin).href);
    }
    expect(web.requests).toContain(`ws://127.0.0.1:${web.port}/ws`);
    // The harness fails any test whose pages reach elsewhere; here, show it looked.
    expect(web.requests.every((url) => url.startsWith(origin) || url.startsWith(`ws://127.0.0.1:${web.port}/`))).toBe(true);
  });
});
