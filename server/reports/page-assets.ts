import { createHash } from 'node:crypto';

/** The HTML report's stylesheet, inline so the page is one self-contained file. */
export const PAGE_STYLE = `
:root { color-scheme: light; --fg: #1d232b; --muted: #5d6875; --line: #d8dee5; --track: #eceff3; --accent: #2f6fde;
  --ok: #2e9d5b; --bad: #d64545; --warn: #d9902b; --idle: #8c96a3; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: #f7f8fa; }
main { max-width: 1100px; margin: 0 auto; padding: 24px; }
nav { position: sticky; top: 0; background: #fff; border-bottom: 1px solid var(--line); padding: 8px 24px; z-index: 1; }
nav a { margin-right: 14px; color: var(--accent); text-decoration: none; font-size: 14px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 4px 20px 16px; margin: 16px 0; overflow-x: auto; }
h1 { font-size: 24px; } h2 { font-size: 19px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: var(--track); padding: 1px 4px; border-radius: 3px; word-break: break-all; }
table { border-collapse: collapse; width: 100%; font-size: 14px; margin: 8px 0; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; overflow-wrap: anywhere; }
th { background: var(--track); }
tr:nth-child(even) td { background: #fafbfc; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px; margin: 16px 0; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
.card .figure { font-size: 22px; font-weight: 600; } .card .caption { color: var(--muted); font-size: 13px; }
.chart { display: block; max-width: 900px; margin: 8px 0 12px; font-size: 13px; }
.chart .label, .chart .value, .chart .empty { fill: var(--fg); } .chart .axis { fill: var(--muted); font-size: 11px; }
.chart .track { fill: var(--track); } .chart .target { stroke: var(--fg); stroke-width: 2; }
.fill-overall { fill: var(--accent); } .fill-active { fill: var(--warn); } .fill-done, .fill-met { fill: var(--ok); }
.fill-unmet { fill: var(--bad); } .fill-none { fill: var(--idle); }
.outcome-completed { fill: var(--ok); } .outcome-failed, .outcome-agent_lost { fill: var(--bad); }
.outcome-lease_expired { fill: var(--warn); } .outcome-cancelled { fill: var(--idle); } .outcome-running { fill: var(--accent); }
.search input { font: inherit; padding: 4px 8px; width: min(360px, 100%); border: 1px solid var(--line); border-radius: 4px; }
.search span { color: var(--muted); margin-left: 8px; }
tr[hidden] { display: none; }
`.trim();

/** Filters the rows of the data inventory table by the text typed in the search box. */
export const SEARCH_SCRIPT = `
(function () {
  var input = document.getElementById('data-search');
  var table = document.getElementById('data-inventory-table');
  var count = document.getElementById('data-search-count');
  if (!input || !table || !table.tBodies[0]) return;
  var rows = table.tBodies[0].rows;
  input.addEventListener('input', function () {
    var query = input.value.trim().toLowerCase();
    var shown = 0;
    for (var i = 0; i < rows.length; i++) {
      var match = query === '' || rows[i].textContent.toLowerCase().indexOf(query) !== -1;
      rows[i].hidden = !match;
      if (match) shown++;
    }
    if (count) count.textContent = shown + ' of ' + rows.length + ' shown';
  });
})();
`.trim();

/** SEARCH_SCRIPT as a CSP source (its hash): the dashboard's policy allows it too (see server/http/dashboard.ts). */
export const SEARCH_SCRIPT_SOURCE = `'sha256-${createHash('sha256').update(SEARCH_SCRIPT, 'utf8').digest('base64')}'`;

/**
 * The page's Content-Security-Policy: nothing may load from anywhere, and the only script that
 * may run is SEARCH_SCRIPT (by its hash). Defence in depth behind the escaping of user text.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "style-src 'unsafe-inline'",
  `script-src ${SEARCH_SCRIPT_SOURCE}`,
  'img-src data:',
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');
