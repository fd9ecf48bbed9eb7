import { Marked } from 'marked';
import { NONE, byteSize, escapeHtml, isoTime, percent } from './formatting.ts';
import { markdownSections, type MarkdownSection } from './markdown.ts';
import type { ReportModel } from './model.ts';
import { CONTENT_SECURITY_POLICY, PAGE_STYLE, SEARCH_SCRIPT } from './page-assets.ts';
import { kpiChart, progressChart, timelineChart } from './svg-charts.ts';
import { shownWorkflowStatus } from '../../shared/shown-workflow-status.ts';

/**
 * Markdown to HTML for the report. User text is already escaped before it reaches Markdown;
 * this renderer is the second fence: raw HTML is printed as text, and links and images keep only
 * their text (a report must not point anywhere, nor load anything, except its own anchors).
 * A private instance, so the global `marked` options of other code do not change our output.
 */
const markdownToHtml = new Marked({
  gfm: true,
  async: false,
  renderer: {
    html: ({ text }) => escapeHtml(text),
    link({ href, tokens }) {
      const inner = this.parser.parseInline(tokens);
      return href.startsWith('#') ? `<a href="${escapeHtml(href)}">${inner}</a>` : inner;
    },
    image: ({ text }) => escapeHtml(text),
  },
});

const toHtml = (markdown: string) => markdownToHtml.parse(markdown, { async: false });

const TITLES: Record<MarkdownSection['id'], string> = {
  summary: 'Summary',
  objectives: 'Objectives',
  kpis: 'KPIs',
  stages: 'Stages',
  agents: 'Agents',
  'work-orders': 'Work orders',
  'data-inventory': 'Data inventory',
  timeline: 'Timeline',
};

function card(figure: string, caption: string): string {
  return `<div class="card"><div class="figure">${escapeHtml(figure)}</div><div class="caption">${escapeHtml(caption)}</div></div>`;
}

/** Headline figures, the dashboard at the top of the page. */
function cards(model: ReportModel): string {
  const { summary, workOrderStats: orders } = model;
  return [
    '<div class="cards">',
    card(shownWorkflowStatus(model.workflow.status, !!model.workflow.paused), 'status'),
    card(percent(model.workflow.progress), 'overall progress'),
    card(`${summary.objectives.completed}/${summary.objectives.total}`, 'objectives completed'),
    card(`${summary.kpis.met}/${summary.kpis.total}`, 'KPIs met'),
    card(`${orders.byState.completed}/${orders.total}`, 'work orders completed'),
    card(String(model.agents.length), 'agents'),
    card(String(model.dataStats.count), 'data references'),
    '</div>',
  ].join('\n');
}

/** The data inventory as a table with a search box (the inline script filters its rows). */
function dataInventory(model: ReportModel): string {
  const heading = '<h2>Data inventory</h2>';
  if (model.data.length === 0) return `${heading}\n<p>No data references.</p>`;
  const headers = ['ID', 'Path', 'Description', 'Type', 'Size', 'Checksum', 'Tags', 'Status', 'Created'];
  const rows = model.data.map((d) => {
    const cells = [d.id, d.path, d.description, d.dataType || NONE, byteSize(d.size), d.checksum ?? NONE, d.tags.join(', ') || NONE, d.status, isoTime(d.createdAt)];
    return `<tr>${cells.map((cell) => `<td>${escapeHtml(cell)}</td>`).join('')}</tr>`;
  });
  const count = model.data.length;
  return [
    heading,
    `<p>${count} data references, ${escapeHtml(byteSize(model.dataStats.totalBytes))} in total.</p>`,
    `<p class="search"><label for="data-search">Search</label> <input id="data-search" type="search" placeholder="Filter by any column" autocomplete="off"><span id="data-search-count" aria-live="polite">${count} of ${count} shown</span></p>`,
    '<table id="data-inventory-table">',
    `<thead><tr>${headers.map((h) => `<th>${h}</th>`).join('')}</tr></thead>`,
    `<tbody>\n${rows.join('\n')}\n</tbody>`,
    '</table>',
  ].join('\n');
}

/** A section's HTML: its heading, then the chart if any, then the rest of its Markdown. */
function sectionHtml(section: MarkdownSection, chart: string | undefined): string {
  if (chart === undefined) return toHtml(section.markdown);
  const split = section.markdown.indexOf('\n\n');
  const heading = split === -1 ? section.markdown : section.markdown.slice(0, split);
  const rest = split === -1 ? '' : section.markdown.slice(split + 2);
  return `${toHtml(heading)}${chart}\n${toHtml(rest)}`;
}

/** The HTML report: a self-contained page (inline style, SVG and script; no external URL). */
export function renderHtml(model: ReportModel, hash: string): string {
  const charts: Partial<Record<MarkdownSection['id'], string>> = {
    stages: progressChart(model.workflow.progress, model.stages),
    kpis: kpiChart(model.kpis),
    timeline: timelineChart(model.attempts),
  };
  const sections = markdownSections(model, hash).map((section) => {
    const inner = section.id === 'data-inventory' ? dataInventory(model) : sectionHtml(section, charts[section.id]);
    const dashboard = section.id === 'summary' ? `\n${cards(model)}` : '';
    return `<section id="${section.id}">\n${inner}${dashboard}\n</section>`;
  });
  const nav = Object.entries(TITLES)
    .map(([id, title]) => `<a href="#${id}">${title}</a>`)
    .join('');
  const title = `Workflow report: ${model.workflow.id} (version ${model.version})`;
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="${escapeHtml(CONTENT_SECURITY_POLICY)}">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="generator" content="Switchboard">',
    `<meta name="switchboard-workflow" content="${escapeHtml(model.workflow.id)}">`,
    `<meta name="switchboard-version" content="${model.version}">`,
    `<meta name="switchboard-hash" content="${hash}">`,
    `<title>${escapeHtml(title)}</title>`,
    `<style>\n${PAGE_STYLE}\n</style>`,
    '</head>',
    '<body>',
    `<nav>${nav}</nav>`,
    '<main>',
    ...sections,
    '</main>',
    `<script>${SEARCH_SCRIPT}</script>`,
    '</body>',
    '</html>',
    '',
  ].join('\n');
}
