import { afterEach, describe, expect, it } from 'vitest';
import { allApps, AppServer, DEFAULT_APP_LIMITS } from '../../../src/apps/index.js';
import { connect } from '../../../src/node/client.js';
import type { Connection } from '../../../src/node/connection.js';
import { until } from '../../wait.js';

/**
 * The shipped server's own limits (issue 9, item 10): routes without a rate
 * of their own get the apps host's, and the server's counters show on
 * /metrics. A flood to the echo app is cut to the burst, counted, and never
 * reaches the handler past it.
 */

const servers: AppServer[] = [];
const clients: Connection<undefined>[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.terminate();
  for (const server of servers.splice(0)) await server.close();
});

describe('AppServer limits', () => {
  it('cuts a flood to the echo app at the default burst, closes the flooder with 1008, and reports it on /metrics', async () => {
    const server = new AppServer({ apps: allApps, logLevel: 'silent' });
    servers.push(server);
    const { port } = await server.listen(0, '127.0.0.1');
    const client = await connect(`ws://127.0.0.1:${port}/echo/ws`, { perMessageDeflate: false });
    clients.push(client);
    let echoes = 0;
    client.on('message', () => echoes++);
    const closed = new Promise<number>((resolve) => client.once('close', (info) => resolve(info.code)));
    const sent = DEFAULT_APP_LIMITS.rateLimit.messageBurst * 3;
    // The whole flood arrives within a few milliseconds, far faster than the rate refills.
    for (let i = 0; i < sent; i++) client.send(`m${i}`);
    // Past the burst, messages are dropped; ten refusals in ten seconds is sustained abuse (RFC 6455 §7.4.1: 1008).
    expect(await closed).toBe(1008);
    const counters = server.websockets.counters();
    expect(counters.rateLimited).toBeGreaterThanOrEqual(10);
    expect(counters.rateLimitCloses).toBe(1);
    expect(echoes).toBeGreaterThanOrEqual(DEFAULT_APP_LIMITS.rateLimit.messageBurst);
    // The burst, plus what the rate refilled while the flood was read: far from all of it.
    expect(echoes).toBeLessThan(sent / 2);
    const refused = counters.rateLimited;
    await until(() => server.websockets.connections.size === 0, 'the server to let go of the connection');

    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(Number(/^sockeye_rate_limited_total (\d+)$/m.exec(metrics)?.[1])).toBe(refused);
    expect(Number(/^sockeye_upgrades_accepted_total (\d+)$/m.exec(metrics)?.[1])).toBe(1);
  });
});
