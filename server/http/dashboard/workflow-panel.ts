import type { SummaryView } from '../../../shared/schemas/views.ts';
import { formatValue, kpiSparkline, throughputChart } from './charts.ts';
import { esc } from './escape.ts';
import { INTERVAL_MS, type Interval, type Throughput } from './timeline.ts';
import { bar, pausedPill, pill } from './view.ts';

// The panel of the selected workflow, all from its summary view: KPIs with their history,
// objectives, stages, and its orders over the last minutes.

/** Where a workflow's HTML report is served (it needs the token, as the API does). */
export function reportPath(workflowId: string): string {
  return `/api/workflows/${encodeURIComponent(workflowId)}/report.html`;
}

/** The title of the panel: the workflow, its status and progress, its steps, and the link to its report. */
function title(w: SummaryView): string {
  const steps = w.steps.total ? ` · ${w.steps.completed}/${w.steps.total} steps` : '';
  return `<h2 class="workflow-title"><span>Workflow · <span class="id">${esc(w.id)}</span></span> ${pill(w.status)}${pausedPill(w.paused)} <span class="progress">${bar(w.progress)}</span>
    <span class="query muted" title="${esc(w.userQuery)}">${esc(w.userQuery)}${steps}</span>
    <a id="report-link" href="${esc(reportPath(w.id))}" target="_blank" rel="noopener">HTML report ↗</a></h2>`;
}

function kpis(w: SummaryView): string {
  const rows = Object.values(w.kpis).map((k) => {
    const comparison = k.direction === 'higher' ? '≥' : '≤';
    return `<div class="kpi" data-kpi="${esc(k.id)}" data-met="${k.met}">
      <div class="kpi-head"><div class="name" title="${esc(k.description || k.name)}">${esc(k.name)}</div>
        <div><b class="${k.met ? 'met' : 'unmet'}">${esc(formatValue(k.current, k.unit))}</b>
        <span class="muted">target ${comparison} ${esc(formatValue(k.target, k.unit))} · ${k.samples} samples</span></div></div>
      ${kpiSparkline(k)}</div>`;
  });
  return `<div class="block" id="kpis"><h3>KPIs</h3>${rows.join('') || '<p class="muted">No KPIs.</p>'}</div>`;
}

function objectives(w: SummaryView): string {
  const rows = Object.values(w.objectives).map(
    (o) => `<tr data-objective="${esc(o.id)}" data-status="${esc(o.status)}" data-progress="${o.progress}">
      <td title="${esc(o.description)}">${esc(o.name)}</td><td title="${esc(o.target)}">${esc(o.target)}</td><td>${pill(o.status)}</td><td>${bar(o.progress)}</td></tr>`,
  );
  return `<div class="block" id="objectives"><h3>Objectives</h3>${
    rows.length
      ? `<table class="fixed"><colgroup><col style="width:32%"><col style="width:24%"><col style="width:18%"><col style="width:26%"></colgroup><tbody>${rows.join('')}</tbody></table>`
      : '<p class="muted">No objectives.</p>'
  }</div>`;
}

function stages(w: SummaryView): string {
  const rows = Object.entries(w.stages).map(
    ([id, s]) => `<tr data-stage="${esc(id)}" data-progress="${s.progress}">
      <td>${esc(s.name)}</td><td>${bar(s.progress)}</td><td class="muted">${s.completedAt ? `done ${new Date(s.completedAt).toLocaleTimeString()}` : `updated ${new Date(s.updatedAt).toLocaleTimeString()}`}</td></tr>`,
  );
  return `<div class="block" id="stages"><h3>Stages</h3>${
    rows.length
      ? `<table class="fixed"><colgroup><col style="width:34%"><col style="width:36%"><col style="width:30%"></colgroup><tbody>${rows.join('')}</tbody></table>`
      : '<p class="muted">No stages.</p>'
  }</div>`;
}

function throughput(w: SummaryView, intervals: readonly Interval<Throughput>[]): string {
  const c = w.workOrderCounts;
  return `<div class="block" id="throughput"><h3>Orders per ${INTERVAL_MS / 1000} s <span class="muted">since the page opened</span></h3>
    ${throughputChart(intervals)}
    <p class="legend"><span class="key completed"></span>completed <span class="key failed"></span>failed <span class="key queue"></span>queued
      <span class="muted">· now ${c.queued} queued${w.unservable ? ` (<span id="unservable" data-unservable="${w.unservable}">${w.unservable} no agent can take</span>)` : ''}, ${c.offered + c.running} in flight, ${c.completed} completed, ${c.failed} failed</span></p></div>`;
}

/** The selected workflow's panel, or a word that there is none. */
export function renderWorkflowPanel(section: HTMLElement, workflow: SummaryView | undefined, intervals: readonly Interval<Throughput>[]): void {
  section.dataset.workflow = workflow?.id ?? '';
  if (!workflow) {
    section.innerHTML = '<h2>Workflow</h2><p class="muted">No workflow yet.</p>';
    return;
  }
  section.innerHTML = `${title(workflow)}<div class="detail">${kpis(workflow)}${throughput(workflow, intervals)}${objectives(workflow)}${stages(workflow)}</div>`;
}
