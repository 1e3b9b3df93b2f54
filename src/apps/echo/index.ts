import type { App } from '../app.js';
import { socketPath } from '../app.js';

/** Echoes every message back as it came: text as text, binary as binary. */
export const echoApp: App = {
  name: 'echo',
  title: 'Echo',
  summary: 'Every message comes back as it was sent: the simplest way to try a client.',
  mount(server) {
    server.route(socketPath(echoApp), {
      decodeText: false, // text goes back as the bytes it came in
      message(connection, data, isBinary) {
        connection.send(data, { binary: isBinary });
      },
    });
  },
};
