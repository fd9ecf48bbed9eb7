import { HubError } from '../shared/errors.ts';

const SCHEMES = new Set(['http:', 'https:', 'ws:', 'wss:']);

/** A VALIDATION error about the `url` option. */
function badUrl(message: string): HubError {
  return new HubError('VALIDATION', message, [{ path: ['url'], message }]);
}

/**
 * Checks a hub URL and returns it without a trailing slash. socket.io reads a URL's path as a
 * namespace, so `http://host:4700/foo` would silently talk to namespace /foo; the hub serves its
 * clients only at the root, so any path is refused here instead.
 * @example hubUrl('http://127.0.0.1:4700/') // 'http://127.0.0.1:4700'
 */
export function hubUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw badUrl(`"${url}" is not a URL; a hub URL has a scheme, e.g. http://${url || '127.0.0.1:4700'}`);
  }
  // "localhost:4700" parses as the scheme "localhost:" with the path "4700".
  if (!SCHEMES.has(parsed.protocol)) {
    throw badUrl(`"${url}" has no http:// or https:// scheme; did you mean http://${url}?`);
  }
  if (parsed.pathname !== '/' && parsed.pathname !== '') {
    throw badUrl(`"${url}" has the path ${parsed.pathname}, which the hub does not serve; it serves its clients at the root: ${parsed.origin}`);
  }
  return parsed.origin;
}
