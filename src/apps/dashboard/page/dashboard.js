// The dashboard page: the server's samples (see ../wire/protocol.ts and
// ../../host/metrics.ts) as live uPlot charts, counters and a per-application
// table. The server sends its history on every connection and a sample every
// second after that; the page keeps the last MAX_SAMPLES of them per node.
// Samples from several nodes (processes) are shown as their total, with one
// line per node for the main figures (see ../wire/series.ts); from
// one node, as they are.
import uPlot from '/vendor/uplot/uPlot.esm.js';
import { DEFAULT_HISTORY_SIZE, DEFAULT_INTERVAL_MS } from '/dashboard/wire/protocol.js';
import { clusterSeries, currentNodes } from '/dashboard/wire/series.js';
import { pageSocket, showState } from '/web/page-socket.js';

/** Samples kept on the page per node: as many as the server keeps by default. */
const MAX_SAMPLES = DEFAULT_HISTORY_SIZE;
/** Samples further apart than this many intervals leave a gap in the lines (the server was away). */
const GAP_INTERVALS = 3;
const PLOT_HEIGHT = 200;
const PALETTE = ['#1f6feb', '#cf222e', '#1a7f37', '#9a6700', '#8250df', '#bf3989', '#0a7e8c', '#6b7075'];
/** Colours of the per-node lines, node by node: darker or lighter than the totals' and apps' colours. */
const NODE_COLOURS = ['#f0883e', '#a475f9', '#3fb950', '#ff7b72', '#d4a72c', '#54aeff'];

/** Per node, its samples on screen, oldest first, each with a `time` later than the one before. */
const byNode = new Map();
/** What is plotted: the total and the per-node series of everything held (clusterSeries). */
let series = { nodes: [], times: [], total: [], perNode: new Map() };
/** The server's sampling interval: its default until its `history` message says. */
let intervalMs = DEFAULT_INTERVAL_MS;
/** Application names as the charts have them; the charts are rebuilt when the server's list changes. */
let apps = [];
/** Nodes with a line of their own: none unless two or more nodes are sampling now. */
let nodeLines = [];
/** Chart id -> { plot: uPlot, definition, legend: HTMLElement }. */
const charts = new Map();

/**
 * Names shown for what the samples call an application. `shell` is no app
 * of its own: it is the socket the home page opens at `/ws` to show whether
 * the server is reachable.
 */
const APP_LABELS = { shell: 'home page' };
const APP_TITLES = { shell: 'The home page’s own socket at /ws: it tells the page whether the server is reachable.' };

function appLabel(app) {
  return APP_LABELS[app] ?? app;
}

// ---- formatting ------------------------------------------------------------------

const integer = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });

function formatCount(value) {
  return value == null ? '–' : integer.format(value);
}

function formatRate(value) {
  return (
    value == null ? '–'
    : value >= 100 ? integer.format(value)
    : decimal.format(value)
  );
}

function formatBytes(value) {
  if (value == null) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let scaled = value;
  let unit = 0;
  while (Math.abs(scaled) >= 1024 && unit < units.length - 1) {
    scaled /= 1024;
    unit++;
  }
  return `${unit === 0 ? integer.format(scaled) : decimal.format(scaled)} ${units[unit]}`;
}

function formatMs(value) {
  return value == null ? '–' : `${value >= 10 ? integer.format(value) : decimal.format(value)} ms`;
}

function formatPercent(value) {
  return value == null ? '–' : `${decimal.format(value)} %`;
}

const MIB = 1024 * 1024;

/** Axis steps for whole numbers (1, 2, 5, 10, 20, 50...): no tick between two integers. */
const WHOLE_STEPS = Array.from({ length: 30 }, (_, i) => [1, 2, 5][i % 3] * 10 ** Math.floor(i / 3));
/** Axis steps for bytes: powers of two, so that ticks fall on round KiB and MiB. */
const BYTE_STEPS = Array.from({ length: 50 }, (_, i) => 2 ** i);

// ---- charts --------------------------------------------------------------------------

/**
 * What each chart plots. A series' `value` reads one sample; `show: false`
 * series start hidden (a click on their legend entry shows them).
 */
function chartDefinitions(appNames, nodeNames) {
  // A total keeps the colour it has with one node; a node's lines have the node's colour and the total's dash.
  return baseDefinitions(appNames).map((definition) => ({
    ...definition,
    series: definition.series.flatMap((line, i) => {
      const total = { ...line, colour: PALETTE[i % PALETTE.length] };
      if (!line.perNode || nodeNames.length === 0) return [total];
      const perNode = nodeNames.map((node, k) => ({
        label: `${line.label} @ ${node}`,
        value: line.value,
        node,
        colour: NODE_COLOURS[k % NODE_COLOURS.length],
        width: 1,
        dash: line.dash,
      }));
      return [total, ...perNode];
    }),
  }));
}

/** The charts for one node; `perNode` marks the series that get a line per node when there are several. */
function baseDefinitions(appNames) {
  const perApp = (key, suffix, dash) =>
    appNames.map((app) => ({ label: `${appLabel(app)}${suffix}`, value: (s) => s.apps[app]?.[key], show: false, dash }));
  return [
    {
      id: 'connections',
      format: formatCount,
      steps: WHOLE_STEPS,
      series: [
        { label: 'all', value: (s) => s.total.connections, perNode: true },
        ...appNames.map((app) => ({ label: appLabel(app), value: (s) => s.apps[app]?.connections })),
      ],
    },
    {
      id: 'messages',
      format: formatRate,
      series: [
        { label: 'in', value: (s) => s.total.messagesIn, perNode: true },
        { label: 'out', value: (s) => s.total.messagesOut, dash: [6, 3], perNode: true },
        ...interleave(perApp('messagesIn', ' in'), perApp('messagesOut', ' out', [6, 3])),
      ],
    },
    {
      id: 'bytes',
      format: formatBytes,
      steps: BYTE_STEPS,
      series: [
        { label: 'in', value: (s) => s.total.bytesIn, perNode: true },
        { label: 'out', value: (s) => s.total.bytesOut, dash: [6, 3], perNode: true },
        ...interleave(perApp('bytesIn', ' in'), perApp('bytesOut', ' out', [6, 3])),
      ],
    },
    { id: 'cpu', format: formatPercent, series: [{ label: 'CPU', value: (s) => s.cpu, perNode: true }] },
    {
      id: 'memory',
      format: (v) => (v == null ? '–' : `${decimal.format(v)} MiB`),
      series: [
        { label: 'RSS', value: (s) => s.rss / MIB, perNode: true },
        { label: 'heap used', value: (s) => s.heapUsed / MIB },
        { label: 'heap total', value: (s) => s.heapTotal / MIB, dash: [6, 3] },
      ],
    },
    {
      id: 'loop',
      format: formatMs,
      series: [
        { label: 'mean', value: (s) => s.loop.mean },
        { label: 'p99', value: (s) => s.loop.p99, perNode: true },
        { label: 'max', value: (s) => s.loop.max, dash: [6, 3] },
      ],
    },
  ];
}

function interleave(a, b) {
  return a.flatMap((item, i) => [item, b[i]]);
}

function plotWidth(element) {
  return Math.max(200, element.clientWidth);
}

/**
 * The uPlot data of a chart: seconds on x, one array per series; a null
 * point marks a gap. A series with a `node` reads that node's sample at
 * each point, the others the total.
 */
function chartData(definition) {
  const xs = [];
  const ys = definition.series.map(() => []);
  let previous = null;
  series.times.forEach((time, i) => {
    if (previous !== null && time - previous > GAP_INTERVALS * intervalMs) {
      xs.push((previous + intervalMs) / 1000);
      for (const column of ys) column.push(null);
    }
    xs.push(time / 1000);
    definition.series.forEach((line, j) => {
      const sample = line.node === undefined ? series.total[i] : series.perNode.get(line.node)?.[i];
      ys[j].push(sample == null ? null : (line.value(sample) ?? null));
    });
    previous = time;
  });
  return [xs, ...ys];
}

function buildCharts() {
  for (const { plot, legend } of charts.values()) {
    plot.destroy();
    legend.remove();
  }
  charts.clear();
  for (const definition of chartDefinitions(apps, nodeLines)) {
    const element = document.getElementById(`chart-${definition.id}`);
    const format = definition.format;
    const legend = document.createElement('div');
    const plot = new uPlot(
      {
        width: plotWidth(element),
        height: PLOT_HEIGHT,
        // uPlot's own legend is a table with a row of values per series, taller than the chart once
        // there are a few applications: this page draws a one-line legend of its own (makeLegend).
        legend: { show: false },
        hooks: { setCursor: [(u) => showCursorValues(u, legend, format)] },
        scales: { x: { time: true }, y: { range: (_u, min, max) => [Math.min(0, min ?? 0), Math.max(1, max ?? 1) * 1.1] } },
        axes: [{}, { size: 70, values: (_u, ticks) => ticks.map(format), incrs: definition.steps }],
        series: [
          {},
          ...definition.series.map((line) => ({
            label: line.label,
            stroke: line.colour,
            width: line.width ?? 1.5,
            dash: line.dash,
            show: line.show ?? true,
            spanGaps: false,
            points: { show: false },
            value: (_u, v) => format(v),
          })),
        ],
      },
      chartData(definition),
      element,
    );
    makeLegend(plot, legend, definition);
    element.before(legend);
    charts.set(definition.id, { plot, definition, legend });
  }
}

/**
 * One line under the chart's title: a button per series (its colour, its
 * name, and its value where the cursor is), which shows or hides the
 * series. Too many for the width, the line scrolls sideways rather than
 * growing taller.
 */
function makeLegend(plot, legend, definition) {
  legend.className = 'legend';
  legend.setAttribute('role', 'group');
  legend.setAttribute('aria-label', 'Series: click to show or hide');
  plot.series.forEach((series, index) => {
    if (index === 0) return;
    const entry = document.createElement('button');
    entry.type = 'button';
    entry.className = 'entry';
    entry.dataset.series = String(index);
    entry.setAttribute('aria-pressed', String(series.show));
    const mark = document.createElement('span');
    mark.className = 'mark';
    const line = definition.series[index - 1];
    mark.style.borderColor = line.colour;
    if (line.dash) mark.classList.add('dashed');
    const label = document.createElement('span');
    label.className = 'label';
    label.textContent = series.label;
    const value = document.createElement('span');
    value.className = 'value';
    entry.append(mark, label, value);
    entry.addEventListener('click', () => {
      const show = !plot.series[index].show;
      plot.setSeries(index, { show });
      entry.setAttribute('aria-pressed', String(show));
    });
    legend.append(entry);
  });
}

/** The values under the cursor in the legend's entries; none when the cursor is off the chart. */
function showCursorValues(plot, legend, format) {
  const index = plot.cursor.idx;
  for (const entry of legend.children) {
    const series = Number(entry.dataset.series);
    const value = index == null ? null : plot.data[series]?.[index];
    entry.querySelector('.value').textContent = value == null ? '' : format(value);
  }
}

function updateCharts() {
  for (const { plot, definition } of charts.values()) plot.setData(chartData(definition));
}

let resizePending = false;
window.addEventListener('resize', () => {
  if (resizePending) return;
  resizePending = true;
  requestAnimationFrame(() => {
    resizePending = false;
    for (const { plot } of charts.values()) plot.setSize({ width: plotWidth(plot.root.parentElement), height: PLOT_HEIGHT });
  });
});

// ---- counters and table ------------------------------------------------------------

function setOutput(id, value, format) {
  const element = document.getElementById(id);
  element.textContent = format(value);
  element.dataset.value = value == null ? '' : String(value);
}

function renderNow() {
  const latest = series.total.at(-1);
  const total = latest?.total;
  setOutput('connections', total?.connections, formatCount);
  setOutput('messages-in-rate', total?.messagesIn, formatRate);
  setOutput('messages-out-rate', total?.messagesOut, formatRate);
  setOutput('bytes-in-rate', total?.bytesIn, (v) => (v == null ? '–' : `${formatBytes(v)}/s`));
  setOutput('bytes-out-rate', total?.bytesOut, (v) => (v == null ? '–' : `${formatBytes(v)}/s`));
  setOutput('messages-in-total', total?.messagesInTotal, formatCount);
  setOutput('messages-out-total', total?.messagesOutTotal, formatCount);
  setOutput('cpu', latest?.cpu, formatPercent);
  setOutput('rss', latest?.rss, formatBytes);
  setOutput('heap-used', latest?.heapUsed, formatBytes);
  setOutput('loop-p99', latest?.loop.p99, formatMs);

  const rows = [];
  if (latest !== undefined) {
    for (const [app, figures] of Object.entries(latest.apps)) {
      const row = document.createElement('tr');
      row.dataset.app = app;
      if (APP_TITLES[app] !== undefined) row.title = APP_TITLES[app];
      const cells = [
        app === 'shell' ? `${appLabel(app)} (/ws)` : appLabel(app),
        formatCount(figures.connections),
        formatRate(figures.messagesIn),
        formatRate(figures.messagesOut),
        formatBytes(figures.bytesIn),
        formatBytes(figures.bytesOut),
        formatCount(figures.messagesInTotal),
        formatCount(figures.messagesOutTotal),
      ];
      for (const [i, text] of cells.entries()) {
        const cell = document.createElement(i === 0 ? 'th' : 'td');
        if (i === 0) cell.scope = 'row';
        cell.textContent = text;
        row.append(cell);
      }
      rows.push(row);
    }
  }
  document.querySelector('#apps tbody').replaceChildren(...rows);
}

function render() {
  series = clusterSeries([...byNode.values()].flat(), GAP_INTERVALS * intervalMs);
  const latest = series.total.at(-1);
  const names = latest === undefined ? apps : Object.keys(latest.apps);
  // A line per node while several are sampling; a restarted single process (a new node name) is not a cluster.
  const live = currentNodes(series);
  const lines = live.length > 1 ? live : [];
  if (names.join('\n') !== apps.join('\n') || lines.join('\n') !== nodeLines.join('\n')) {
    apps = names;
    nodeLines = lines;
    buildCharts();
  } else {
    updateCharts();
  }
  renderNow();
}

// ---- the connection ----------------------------------------------------------------

/** The node a sample comes from ('' from a server that does not name it). */
function nodeOf(sample) {
  return typeof sample.node === 'string' ? sample.node : '';
}

/**
 * The server's history after a (re)connect: for each node in it, it is
 * authoritative for the time it covers; what the page holds from before it
 * (a server that restarted has a short history) is kept, so nothing is
 * shown twice.
 */
function takeHistory(history) {
  const groups = new Map();
  for (const sample of history) {
    const node = nodeOf(sample);
    if (!groups.has(node)) groups.set(node, []);
    groups.get(node).push(sample);
  }
  for (const [node, incoming] of groups) {
    const start = incoming[0].time;
    const held = byNode.get(node) ?? [];
    byNode.set(
      node,
      held
        .filter((sample) => sample.time < start)
        .concat(incoming)
        .slice(-MAX_SAMPLES),
    );
  }
  forgetOldNodes();
}

function addSample(sample) {
  const node = nodeOf(sample);
  const held = byNode.get(node) ?? [];
  byNode.set(node, held);
  const last = held.at(-1);
  if (last !== undefined && sample.time <= last.time) return;
  held.push(sample);
  if (held.length > MAX_SAMPLES) held.splice(0, held.length - MAX_SAMPLES);
  forgetOldNodes();
}

/** A node whose newest sample is older than the time span on screen has no line left: it is dropped. */
function forgetOldNodes() {
  let newest = -Infinity;
  for (const held of byNode.values()) newest = Math.max(newest, held.at(-1)?.time ?? -Infinity);
  for (const [node, held] of byNode) {
    if (held.length === 0 || newest - held.at(-1).time > MAX_SAMPLES * intervalMs) byNode.delete(node);
  }
}

const statusView = document.getElementById('status');

const socket = pageSocket('/dashboard/ws', {
  backoff: { initialDelay: 250, factor: 2, maxDelay: 5000 },
  // A sample arrives every interval (a second by default): ten silent ones mean the connection is dead.
  heartbeat: { timeout: 10 * DEFAULT_INTERVAL_MS },
});

showState(socket, statusView, { open: 'live' });

/** While the page is not connected, its figures are old: the tiles, charts and table are greyed. */
const dashboardView = document.querySelector('main.dashboard');
const showLive = (state) => {
  const stale = state !== 'open';
  dashboardView.classList.toggle('stale', stale);
  dashboardView.setAttribute('aria-busy', String(stale));
};
showLive(socket.state);
socket.on('statechange', ({ state }) => showLive(state));

socket.on('message', ({ data }) => {
  let message;
  try {
    message = JSON.parse(String(data));
  } catch {
    console.warn('dashboard: a message that is not JSON', data);
    return;
  }
  switch (message.type) {
    case 'history':
      intervalMs = message.intervalMs;
      takeHistory(message.samples);
      break;
    case 'sample':
      addSample(message.sample);
      break;
    default:
      console.warn('dashboard: unexpected message', message);
      return;
  }
  render();
});

buildCharts();
renderNow();

/** For the browser tests and the curious, from the console: the uPlot instances and the samples. */
globalThis.sockeyeDashboard = {
  get charts() {
    return new Map([...charts].map(([id, { plot }]) => [id, plot]));
  },
  /** What the tiles and the charts' main lines show: the total (with one node, its own samples). */
  get samples() {
    return series.total;
  },
  /** Nodes that have a line of their own (none while every sample comes from one node). */
  get nodes() {
    return nodeLines;
  },
  get socket() {
    return socket;
  },
};
