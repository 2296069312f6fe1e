// ProfileArena's web page. Plain script, no build step: the libraries come from npm through the build
// (wwwroot/vendor): React 18 + @pyroscope/flamegraph (the flame graph, its table, search, tooltips, zoom,
// diff colours) and uPlot (the timeline with drag-to-select). This file only wires the server's API
// (/label-values, /label-names, /render, /render-diff) to them and keeps the view in the URL.
(() => {
  'use strict';

  const $ = (id) => document.getElementById(id);
  const KEY_STORAGE = 'profilearena.apiKey';
  const OPS = ['=', '!=', '=~', '!~'];

  // ---------- state: everything the view shows, mirrored in the URL ----------

  /** Reads the view from location.search; missing parts get defaults. */
  function readState() {
    const p = new URLSearchParams(location.search);
    return {
      query: p.get('query') || p.get('name') || '',
      from: p.get('from') || 'now-1h',
      until: p.get('until') || 'now',
      view: p.get('view') === 'diff' ? 'diff' : 'single',
      leftFrom: p.get('leftFrom') || '',
      leftUntil: p.get('leftUntil') || '',
      rightFrom: p.get('rightFrom') || '',
      rightUntil: p.get('rightUntil') || '',
    };
  }

  function stateToSearch(s) {
    const p = new URLSearchParams();
    const q = parseQuery(s.query);
    p.set('query', formatQuery(q.name, q.matchers));
    p.set('from', s.from);
    p.set('until', s.until);
    p.set('view', s.view);
    if (s.view === 'diff') {
      for (const k of ['leftFrom', 'leftUntil', 'rightFrom', 'rightUntil']) if (s[k]) p.set(k, s[k]);
    }
    return '?' + p.toString();
  }

  let state = readState();

  /** Applies a change to the view: new URL entry (so Back works), then a re-query. */
  function update(change) {
    state = Object.assign({}, state, change);
    const search = stateToSearch(state);
    if (search !== location.search) history.pushState(null, '', search);
    refresh();
  }

  window.addEventListener('popstate', () => { state = readState(); refresh(); });

  // ---------- query text: app.type{label="value",...} ----------

  /** Splits a query into its profile name and label matchers (the subset of PromQL selectors the server takes). */
  function parseQuery(q) {
    const m = /^\s*([^{\s]*)\s*(?:\{(.*)\})?\s*$/.exec(q || '');
    if (!m) return { name: q, matchers: [] };
    const matchers = [];
    const re = /\s*([A-Za-z_][\w.]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?/y;
    const body = m[2] || '';
    let hit;
    while (re.lastIndex < body.length && (hit = re.exec(body))) {
      matchers.push({ label: hit[1], op: hit[2], value: hit[3].replace(/\\(.)/g, '$1') });
    }
    return { name: m[1], matchers };
  }

  /** The query text of a name and matchers, all kept (an empty value too). */
  function formatMatchers(name, matchers) {
    const parts = matchers.filter((m) => m.label).map((m) => `${m.label}${m.op}"${m.value.replace(/["\\]/g, '\\$&')}"`);
    return parts.length ? `${name}{${parts.join(',')}}` : name;
  }

  /** The query as sent and kept in the URL: matchers without a value are left out. */
  const formatQuery = (name, matchers) => formatMatchers(name, matchers.filter((m) => m.value !== ''));

  // ---------- time: "now", "now-1h", or unix seconds ----------

  const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

  /** Unix seconds of a time as the server reads it; NaN when it is not one. */
  function toSeconds(t, nowSeconds) {
    if (t === 'now') return nowSeconds;
    let m = /^now-(\d+)([smhdw])$/.exec(t);
    if (m) return nowSeconds - Number(m[1]) * UNIT_SECONDS[m[2]];
    m = /^\d+$/.exec(t);
    if (m) return Number(t);
    return NaN;
  }

  const nowSeconds = () => Math.floor(Date.now() / 1000);

  function toLocalInput(seconds) {
    const d = new Date(seconds * 1000);
    const pad = (n) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  function fromLocalInput(text) {
    const ms = new Date(text).getTime();
    return Number.isFinite(ms) ? String(Math.floor(ms / 1000)) : '';
  }

  function describeRange(from, until) {
    const f = (s) => new Date(s * 1000).toLocaleString();
    return `${f(from)} – ${f(until)}`;
  }

  // ---------- API, with the tenant key when the server wants one ----------

  class NeedsKey extends Error {}

  async function api(path, params) {
    const headers = { Accept: 'application/json' };
    const key = sessionStorage.getItem(KEY_STORAGE);
    if (key) headers.Authorization = 'Bearer ' + key;
    const url = path + (params ? '?' + new URLSearchParams(params).toString() : '');
    const response = await fetch(url, { headers });
    if (response.status === 401) {
      showAuth(key ? 'that key was refused' : '');
      throw new NeedsKey('a tenant key is needed');
    }
    if (!response.ok) {
      const text = (await response.text()).slice(0, 300);
      throw new Error(`${path}: ${response.status} ${text}`);
    }
    return response.json();
  }

  function showAuth(message) {
    $('auth').hidden = false;
    $('auth-error').textContent = message;
    $('key').focus();
  }

  $('auth').addEventListener('submit', (e) => {
    e.preventDefault();
    const key = $('key').value.trim();
    if (!key) return;
    sessionStorage.setItem(KEY_STORAGE, key);
    $('auth').hidden = true;
    $('key').value = '';
    labelValueCache.clear();
    labelNamesOf = null;
    start();
  });

  function setStatus(text, kind) {
    const el = $('status');
    el.textContent = text;
    el.className = 'status' + (kind === 'error' ? ' error' : '');
    // Tests and scripts wait on these: state = loading | ready | error | empty; loads counts finished loads.
    document.body.dataset.state = kind;
    if (kind !== 'loading') document.body.dataset.loads = String(Number(document.body.dataset.loads || 0) + 1);
  }

  /** Lists may come as plain arrays (pyroscope) or wrapped; both are read. */
  function asList(json) {
    if (Array.isArray(json)) return json;
    for (const k of ['names', 'values', 'data']) if (json && Array.isArray(json[k])) return json[k];
    return [];
  }

  // ---------- profile type and label filters ----------

  let profileNames = [];
  let labelNames = [];
  let labelNamesOf = null; // the profile name labelNames belong to
  const labelValueCache = new Map();

  /** Label names of the chosen profile's series (so filters offer only labels it has). */
  async function loadLabelNames(name) {
    if (labelNamesOf === name) return;
    const names = asList(await api('/label-names', name ? { query: name } : undefined));
    labelNames = names.filter((n) => !n.startsWith('__')).sort();
    labelNamesOf = name;
  }

  async function labelValues(label) {
    const name = parseQuery(state.query).name;
    const key = name + '\u0000' + label;
    if (!labelValueCache.has(key)) {
      const params = name ? { label, query: name } : { label };
      labelValueCache.set(key, api('/label-values', params).then(asList).then((v) => v.slice().sort()));
    }
    return labelValueCache.get(key);
  }

  function option(value, text, selected) {
    const o = document.createElement('option');
    o.value = value;
    o.textContent = text ?? value;
    o.selected = !!selected;
    return o;
  }

  function renderProfileSelect(current) {
    const sel = $('profile');
    sel.replaceChildren(...profileNames.map((n) => option(n, n, n === current)));
    if (current && !profileNames.includes(current)) sel.prepend(option(current, current + ' (no data)', true));
  }

  $('profile').addEventListener('change', () => {
    const q = parseQuery(state.query);
    update({ query: formatMatchers($('profile').value, q.matchers) });
  });

  /** One control per matcher: label name, operator, value (a list of known values for = and !=). */
  async function renderFilters() {
    const q = parseQuery(state.query);
    const rows = await Promise.all(q.matchers.map(async (m, i) => {
      const row = document.createElement('span');
      row.className = 'filter';
      row.dataset.index = String(i);

      const name = document.createElement('select');
      name.setAttribute('aria-label', 'label name');
      const names = labelNames.includes(m.label) ? labelNames : [m.label, ...labelNames];
      name.replaceChildren(...names.map((n) => option(n, n, n === m.label)));
      name.addEventListener('change', () => changeMatcher(i, { label: name.value, value: '' }));

      const op = document.createElement('select');
      op.setAttribute('aria-label', 'operator');
      op.replaceChildren(...OPS.map((o) => option(o, o, o === m.op)));
      op.addEventListener('change', () => changeMatcher(i, { op: op.value }));

      let value;
      if (m.op === '=' || m.op === '!=') {
        value = document.createElement('select');
        const values = m.label ? await labelValues(m.label).catch(() => []) : [];
        const all = values.includes(m.value) || m.value === '' ? values : [m.value, ...values];
        value.replaceChildren(option('', '(choose)', m.value === ''), ...all.map((v) => option(v, v, v === m.value)));
        value.addEventListener('change', () => changeMatcher(i, { value: value.value }));
      } else {
        value = document.createElement('input');
        value.value = m.value;
        value.placeholder = 'regex';
        value.addEventListener('change', () => changeMatcher(i, { value: value.value }));
      }
      value.setAttribute('aria-label', 'label value');

      const remove = document.createElement('button');
      remove.type = 'button';
      remove.textContent = '×';
      remove.title = 'Remove this filter';
      remove.addEventListener('click', () => {
        const ms = parseQuery(state.query).matchers;
        ms.splice(i, 1);
        update({ query: formatQuery(parseQuery(state.query).name, ms) });
      });

      row.append(name, op, value, remove);
      return row;
    }));
    $('filters').replaceChildren(...rows);
  }

  // A matcher without a value stays in the page (label="") but is left out of the URL and of requests.
  function changeMatcher(i, change) {
    const q = parseQuery(state.query);
    q.matchers[i] = Object.assign({}, q.matchers[i], change);
    const query = formatMatchers(q.name, q.matchers);
    if (q.matchers[i].value === '') {
      state = Object.assign({}, state, { query });
      renderFilters();
    } else {
      update({ query });
    }
  }

  $('add-filter').addEventListener('click', () => {
    const q = parseQuery(state.query);
    const used = new Set(q.matchers.map((m) => m.label));
    const label = labelNames.find((n) => !used.has(n)) || labelNames[0];
    if (!label) { setStatus('no labels to filter on', 'ready'); return; }
    q.matchers.push({ label, op: '=', value: '' });
    state = Object.assign({}, state, { query: formatMatchers(q.name, q.matchers) });
    renderFilters();
  });

  /** The query as sent: matchers without a value are left out. */
  const effectiveQuery = () => { const q = parseQuery(state.query); return formatQuery(q.name, q.matchers); };

  // ---------- time range controls ----------

  for (const b of document.querySelectorAll('[data-preset]')) {
    b.addEventListener('click', () => update({ from: b.dataset.preset, until: 'now', leftFrom: '', leftUntil: '', rightFrom: '', rightUntil: '' }));
  }

  $('apply-range').addEventListener('click', () => {
    const from = fromLocalInput($('from').value);
    const until = fromLocalInput($('until').value);
    if (!from || !until || Number(from) >= Number(until)) { setStatus('custom range: "from" must be before "until"', 'error'); return; }
    update({ from, until, leftFrom: '', leftUntil: '', rightFrom: '', rightUntil: '' });
  });

  for (const b of document.querySelectorAll('[data-view]')) {
    b.addEventListener('click', () => update({ view: b.dataset.view }));
  }

  function renderRangeControls(from, until) {
    $('from').value = toLocalInput(from);
    $('until').value = toLocalInput(until);
    for (const b of document.querySelectorAll('[data-preset]')) {
      b.setAttribute('aria-pressed', String(state.from === b.dataset.preset && state.until === 'now'));
    }
    for (const b of document.querySelectorAll('[data-view]')) {
      b.setAttribute('aria-pressed', String(state.view === b.dataset.view));
    }
    $('diff-controls').hidden = state.view !== 'diff';
  }

  /** The diff's two ranges; by default the two halves of the main range. */
  function diffRanges(from, until) {
    const mid = Math.floor((from + until) / 2);
    const num = (t, d) => (t ? Number(t) : d);
    return {
      left: [num(state.leftFrom, from), num(state.leftUntil, mid)],
      right: [num(state.rightFrom, mid), num(state.rightUntil, until)],
    };
  }

  // ---------- timeline: uPlot bars of samples per step, drag selects a range ----------

  let plot = null;
  let plotRanges = null; // diff ranges drawn as bands on the timeline

  function drawTimeline(timeline, from, until) {
    const xs = [];
    const ys = [];
    if (timeline && Array.isArray(timeline.samples)) {
      const step = timeline.durationDelta || 10;
      timeline.samples.forEach((v, i) => { xs.push(timeline.startTime + i * step); ys.push(v); });
    }
    const el = $('timeline');
    const opts = {
      width: Math.max(300, el.clientWidth - 24),
      height: 140,
      legend: { show: false },
      axes: [{}, { size: 56, values: (u, ticks) => ticks.map(compact) }],
      scales: { x: { time: true, range: [from, until] }, y: { range: (u, min, max) => [0, Math.max(1, max)] } },
      series: [{}, { label: 'samples', stroke: '#2563eb', fill: 'rgba(37, 99, 235, 0.25)', paths: uPlot.paths.bars({ size: [0.9, Infinity], align: 1 }), points: { show: false } }],
      cursor: { drag: { x: true, y: false, setScale: false }, points: { show: false } },
      select: { show: true },
      hooks: {
        setSelect: [(u) => {
          if (u.select.width < 2) return;
          const a = Math.floor(u.posToVal(u.select.left, 'x'));
          const b = Math.ceil(u.posToVal(u.select.left + u.select.width, 'x'));
          u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
          onTimelineSelect(a, b);
        }],
        draw: [drawBands],
      },
    };
    if (plot) plot.destroy();
    plot = new uPlot(opts, [xs, ys], el);
  }

  const compactFormat = new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 });
  const compact = (v) => (v == null ? '' : compactFormat.format(v));

  function drawBands(u) {
    if (!plotRanges) return;
    const ctx = u.ctx;
    const band = ([a, b], colour) => {
      const x0 = u.valToPos(a, 'x', true);
      const x1 = u.valToPos(b, 'x', true);
      ctx.fillStyle = colour;
      ctx.fillRect(x0, u.bbox.top, x1 - x0, u.bbox.height);
    };
    ctx.save();
    band(plotRanges.left, 'rgba(37, 99, 235, 0.18)');
    band(plotRanges.right, 'rgba(220, 38, 38, 0.18)');
    ctx.restore();
  }

  function onTimelineSelect(from, until) {
    if (until <= from) return;
    if (state.view === 'diff') {
      const side = document.querySelector('input[name="side"]:checked').value;
      update(side === 'left' ? { leftFrom: String(from), leftUntil: String(until) } : { rightFrom: String(from), rightUntil: String(until) });
    } else {
      update({ from: String(from), until: String(until) });
    }
  }

  // ---------- flame graph: pyroscope's own component ----------

  const flameRoot = ReactDOM.createRoot($('flamegraph'));

  /** The component's Profile: flamebearer + metadata (+ ticks of both sides for diffs). */
  function toProfile(json, format) {
    const md = json.metadata || {};
    const profile = {
      version: 1,
      flamebearer: json.flamebearer,
      metadata: {
        format,
        spyName: md.spyName || 'unknown',
        sampleRate: md.sampleRate || 100,
        units: md.units || 'samples',
        name: md.name || '',
      },
    };
    if (format === 'double') {
      profile.leftTicks = json.leftTicks || 0;
      profile.rightTicks = json.rightTicks || 0;
    }
    return profile;
  }

  // Rendered synchronously (flushSync) so that, once the status says "ready", the graph and its table
  // in the DOM are the new profile's.
  function drawFlamegraph(profile) {
    ReactDOM.flushSync(() => flameRoot.render(React.createElement(pyroscope.FlamegraphRenderer, {
      profile,
      showToolbar: true,
      showCredit: false,
      colorMode: 'light',
    })));
  }

  // ---------- loading ----------

  let generation = 0; // answers to an older view are dropped

  async function refresh() {
    const mine = ++generation;
    const now = nowSeconds();
    const from = toSeconds(state.from, now);
    const until = toSeconds(state.until, now);
    if (!Number.isFinite(from) || !Number.isFinite(until) || from >= until) {
      setStatus(`bad time range in the URL: from=${state.from} until=${state.until}`, 'error');
      return;
    }
    const name = parseQuery(state.query).name;
    renderProfileSelect(name);
    renderRangeControls(from, until);
    if (!name) {
      renderFilters();
      setStatus('no profiles stored yet: ingest some (README "Running the server")', 'empty');
      return;
    }
    setStatus('loading…', 'loading');
    const query = effectiveQuery();
    try {
      await loadLabelNames(name);
      if (mine !== generation) return;
      renderFilters();
      const render = api('/render', { query, from: state.from, until: state.until, format: 'json' });
      if (state.view === 'diff') {
        const r = diffRanges(from, until);
        if (!state.leftFrom || !state.leftUntil || !state.rightFrom || !state.rightUntil) {
          // Default ranges go into the URL as absolute times, so a link shows these same two ranges later.
          state = Object.assign({}, state, {
            leftFrom: String(r.left[0]), leftUntil: String(r.left[1]), rightFrom: String(r.right[0]), rightUntil: String(r.right[1]),
          });
          history.replaceState(null, '', stateToSearch(state));
        }
        const diff = api('/render-diff', {
          leftQuery: query, leftFrom: r.left[0], leftUntil: r.left[1],
          rightQuery: query, rightFrom: r.right[0], rightUntil: r.right[1],
          format: 'json',
        });
        const [single, double] = await Promise.all([render, diff]);
        if (mine !== generation) return;
        plotRanges = r;
        drawTimeline(single.timeline, from, until);
        $('diff-ranges').textContent = `baseline ${describeRange(...r.left)}; comparison ${describeRange(...r.right)}`;
        drawFlamegraph(toProfile(double, 'double'));
        setStatus(`baseline ${double.leftTicks || 0}, comparison ${double.rightTicks || 0} samples`, 'ready');
      } else {
        const single = await render;
        if (mine !== generation) return;
        plotRanges = null;
        drawTimeline(single.timeline, from, until);
        drawFlamegraph(toProfile(single, 'single'));
        setStatus(`${single.flamebearer.numTicks} ${(single.metadata && single.metadata.units) || 'samples'} in ${describeRange(from, until)}`, 'ready');
      }
    } catch (e) {
      if (mine !== generation) return;
      setStatus(e instanceof NeedsKey ? 'enter the tenant key' : String(e.message || e), 'error');
    }
  }

  async function start() {
    try {
      setStatus('loading…', 'loading');
      profileNames = asList(await api('/label-values', { label: '__name__' })).slice().sort();
      if (!state.query && profileNames.length) {
        state = Object.assign({}, state, { query: profileNames[0] });
        history.replaceState(null, '', stateToSearch(state));
      }
      await refresh();
    } catch (e) {
      setStatus(e instanceof NeedsKey ? 'enter the tenant key' : String(e.message || e), 'error');
    }
  }

  let resizeTimer = 0;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => { if (plot) plot.setSize({ width: Math.max(300, $('timeline').clientWidth - 24), height: 140 }); }, 100);
  });

  start();
})();
