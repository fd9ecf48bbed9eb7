import { HubError } from '../shared/errors.ts';

const SCHEMES = new Set(['http:', 'https:', 'ws:', 'wss:']);

/** A VALIDATION error about the `url` option (or one item of its list). */
function badUrl(message: string, path: Array<string | number>): HubError {
  return new HubError('VALIDATION', message, [{ path, message }]);
}

/**
 * Checks a hub URL and returns it without a trailing slash. socket.io reads a URL's path as a
 * namespace, so `http://host:4700/foo` would silently talk to namespace /foo; the hub serves its
 * clients only at the root, so any path is refused here instead.
 * @example hubUrl('http://127.0.0.1:4700/') // 'http://127.0.0.1:4700'
 */
export function hubUrl(url: string, path: Array<string | number> = ['url']): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // With a scheme, what is wrong is the rest (a port past 65535, a bad host): no scheme hint then.
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) throw badUrl(`"${url}" is not a valid URL: check its host and port (1-65535)`, path);
    throw badUrl(`"${url}" is not a URL; a hub URL has a scheme, e.g. http://${url || '127.0.0.1:4700'}`, path);
  }
  // "localhost:4700" parses as the scheme "localhost:" with the path "4700".
  if (!SCHEMES.has(parsed.protocol)) {
    throw badUrl(`"${url}" has no http:// or https:// scheme; did you mean http://${url}?`, path);
  }
  if (parsed.pathname !== '/' && parsed.pathname !== '') {
    throw badUrl(`"${url}" has the path ${parsed.pathname}, which the hub does not serve; it serves its clients at the root: ${parsed.origin}`, path);
  }
  return parsed.origin;
}

/**
 * Checks the `url` option, one hub URL or the URLs of a cluster's nodes, and returns the URLs in
 * order without repeats.
 * @example hubUrls(['http://a:4700', 'http://b:4700/']) // ['http://a:4700', 'http://b:4700']
 */
export function hubUrls(url: string | readonly string[]): string[] {
  if (typeof url === 'string') return [hubUrl(url)];
  if (url.length === 0) throw badUrl('url is an empty list; give the URL of at least one hub node', ['url']);
  return [...new Set(url.map((one, index) => hubUrl(one, ['url', index])))];
}
