import type { Locator, Page } from 'playwright-core';

/**
 * The chat page as the browser tests drive it: join a room under a
 * nickname, say something, find messages by their text (pending or not).
 */

/** Join `room` as `nick` and wait until the page lists itself among those present. */
export async function join(page: Page, nick: string, room: string, timeout: number): Promise<void> {
  await page.locator('#nick').fill(nick);
  await page.locator('#room').fill(room);
  await page.locator('#join-button').click();
  await page.locator('#room-view').waitFor({ state: 'visible', timeout });
  await page.locator('#presence li', { hasText: nick }).waitFor({ timeout });
}

export async function say(page: Page, text: string): Promise<void> {
  await page.locator('#text').fill(text);
  await page.locator('#text').press('Enter');
}

/** The chat messages on the page whose text is exactly `text` (a plain string, no pattern characters). */
export function messagesWith(page: Page, text: string): Locator {
  return page.locator('#messages li.message', { has: page.locator('.text', { hasText: new RegExp(`^${text}$`) }) });
}
