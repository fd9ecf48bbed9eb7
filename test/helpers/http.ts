import { request } from 'node:http';
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../server/logger.ts';

/** What a raw HTTP request got back. */
export interface RawReply {
  status: number;
  body: string;
}

/**
 * Sends `method target` with the request target exactly as written (fetch would normalise or
 * refuse `//[` and `%E0%A4%A`), with the given bearer token and headers.
 */
export function rawRequest(url: string, method: string, target: string, token?: string, extraHeaders: Record<string, string> = {}): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const headers = token === undefined ? extraHeaders : { ...extraHeaders, authorization: `Bearer ${token}` };
    const req = request(url, { method, path: target, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    // A request nobody answers would otherwise hang the test without naming itself.
    req.setTimeout(15_000, () => req.destroy(new Error(`no answer to ${method} ${target.slice(0, 200)}`)));
    req.on('error', reject);
    req.end();
  });
}

/** rawRequest with GET. */
export function rawGet(url: string, target: string, token?: string, extraHeaders?: Record<string, string>): Promise<RawReply> {
  return rawRequest(url, 'GET', target, token, extraHeaders);
}

/** A logger that keeps the messages of the errors it is given, to assert that none was logged. */
export function errorRecorder(): { logger: Logger; errors: string[] } {
  const errors: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) errors.push(String((JSON.parse(line) as { msg?: unknown }).msg));
      done();
    },
  });
  return { logger: createLogger('error', sink), errors };
}
