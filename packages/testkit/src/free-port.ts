import { createServer } from 'node:net';

/**
 * Asks the kernel for a TCP port that is free on the loopback interface right now. Another process
 * may take it before the caller binds it; callers that spawn servers should be ready to retry.
 *
 * @example
 * const port = await freePort();
 * server.listen(port, '127.0.0.1');
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('freePort: the listener has no TCP address'));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}
