/**
 * Text formatting shared by the renderers. Everything here is locale- and timezone-free so that
 * the same input gives the same bytes on every machine.
 */

import { percentText } from '../../shared/percent-text.ts';

/** Placeholder for a missing value. */
export const NONE = '—';

/**
 * Makes user text literal inline Markdown on one line: line breaks become spaces and every
 * character that could start markup (emphasis, code, links, images, raw HTML, entities, table
 * cell breaks) is backslash-escaped. Safe in table cells and after a list marker.
 */
export function markdownText(text: string): string {
  return text
    .replace(/\r\n|[\r\n\t\u2028\u2029]/g, ' ')
    .replace(CONTROL, '?')
    .replace(/[\\`*_[\]<>|~&!{}]/g, '\\$&');
}

/**
 * Control characters (an escape sequence could retitle the terminal that shows the report, write
 * its clipboard or redraw the screen: `switchboard report` prints it) and bidirectional overrides,
 * made `?` as the CLI's printable() does.
 */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/** The characters of CONTROL that HTML may keep: tab and line feed are whitespace there. */
const HTML_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/**
 * Escapes text for HTML element content and double- or single-quoted attribute values. Control
 * characters and bidirectional overrides become `?` as in Markdown (`switchboard report --format
 * html` prints the page); a carriage return ends a line.
 */
export function escapeHtml(text: string): string {
  return text
    .replace(/\r\n?/g, '\n')
    .replace(HTML_CONTROL, '?')
    .replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A timestamp (ms since the epoch) in UTC ISO 8601. */
export function isoTime(ms: number | null): string {
  return ms === null ? NONE : new Date(ms).toISOString();
}

/** A duration in milliseconds, e.g. `850 ms`, `12.3 s`, `4 min 05 s`, `2 h 03 min`. */
export function duration(ms: number | null): string {
  if (ms === null) return NONE;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  // Below 59.95 s: one decimal would round anything above up to `60.0 s`, which is `1 min 00 s`.
  if (ms < 59_950) return `${(ms / 1000).toFixed(1)} s`;
  const seconds = Math.round(ms / 1000);
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${String(seconds % 60).padStart(2, '0')} s`;
  const minutes = Math.floor(seconds / 60);
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')} min`;
}

/**
 * A number with at most four decimals, without trailing zeros; below 1, four significant digits,
 * so that a small KPI value (0.00003) is not printed as 0, nor two different ones alike.
 */
export function decimal(value: number | null): string {
  if (value === null) return NONE;
  return String(Number(Math.abs(value) < 1 ? value.toPrecision(4) : value.toFixed(4)));
}

/** A percentage with one decimal, never rounded up to 100.0% (percentText). */
export function percent(value: number): string {
  return percentText(value, 1);
}

/** A size in bytes, in binary units. */
export function byteSize(bytes: number | null): string {
  if (bytes === null) return NONE;
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  // As printed, with one decimal: 1048575 B is 1023.999 KiB, which prints as `1024.0 KiB`.
  while (Number(value.toFixed(1)) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}
