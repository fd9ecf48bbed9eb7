import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** Why browser tests cannot run here, or undefined when Chromium is installed. */
export function chromiumMissing(): string | undefined {
  if (existsSync(CHROMIUM)) return undefined;
  const why = `Chromium is not installed at ${CHROMIUM}; install it with: apt-get update && apt-get install -y chromium`;
  // CI installs Chromium, so there a missing browser is a failure, not a skip.
  if (process.env.SWITCHBOARD_REQUIRE_CHROMIUM === '1') throw new Error(why);
  return why;
}

/** Starts headless Debian Chromium through playwright-core (never a downloaded browser). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic'],
  });
}
