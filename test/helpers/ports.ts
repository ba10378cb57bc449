// Free port numbers for test servers. Servers listen on their own unix socket directory only
// (listen_addresses = ''), where the port merely names the socket file, so two clusters cannot
// collide even with equal ports; a port the OS reports free still keeps TCP usable for a test
// that turns listen_addresses on, and cluster start retries with a new port on "could not bind".
import { createServer } from 'node:net';

const handedOut = new Set<number>();

/** A port nothing listens on right now (the OS picks it: bind to port 0 on 127.0.0.1). */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolvePort, reject) => {
      const server = createServer();
      server.unref();
      server.on('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        server.close(() => {
          if (address !== null && typeof address === 'object') resolvePort(address.port);
          else reject(new Error('could not find a free port'));
        });
      });
    });
    // Skip a port this process handed out already and whose server is not up yet.
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}
