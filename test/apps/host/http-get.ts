import { request as httpRequest } from 'node:http';
import { DEFAULT_WAIT_MS } from '../../wait.js';

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/**
 * One HTTP request to 127.0.0.1 with the path sent exactly as given (no
 * client-side normalisation of `..` or escapes), read whole. Fails when no
 * answer comes within the tests' usual wait.
 */
export function get(port: number, path: string, options: { method?: string; headers?: Record<string, string> } = {}): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      { host: '127.0.0.1', port, path, method: options.method ?? 'GET', headers: options.headers, agent: false },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString('utf8') }),
        );
        response.on('error', reject);
      },
    );
    request.setTimeout(DEFAULT_WAIT_MS, () => request.destroy(new Error(`no answer to ${path} within ${DEFAULT_WAIT_MS} ms`)));
    request.on('error', reject);
    request.end();
  });
}
