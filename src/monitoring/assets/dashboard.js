// Sluice dashboard: polls `api/snapshot` once a second and draws tiles, charts, tables and the
// dataflow graph (`api/graph`) with plain DOM and hand-built SVG. No build step, no libraries.
'use strict';

(() => {
  const POLL_MS = 1000;
  const GRAPH_RETRY_MS = 10000;
  const FETCH_TIMEOUT_MS = 4000;
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const DASH = '–';

  // ---------------------------------------------------------------- formatting

  const isNum = (v) => typeof v === 'number' && Number.isFinite(v);

  function fmtInt(v) {
    return isNum(v) ? Math.round(v).toLocaleString('en-US') : DASH;
  }

  function fmtRate(v) {
    if (!isNum(v)) return DASH;
    const a = Math.abs(v);
    if (a >= 1e7) return (v / 1e6).toFixed(1) + ' M';
    if (a >= 100) return fmtInt(v);
    return v.toFixed(1);
  }

  function fmtMs(v) {
    if (!isNum(v)) return DASH;
    const a = Math.abs(v);
    if (a < 10) return v.toFixed(2);
    if (a < 1000) return v.toFixed(1);
    return fmtInt(v);
  }

  // A duration in seconds, compact: "4.1 s", "3m 05s", "2h 10m", "3d 04h".
  function fmtDuration(v) {
    if (!isNum(v)) return DASH;
    const sign = v < 0 ? '-' : '';
    const s = Math.abs(v);
    const pad = (n) => String(Math.floor(n)).padStart(2, '0');
    if (s < 60) return sign + s.toFixed(s < 10 ? 2 : 1) + ' s';
    if (s < 3600) return `${sign}${Math.floor(s / 60)}m ${pad(s % 60)}s`;
    if (s < 86400) return `${sign}${Math.floor(s / 3600)}h ${pad((s % 3600) / 60)}m`;
    return `${sign}${Math.floor(s / 86400)}d ${pad((s % 86400) / 3600)}h`;
  }

  // Epoch milliseconds as "YYYY-MM-DD HH:MM:SS" in UTC.
  function fmtUtc(ms) {
    if (!isNum(ms) || Math.abs(ms) > 8.64e15) return DASH;
    return new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
  }

  function fmtUtcTime(ms) {
    const full = fmtUtc(ms);
    return full === DASH ? DASH : full.slice(11);
  }

  function fmtBytes(v) {
    if (!isNum(v)) return DASH;
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let n = v;
    let i = 0;
    while (Math.abs(n) >= 1024 && i < units.length - 1) {
      n /= 1024;
      i += 1;
    }
    return i === 0 ? `${n} B` : `${n.toFixed(n < 10 ? 2 : 1)} ${units[i]}`;
  }

  // Axis labels: one SI suffix per axis (from its largest tick), decimals from the tick step.
  function fmtAxis(v, step, largest) {
    const a = Math.abs(largest);
    let div = 1;
    let suffix = '';
    if (a >= 1e9) [div, suffix] = [1e9, 'G'];
    else if (a >= 1e6) [div, suffix] = [1e6, 'M'];
    else if (a >= 1e4) [div, suffix] = [1e3, 'k'];
    if (Math.abs(v) < step / 1e6) return '0';
    const unit = step / div;
    let decimals = 0;
    while (decimals < 6 && Math.abs(unit * 10 ** decimals - Math.round(unit * 10 ** decimals)) > 1e-6) decimals += 1;
    return (v / div).toFixed(decimals) + suffix;
  }

  // Seconds since start as a clock: "0:45", "12:30", "1:02:03".
  function fmtClock(t) {
    const s = Math.round(t);
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const ss = String(s % 60).padStart(2, '0');
    return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
  }

  // ---------------------------------------------------------------- DOM helpers

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'text') node.textContent = v;
      else node.setAttribute(k, v);
    }
    node.append(...children);
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // Sets the displayed text of an element, and its raw number in `data-value` when given.
  function show(id, text, raw) {
    const node = $(id);
    if (!node) return;
    node.textContent = text;
    if (arguments.length > 2) node.dataset.value = isNum(raw) ? String(raw) : '';
  }

  async function fetchJson(url) {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), FETCH_TIMEOUT_MS);
    try {
      const resp = await fetch(url, { cache: 'no-store', signal: abort.signal });
      if (!resp.ok) throw new Error(`${url}: HTTP ${resp.status}`);
      return await resp.json();
    } finally {
      clearTimeout(timer);
    }
  }

  // ---------------------------------------------------------------- header, tiles, tables

  function renderHeader(s) {
    show('pipeline', s.pipeline || DASH);
    document.title = `${s.pipeline || 'pipeline'} · Sluice`;
    show('source', s.source || DASH);
    show('sink', s.sink || DASH);
    // The worker count: `worker_count`, a numeric `workers`, or the length of the per-worker list.
    const workers = s.worker_count ?? (Array.isArray(s.workers) ? s.workers.length : s.workers ?? DASH);
    show('topology', `process #${s.process ?? DASH} of ${s.processes ?? DASH}, ${workers} workers`);
    const restarts = s.restarts ?? DASH;
    show('execution', `execution ${s.execution ?? DASH}, ${restarts} restart${restarts === 1 ? '' : 's'}`);
    show('uptime', fmtDuration(s.uptime_s), s.uptime_s);

    const badge = $('state');
    const state = s.state || 'unknown';
    badge.textContent = state;
    badge.className = `badge badge-${state === 'running' || state === 'finished' ? state : 'unknown'}`;
  }

  function renderTiles(s) {
    const t = s.totals || {};
    const lat = s.latency || {};
    show('events-in', fmtInt(t.events_in), t.events_in);
    show('rows-out', fmtInt(t.rows_out), t.rows_out);
    show('events-per-s', fmtRate(t.events_per_s), t.events_per_s);
    show('rows-per-s', fmtRate(t.rows_per_s), t.rows_per_s);
    show('p50', fmtMs(lat.p50_ms), lat.p50_ms);
    show('p99', fmtMs(lat.p99_ms), lat.p99_ms);
    show('latency-max', fmtMs(lat.max_ms), lat.max_ms);
    show('watermark', fmtUtc(s.watermark_ms), s.watermark_ms);
    show('watermark-lag', fmtDuration(s.watermark_lag_s), s.watermark_lag_s);
    show('output-behind', fmtDuration(s.output_behind_s), s.output_behind_s);
    show('frontier', fmtUtcTime(s.frontier_ms), s.frontier_ms);
    show('in-flight', fmtInt(s.in_flight), s.in_flight);
    show('throttled', fmtDuration(s.throttled_s), s.throttled_s);
    show('dead-letters', fmtInt(t.dead_letters), t.dead_letters);
    show('late', fmtInt(t.late), t.late);
    $('late').classList.toggle('warn', isNum(t.late) && t.late > 0);
    $('dead-letters').classList.toggle('warn', isNum(t.dead_letters) && t.dead_letters > 0);
  }

  function renderWorkers(s) {
    const workers = Array.isArray(s.workers) ? s.workers : [];
    const total = workers.reduce((sum, w) => sum + (isNum(w.events_per_s) ? w.events_per_s : 0), 0);
    const rows = workers.map((w) => {
      const share = total > 0 && isNum(w.events_per_s) ? (100 * w.events_per_s) / total : 0;
      const bar = el('div', { class: 'bar' }, el('div', { class: 'bar-fill', style: `width:${share.toFixed(1)}%` }));
      const watermark = el('td', { text: fmtUtcTime(w.watermark_ms), title: fmtUtc(w.watermark_ms) });
      return el('tr', { 'data-worker': String(w.worker) },
        el('td', { text: String(w.worker ?? DASH) }),
        el('td', { class: 'num', text: fmtInt(w.events_in) }),
        el('td', { class: 'num', text: fmtRate(w.events_per_s) }),
        el('td', { class: 'num', text: fmtInt(w.in_flight) }),
        el('td', { class: 'num', text: isNum(w.throttled_s) ? w.throttled_s.toFixed(1) : DASH }),
        el('td', { class: 'num', text: fmtMs(w.p50_ms) }),
        el('td', { class: 'num', text: fmtMs(w.p99_ms) }),
        watermark,
        el('td', { class: 'share-col' }, bar, el('span', { class: 'share', text: `${share.toFixed(0)}%` })));
    });
    if (rows.length === 0) rows.push(el('tr', {}, el('td', { colspan: '9', class: 'empty', text: 'no workers reported' })));
    $('workers').tBodies[0].replaceChildren(...rows);
    show('worker-count', workers.length ? `${workers.length} total` : '');
  }

  // A two-column definition table: [[label, value, id], ...].
  function keyValueTable(pairs) {
    return el('table', { class: 'kv' }, ...pairs.map(([label, value, id]) =>
      el('tr', {}, el('th', { text: label }), el('td', id ? { id, text: value } : { text: value }))));
  }

  function renderCheckpoints(s) {
    const c = s.checkpoints;
    const box = $('checkpoints');
    if (!c) {
      box.replaceChildren(el('p', { class: 'empty', id: 'checkpoints-off', text: 'checkpoints off' }));
      return;
    }
    box.replaceChildren(keyValueTable([
      ['completed', fmtInt(c.completed), 'ckpt-completed'],
      ['abandoned', fmtInt(c.abandoned), 'ckpt-abandoned'],
      ['last epoch (UTC)', fmtUtc(c.last_epoch_ms), 'ckpt-epoch'],
      ['last duration', isNum(c.last_duration_ms) ? `${fmtMs(c.last_duration_ms)} ms` : DASH, 'ckpt-duration'],
      ['last size', fmtBytes(c.last_bytes), 'ckpt-bytes'],
      ['age', fmtDuration(c.age_s), 'ckpt-age'],
    ]));
    if (isNum(c.abandoned) && c.abandoned > 0) $('ckpt-abandoned').classList.add('warn');
  }

  function renderDeadLetters(s) {
    const reasons = Object.entries(s.dead_letters || {}).sort((a, b) => (b[1] || 0) - (a[1] || 0));
    const box = $('dead-letter-reasons');
    if (reasons.length === 0) {
      box.replaceChildren(el('p', { class: 'empty', text: 'none' }));
      return;
    }
    box.replaceChildren(keyValueTable(reasons.map(([reason, n]) => [reason, fmtInt(n)])));
  }

  // ---------------------------------------------------------------- line charts

  const CHARTS = [
    { id: 'chart-throughput', series: [
      { key: 'events_per_s', label: 'events/s', color: '#2563eb', fmt: fmtRate },
      { key: 'rows_per_s', label: 'rows/s', color: '#d9480f', fmt: fmtRate, right: true },
    ] },
    { id: 'chart-latency', series: [
      { key: 'p50_ms', label: 'p50 ms', color: '#0f766e', fmt: fmtMs },
      { key: 'p99_ms', label: 'p99 ms', color: '#9333ea', fmt: fmtMs },
    ] },
    { id: 'chart-lag', series: [
      { key: 'watermark_lag_s', label: 'watermark lag', color: '#b45309', fmt: fmtDuration },
      { key: 'output_behind_s', label: 'output behind', color: '#475569', fmt: fmtDuration },
    ] },
    { id: 'chart-inflight', series: [
      { key: 'in_flight', label: 'in flight', color: '#0369a1', fmt: fmtInt },
    ] },
  ];
  const CHART_HEIGHT = 168;

  // A "nice" tick step (1, 2, 2.5 or 5 times a power of ten) near `raw`.
  function niceStep(raw) {
    if (!(raw > 0)) return 1;
    const pow = 10 ** Math.floor(Math.log10(raw));
    const f = raw / pow;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * pow;
  }

  // The y scale for a set of series: always includes zero, padded to whole ticks.
  function yScale(history, series, top, bottom) {
    let lo = 0;
    let hi = 0;
    for (const p of history) {
      for (const s of series) {
        const v = p[s.key];
        if (isNum(v)) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
      }
    }
    if (hi === lo) hi = lo + 1;
    const step = niceStep((hi - lo) / 4);
    lo = Math.floor(lo / step) * step;
    hi = Math.ceil(hi / step) * step;
    const ticks = [];
    for (let v = lo; v <= hi + step / 2; v += step) ticks.push(v);
    const y = (v) => bottom - ((v - lo) / (hi - lo)) * (bottom - top);
    const label = (v) => fmtAxis(v, step, Math.max(Math.abs(lo), Math.abs(hi)));
    return { y, ticks, label };
  }

  function timeTicks(t0, t1, width) {
    const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200];
    const maxTicks = Math.max(2, Math.floor(width / 70));
    const step = steps.find((s) => (t1 - t0) / s <= maxTicks) || steps[steps.length - 1];
    const ticks = [];
    for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) ticks.push(t);
    return ticks;
  }

  function linePath(history, key, x, y) {
    let d = '';
    let pen = false;
    for (const p of history) {
      const v = p[key];
      if (!isNum(v) || !isNum(p.t)) {
        pen = false;
        continue;
      }
      d += `${pen ? 'L' : 'M'}${x(p.t).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    }
    return d;
  }

  let lastHistory = [];
  const hover = {}; // chart id -> mouse x in px, while the pointer is over that chart

  function renderLegend(cfg, point, hovering) {
    const items = cfg.series.map((s) => el('span', { class: 'legend-item' },
      el('i', { class: 'swatch', style: `background:${s.color}` }),
      `${s.label}${s.right ? ' (right)' : ''} `,
      el('b', { text: point ? s.fmt(point[s.key]) : DASH })));
    if (hovering && point) items.unshift(el('span', { class: 'legend-time', text: `at ${fmtClock(point.t)}` }));
    $(`${cfg.id}-legend`).replaceChildren(...items);
  }

  function renderChart(cfg, history) {
    const holder = $(cfg.id);
    const W = Math.max(260, holder.clientWidth);
    const H = CHART_HEIGHT;
    const left = cfg.series.filter((s) => !s.right);
    const right = cfg.series.filter((s) => s.right);
    const m = { l: 52, r: right.length ? 52 : 14, t: 10, b: 24 };
    const root = svg('svg', { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img' });
    const points = history.filter((p) => isNum(p.t));

    if (points.length === 0) {
      root.append(svg('text', { x: W / 2, y: H / 2, class: 'chart-empty', 'text-anchor': 'middle' }, 'waiting for data…'));
      holder.replaceChildren(root);
      renderLegend(cfg, null, false);
      return;
    }

    let t0 = points[0].t;
    const t1 = points[points.length - 1].t;
    if (t1 - t0 < 1) t0 = t1 - 1;
    const x = (t) => m.l + ((t - t0) / (t1 - t0)) * (W - m.l - m.r);
    const ly = yScale(points, left, m.t, H - m.b);
    const ry = right.length ? yScale(points, right, m.t, H - m.b) : null;

    const grid = svg('g', { class: 'grid-lines' });
    const labels = svg('g', { class: 'tick-labels' });
    for (const v of ly.ticks) {
      const y = ly.y(v).toFixed(1);
      grid.append(svg('line', { x1: m.l, x2: W - m.r, y1: y, y2: y }));
      labels.append(svg('text', { x: m.l - 6, y, 'text-anchor': 'end', dy: '0.32em' }, ly.label(v)));
    }
    if (ry) {
      for (const v of ry.ticks) {
        labels.append(svg('text', { x: W - m.r + 6, y: ry.y(v).toFixed(1), dy: '0.32em', fill: right[0].color },
          ry.label(v)));
      }
    }
    for (const t of timeTicks(t0, t1, W - m.l - m.r)) {
      const xx = x(t).toFixed(1);
      grid.append(svg('line', { x1: xx, x2: xx, y1: m.t, y2: H - m.b, class: 'vgrid' }));
      labels.append(svg('text', { x: xx, y: H - m.b + 15, 'text-anchor': 'middle' }, fmtClock(t)));
    }
    const axes = svg('path', { class: 'axis', d: `M${m.l},${m.t}V${H - m.b}H${W - m.r}${ry ? `V${m.t}` : ''}` });
    root.append(grid, axes, labels);

    for (const s of cfg.series) {
      const y = s.right ? ry.y : ly.y;
      root.append(svg('path', { d: linePath(points, s.key, x, y), class: 'series', stroke: s.color }));
    }

    // Hover: a crosshair at the nearest sample, with its values in the legend.
    let shown = points[points.length - 1];
    const hx = hover[cfg.id];
    if (isNum(hx) && hx >= m.l && hx <= W - m.r) {
      const t = t0 + ((hx - m.l) / (W - m.l - m.r)) * (t1 - t0);
      shown = points.reduce((best, p) => (Math.abs(p.t - t) < Math.abs(best.t - t) ? p : best), points[0]);
      const xx = x(shown.t).toFixed(1);
      root.append(svg('line', { x1: xx, x2: xx, y1: m.t, y2: H - m.b, class: 'crosshair' }));
      for (const s of cfg.series) {
        const v = shown[s.key];
        if (isNum(v)) root.append(svg('circle', { cx: xx, cy: (s.right ? ry.y : ly.y)(v).toFixed(1), r: 3, fill: s.color }));
      }
    }
    holder.replaceChildren(root);
    renderLegend(cfg, shown, isNum(hx));
  }

  function renderCharts(history) {
    lastHistory = Array.isArray(history) ? history : [];
    for (const cfg of CHARTS) renderChart(cfg, lastHistory);
  }

  function initChartHover() {
    for (const cfg of CHARTS) {
      const holder = $(cfg.id);
      holder.addEventListener('mousemove', (ev) => {
        hover[cfg.id] = ev.clientX - holder.getBoundingClientRect().left;
        renderChart(cfg, lastHistory);
      });
      holder.addEventListener('mouseleave', () => {
        delete hover[cfg.id];
        renderChart(cfg, lastHistory);
      });
    }
    let pending = null;
    window.addEventListener('resize', () => {
      clearTimeout(pending);
      pending = setTimeout(() => {
        renderCharts(lastHistory);
        renderGraph();
      }, 150);
    });
  }

  // ---------------------------------------------------------------- dataflow graph

  const NODE_W = 132;
  const NODE_H = 28;
  const graph = { nodes: [], edges: [], stack: [] };

  // Compares dotted operator addresses numerically ("0.10" after "0.9").
  function cmpAddr(a, b) {
    const pa = String(a).split('.');
    const pb = String(b).split('.');
    for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
      const d = Number(pa[i]) - Number(pb[i]);
      if (d) return d;
      if (pa[i] !== pb[i]) return pa[i] < pb[i] ? -1 : 1;
    }
    return pa.length - pb.length;
  }

  const depth = (scope) => (scope === '' ? 0 : String(scope).split('.').length);

  function setGraph(data) {
    graph.nodes = (data.nodes || []).map((n) => ({ id: String(n.id), name: String(n.name ?? n.id), scope: String(n.scope ?? '') }));
    graph.edges = (data.edges || []).map((e) => ({ from: String(e.from), to: String(e.to) }));
    graph.nodes.sort((a, b) => cmpAddr(a.id, b.id));
    const scopes = [...new Set(graph.nodes.map((n) => n.scope))];
    scopes.sort((a, b) => depth(a) - depth(b) || a.length - b.length);
    graph.stack = scopes.length ? [scopes[0]] : [];
    // A root scope holding nothing but one scope (the dataflow itself): start inside it.
    for (;;) {
      const here = graph.nodes.filter((n) => n.scope === graph.stack[graph.stack.length - 1]);
      if (here.length !== 1 || !graph.nodes.some((n) => n.scope === here[0].id)) break;
      graph.stack = [here[0].id];
    }
  }

  // The nodes and edges of one scope. Inside a nested scope, edges from/to the scope itself are
  // its inputs and outputs, drawn as small boundary nodes.
  function scopeView(scope) {
    const nodes = graph.nodes.filter((n) => n.scope === scope).map((n) => {
      const inner = graph.nodes.filter((m) => m.id.startsWith(n.id + '.')).length;
      return { ...n, inner };
    });
    const ids = new Set(nodes.map((n) => n.id));
    const nested = scope !== graph.stack[0];
    const boundary = { in: `${scope}:in`, out: `${scope}:out` };
    const edges = [];
    const seen = new Set();
    for (const e of graph.edges) {
      let { from, to } = e;
      if (nested && from === scope) from = boundary.in;
      if (nested && to === scope) to = boundary.out;
      for (const [end, label] of [[from, 'inputs'], [to, 'outputs']]) {
        if (!ids.has(end) && (end === boundary.in || end === boundary.out)) {
          nodes.push({ id: end, name: label, scope, inner: 0, boundary: true });
          ids.add(end);
        }
      }
      const key = `${from}->${to}`;
      if (ids.has(from) && ids.has(to) && !seen.has(key)) {
        seen.add(key);
        edges.push({ from, to });
      }
    }
    return { nodes, edges };
  }

  // Layered layout: back edges (found by DFS) are set aside, every node's layer is the longest
  // path to it from a source, and a few barycenter sweeps order nodes within layers.
  function layout(nodes, edges) {
    const index = new Map(nodes.map((n, i) => [n.id, i]));
    const succ = nodes.map(() => []);
    const hasIn = nodes.map(() => false);
    for (const e of edges) {
      succ[index.get(e.from)].push(index.get(e.to));
      hasIn[index.get(e.to)] = true;
    }

    const state = nodes.map(() => 0); // 0 new, 1 on stack, 2 done
    const back = new Set();
    const visit = (u) => {
      state[u] = 1;
      for (const v of succ[u]) {
        if (state[v] === 1) back.add(`${u}>${v}`);
        else if (state[v] === 0) visit(v);
      }
      state[u] = 2;
    };
    nodes.forEach((_, i) => { if (!hasIn[i]) visit(i); });
    nodes.forEach((_, i) => { if (state[i] === 0) visit(i); });

    const fwd = nodes.map(() => []);
    const pred = nodes.map(() => []);
    const indeg = nodes.map(() => 0);
    for (let u = 0; u < nodes.length; u++) {
      for (const v of succ[u]) {
        if (back.has(`${u}>${v}`)) continue;
        fwd[u].push(v);
        pred[v].push(u);
        indeg[v] += 1;
      }
    }
    const layer = nodes.map(() => 0);
    const queue = nodes.map((_, i) => i).filter((i) => indeg[i] === 0);
    while (queue.length) {
      const u = queue.shift();
      for (const v of fwd[u]) {
        layer[v] = Math.max(layer[v], layer[u] + 1);
        if (--indeg[v] === 0) queue.push(v);
      }
    }

    const layers = [];
    nodes.forEach((_, i) => (layers[layer[i]] = layers[layer[i]] || []).push(i));
    const pos = nodes.map(() => 0);
    const renumber = (l) => l.forEach((v, i) => (pos[v] = i));
    layers.forEach(renumber);
    const sweep = (order, neighbours) => {
      for (const l of order) {
        const bary = new Map(l.map((v) => {
          const ns = neighbours[v];
          return [v, ns.length ? ns.reduce((s, n) => s + pos[n], 0) / ns.length : pos[v]];
        }));
        l.sort((a, b) => bary.get(a) - bary.get(b));
        renumber(l);
      }
    };
    for (let i = 0; i < 4; i++) {
      sweep(layers.slice(1), pred);
      sweep(layers.slice(0, -1).reverse(), fwd);
    }
    return { layer, pos, layers, back };
  }

  // An orthogonal path through `points` with rounded corners.
  function roundedPolyline(points, radius = 6) {
    const toward = ([cx, cy], [tx, ty], r) => {
      const len = Math.hypot(tx - cx, ty - cy) || 1;
      return `${cx + ((tx - cx) * r) / len},${cy + ((ty - cy) * r) / len}`;
    };
    let d = `M${points[0].join(',')}`;
    for (let i = 1; i < points.length - 1; i++) {
      const [prev, at, next] = [points[i - 1], points[i], points[i + 1]];
      const r = Math.min(radius, Math.hypot(at[0] - prev[0], at[1] - prev[1]) / 2,
        Math.hypot(next[0] - at[0], next[1] - at[1]) / 2);
      d += `L${toward(at, prev, r)}Q${at.join(',')} ${toward(at, next, r)}`;
    }
    return d + `L${points[points.length - 1].join(',')}`;
  }

  function truncate(text, max) {
    return text.length <= max ? text : text.slice(0, max - 1) + '…';
  }

  function renderCrumbs() {
    const crumbs = graph.stack.map((scope, i) => {
      const node = graph.nodes.find((n) => n.id === scope);
      const label = i === 0 ? 'dataflow' : `${node ? node.name : 'scope'} (${scope})`;
      if (i === graph.stack.length - 1) return el('span', { class: 'crumb current', text: label });
      const link = el('a', { href: '#', class: 'crumb', text: label });
      link.addEventListener('click', (ev) => {
        ev.preventDefault();
        graph.stack = graph.stack.slice(0, i + 1);
        renderGraph();
      });
      return link;
    });
    $('graph-crumbs').replaceChildren(...crumbs.flatMap((c, i) => (i ? [el('span', { class: 'sep', text: '›' }), c] : [c])));
  }

  function renderGraph() {
    const box = $('graph');
    if (graph.stack.length === 0) return;
    const scope = graph.stack[graph.stack.length - 1];
    const { nodes, edges } = scopeView(scope);
    const { layer, pos, layers, back } = layout(nodes, edges);

    // Left to right, wrapped into bands of as many layers as fit the panel's width, so long
    // pipelines read like lines of text instead of scrolling sideways.
    const [GAP_X, GAP_Y, BAND_GAP, PAD] = [44, 14, 36, 28];
    const stepX = NODE_W + GAP_X;
    const stepY = NODE_H + GAP_Y;
    const fit = Math.max(1, Math.floor((box.clientWidth - 2 * PAD + GAP_X) / stepX));
    const bands = Math.ceil(layers.length / fit);
    const perBand = Math.ceil(layers.length / bands);
    const bandTop = [];
    const bandRows = [];
    let top = PAD;
    for (let b = 0; b < bands; b++) {
      const rows = Math.max(...layers.slice(b * perBand, (b + 1) * perBand).map((l) => l.length));
      bandTop.push(top);
      bandRows.push(rows);
      top += rows * stepY - GAP_Y + BAND_GAP;
    }
    const bandBottom = (b) => bandTop[b] + bandRows[b] * stepY - GAP_Y;
    const place = (i) => {
      const band = Math.floor(layer[i] / perBand);
      const centring = (bandRows[band] - layers[layer[i]].length) / 2;
      return { band, layer: layer[i], x: PAD + (layer[i] % perBand) * stepX, y: bandTop[band] + (pos[i] + centring) * stepY };
    };
    const W = 2 * PAD + perBand * stepX - GAP_X;
    const H = top - BAND_GAP + PAD;
    const root = svg('svg', { width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: 'dataflow' });
    const marker = svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto' });
    marker.append(svg('path', { d: 'M0,0L10,5L0,10z', class: 'arrowhead' }));
    const defs = svg('defs');
    defs.append(marker);
    root.append(defs);

    const edgePath = (p, q, isBack) => {
      const [x1, y1, x2, y2] = [p.x + NODE_W, p.y + NODE_H / 2, q.x, q.y + NODE_H / 2];
      if (p.band === q.band && !isBack && q.layer - p.layer > 1) { // skips layers: arc over the top
        const [sx, tx, sy, ty] = [p.x + NODE_W * 0.7, q.x + NODE_W * 0.3, p.y, q.y];
        const high = Math.min(sy, ty) - 18;
        return `M${sx},${sy}C${sx},${high} ${tx},${high} ${tx},${ty}`;
      }
      if (p.band === q.band && !isBack) {
        return `M${x1},${y1}C${(x1 + x2) / 2},${y1} ${(x1 + x2) / 2},${y2} ${x2},${y2}`;
      }
      if (p.band === q.band) { // feedback: from the bottom of the source, under, up into the target
        const [sx, tx, sy, ty] = [p.x + NODE_W / 2, q.x + NODE_W / 2, p.y + NODE_H, q.y + NODE_H];
        const low = Math.max(sy, ty) + 26;
        return `M${sx},${sy}C${sx},${low} ${tx},${low} ${tx},${ty}`;
      }
      // Between bands: along the gutter below (forward) or above (feedback) the source's band.
      const g = GAP_X / 2;
      const gy = q.band > p.band ? bandBottom(p.band) + BAND_GAP / 2 : bandTop[p.band] - BAND_GAP / 2;
      return roundedPolyline([[x1, y1], [x1 + g, y1], [x1 + g, gy], [x2 - g, gy], [x2 - g, y2], [x2, y2]]);
    };

    const index = new Map(nodes.map((n, i) => [n.id, i]));
    const edgeLayer = svg('g', { class: 'edges' });
    for (const e of edges) {
      const u = index.get(e.from);
      const v = index.get(e.to);
      const isBack = back.has(`${u}>${v}`);
      const path = svg('path', { d: edgePath(place(u), place(v), isBack), class: isBack ? 'edge back' : 'edge', 'marker-end': 'url(#arrow)' });
      path.append(svg('title', {}, `${nodes[u].name} → ${nodes[v].name}${isBack ? ' (feedback)' : ''}`));
      edgeLayer.append(path);
    }
    root.append(edgeLayer);

    const maxChars = Math.floor((NODE_W - 14) / 6.4);
    let drawn = 0;
    nodes.forEach((n, i) => {
      const { x, y } = place(i);
      const g = svg('g', { class: 'node', transform: `translate(${x},${y})`, 'data-id': n.id });
      if (n.boundary) g.classList.add('boundary');
      else drawn += 1;
      g.append(svg('title', {}, n.boundary ? `scope ${n.name}` : `${n.name}\noperator ${n.id}` +
        (n.inner ? `\nscope with ${n.inner} inner operators (click to open)` : '')));
      g.append(svg('rect', { width: NODE_W, height: NODE_H, rx: 5, ry: 5 }));
      const label = n.inner ? truncate(n.name, maxChars - 4) : truncate(n.name, maxChars);
      g.append(svg('text', { x: 8, y: NODE_H / 2, dy: '0.34em' }, label));
      if (n.inner) {
        g.classList.add('scope');
        const badge = String(n.inner);
        const bw = 10 + badge.length * 6.5;
        g.append(svg('rect', { class: 'count', x: NODE_W - bw - 5, y: 6, width: bw, height: NODE_H - 12, rx: 8 }));
        g.append(svg('text', { class: 'count-text', x: NODE_W - 5 - bw / 2, y: NODE_H / 2, dy: '0.34em', 'text-anchor': 'middle' }, badge));
        g.addEventListener('click', () => {
          graph.stack.push(n.id);
          renderGraph();
        });
      }
      root.append(g);
    });

    box.replaceChildren(root);
    document.body.dataset.graphNodes = String(drawn);
    const scopesHere = nodes.filter((n) => n.inner).length;
    show('graph-summary', `${drawn} operators${scopesHere ? `, ${scopesHere} nested scope${scopesHere > 1 ? 's' : ''}` : ''}` +
      (graph.stack.length === 1 ? ` · ${graph.nodes.length} in total` : ''));
    renderCrumbs();
  }

  async function loadGraph() {
    try {
      const data = await fetchJson('api/graph');
      if (!data || !Array.isArray(data.nodes) || data.nodes.length === 0) {
        $('graph').replaceChildren(el('p', { class: 'empty', text: 'dataflow graph not available yet — retrying' }));
        setTimeout(loadGraph, GRAPH_RETRY_MS);
        return;
      }
      setGraph(data);
      renderGraph();
    } catch (err) {
      console.warn('graph:', err);
      $('graph').replaceChildren(el('p', { class: 'empty', text: 'could not load the dataflow graph — retrying' }));
      setTimeout(loadGraph, GRAPH_RETRY_MS);
    }
  }

  // ---------------------------------------------------------------- polling

  let updates = 0;
  let finished = false;

  function setConnected(ok) {
    const banner = $('status');
    banner.hidden = ok;
    document.body.classList.toggle('stale', !ok);
    if (!ok) banner.textContent = finished ? 'disconnected — retrying (pipeline finished; showing its final data)' : 'disconnected — retrying';
  }

  function applySnapshot(s) {
    renderHeader(s);
    renderTiles(s);
    renderWorkers(s);
    renderCheckpoints(s);
    renderDeadLetters(s);
    renderCharts(s.history);
    finished = s.state === 'finished';
    updates += 1;
    document.body.dataset.updates = String(updates);
    show('update-count', `#${updates}`);
    show('updated', new Date().toLocaleTimeString('en-GB', { hour12: false }));
  }

  async function poll() {
    let snapshot = null;
    try {
      snapshot = await fetchJson('api/snapshot');
      setConnected(true);
    } catch (err) {
      setConnected(false);
    }
    if (snapshot) {
      try {
        applySnapshot(snapshot);
      } catch (err) {
        console.error('dashboard: could not render snapshot', err);
      }
    }
    setTimeout(poll, POLL_MS);
  }

  function init() {
    initChartHover();
    renderCharts([]);
    poll();
    loadGraph();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
