/**
 * The ports browsers and `fetch` refuse to connect to (the Fetch standard's "bad ports", 1024 and
 * up: the rest need root anyway). A hub on one serves its SDK clients, but no browser opens its dashboard.
 */
const BLOCKED = new Set([1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080]);

/** Whether browsers and `fetch` refuse `port`. */
export function browsersRefuse(port: number): boolean {
  return BLOCKED.has(port);
}
