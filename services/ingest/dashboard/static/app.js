// Vireo dashboard: live view per (model, source) from server-sent events,
// overlays drawn from the result JSON, the models view, and corrections.
// Plain JavaScript, no build step (embedded in the vireo binary).
'use strict';

const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k);
  return e;
};

// Class colours (index = class id): distinct, readable on video.
const PALETTE = [
  [31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
  [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207],
];
const colour = (i) => PALETTE[i % PALETTE.length];
const rgb = (c, a = 1) => `rgba(${c[0]},${c[1]},${c[2]},${a})`;
const MASK_ALPHA = 0.45;

const state = {
  cards: new Map(),    // "model/source" -> card
  models: new Map(),   // model -> {serving, task, labels, versions: Map(version -> manifest)}
  drops: {},           // source -> frames dropped (stats events)
  published: {},       // source -> frames published (stats events)
  plotSel: new Map(),  // model -> version whose training plots the models view shows
  retrain: new Map(),  // model -> {status, error, timer, gen}: retrain status, polled while a run is active
};

// ---------- server-sent events, reconnecting by themselves ----------
let es = null;
let backoff = 500;
function connect() {
  es = new EventSource('/v1/events');
  es.onopen = () => { backoff = 500; setConn(true); };
  es.onerror = () => {
    setConn(false);
    if (es.readyState === EventSource.CLOSED) { // the browser gave up: retry ourselves
      es.close();
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 10000);
    }
  };
  es.addEventListener('result', (e) => onResult(parseResult(e.data)));
  es.addEventListener('end', (e) => onEnd(JSON.parse(e.data)));
  es.addEventListener('model', (e) => onModel(JSON.parse(e.data)));
  es.addEventListener('stats', (e) => onStats(JSON.parse(e.data)));
  es.addEventListener('error', (e) => { if (e.data) onError(JSON.parse(e.data)); });
}
function setConn(up) {
  const c = $('#conn');
  c.textContent = up ? 'live' : 'reconnecting';
  c.className = 'pill ' + (up ? 'up' : 'down');
}

// parseResult keeps seq as a decimal string: ingest's seqs are nanosecond
// clocks, beyond the integers a JavaScript number holds exactly.
function parseResult(data) {
  const res = JSON.parse(data);
  const m = /"seq":(\d+)/.exec(data); // the top-level seq comes before any nested object
  if (m) res.seq = m[1];
  return res;
}

// ---------- models (cached manifests per version) ----------
async function getJSON(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: ${r.status} ${await r.text()}`);
  return r.json();
}
async function loadModels() {
  const list = await getJSON('/v1/models');
  for (const m of list) {
    const cur = state.models.get(m.model) || { versions: new Map() };
    Object.assign(cur, { serving: m.serving, task: m.task, labels: m.labels || [] });
    state.models.set(m.model, cur);
  }
  return list;
}
async function manifestOf(model, version) {
  let m = state.models.get(model);
  if (!m) { m = { versions: new Map() }; state.models.set(model, m); }
  if (!m.versions.has(version)) {
    try {
      for (const v of await getJSON(`/v1/models/${model}/versions`)) m.versions.set(v.version, v.manifest);
    } catch (e) { console.warn(e); }
  }
  return m.versions.get(version) || null;
}

// ---------- live view ----------
function cardFor(res) {
  const key = `${res.model}/${res.source}`;
  let c = state.cards.get(key);
  if (c) return c;
  $('#no-sources').classList.add('hidden');
  const root = el('div', { class: 'card', id: `card-${res.model}-${res.source}`, 'data-model': res.model, 'data-source': res.source });
  const img = el('img', { class: 'frame', alt: `${res.source} frame` });
  const canvas = el('canvas', { class: 'overlay' });
  const stage = el('div', { class: 'stage' }, img, canvas);
  const version = el('span', { class: 'version', title: 'model version of this frame' });
  const stats = el('div', { class: 'stats' });
  const legend = el('div', { class: 'legend' });
  const labels = el('ul', { class: 'labels' });
  const thr = el('div', { class: 'threshold' });
  const wrong = el('button', { class: 'wrong', text: 'This is wrong', onclick: () => openCorrection(c) });
  root.append(
    el('h3', {}, el('span', { text: res.source }), el('span', { class: 'model', text: res.model }), version),
    stage, stats, legend, thr, labels, el('div', { class: 'actions' }, wrong));
  $('#sources').append(root);
  c = { key, root, img, canvas, version, stats, legend, labels, thr, arrivals: [], lat: [], shown: null, pending: null, busy: false, ended: null, hiddenClasses: new Set() };
  state.cards.set(key, c);
  return c;
}

function onResult(res) {
  const c = cardFor(res);
  const now = performance.now();
  c.arrivals.push(now);
  while (c.arrivals.length && now - c.arrivals[0] > 5000) c.arrivals.shift();
  c.lat.push(res.latency_ms);
  if (c.lat.length > 100) c.lat.shift();
  c.pending = res; // only the newest waits; frames in between are skipped when the page is slower
  if (!c.busy) show(c);
}

// show loads the pending result's kept frame, then draws frame + overlay
// together so they always belong to one another.
async function show(c) {
  c.busy = true;
  while (c.pending) {
    const res = c.pending;
    c.pending = null;
    try {
      const frame = await loadFrame(res);
      const manifest = await manifestOf(res.model, res.model_version);
      c.img.src = frame.url;
      if (frame.ow && frame.oh) c.img.style.aspectRatio = `${frame.ow} / ${frame.oh}`; // the frame as captured
      await c.img.decode().catch(() => {});
      if (c.shownURL) URL.revokeObjectURL(c.shownURL);
      c.shownURL = frame.url;
      c.shown = { res, frame, manifest };
      await drawOverlay(c.canvas, res, frame, manifest, null, c.hiddenClasses);
      renderInfo(c);
    } catch (e) {
      console.warn('frame', res.source, res.seq, e);
    }
  }
  renderStats(c);
  c.busy = false;
}

// loadFrame fetches the kept frame (PNG at model input size) and the size
// of the frame as captured. A result is published just before its frame
// is kept, so a 404 is retried briefly.
async function loadFrame(res) {
  const url = `/v1/models/${res.model}/sources/${res.source}/frames/${res.seq}`;
  for (let i = 0; ; i++) {
    const r = await fetch(url);
    if (r.ok) {
      const blob = await r.blob();
      return {
        url: URL.createObjectURL(blob),
        ow: +r.headers.get('Vireo-Orig-Width') || 0,
        oh: +r.headers.get('Vireo-Orig-Height') || 0,
      };
    }
    if (r.status !== 404 || i >= 4) throw new Error(`${url}: ${r.status}`);
    await new Promise((ok) => setTimeout(ok, 150 * (i + 1)));
  }
}

function loadImage(src) {
  return new Promise((ok, bad) => {
    const i = new Image();
    i.onload = () => ok(i);
    i.onerror = () => bad(new Error('image did not load'));
    i.src = src;
  });
}

// decodeMask returns the class id of every pixel of a result's mask_png.
async function decodeMask(res) {
  const img = await loadImage('data:image/png;base64,' + res.mask_png);
  const cv = document.createElement('canvas');
  cv.width = img.width; cv.height = img.height;
  const ctx = cv.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(img, 0, 0);
  const px = ctx.getImageData(0, 0, img.width, img.height).data;
  const ids = new Uint8Array(img.width * img.height);
  for (let i = 0; i < ids.length; i++) ids[i] = px[i * 4];
  return { w: img.width, h: img.height, ids };
}

// maskCanvas paints class ids in class colours (hidden classes clear).
function maskCanvas(mask, hidden) {
  const cv = document.createElement('canvas');
  cv.width = mask.w; cv.height = mask.h;
  const ctx = cv.getContext('2d');
  const im = ctx.createImageData(mask.w, mask.h);
  for (let i = 0; i < mask.ids.length; i++) {
    const id = mask.ids[i];
    if (hidden && hidden.has(id)) continue;
    const c = colour(id);
    im.data[i * 4] = c[0]; im.data[i * 4 + 1] = c[1]; im.data[i * 4 + 2] = c[2];
    im.data[i * 4 + 3] = Math.round(255 * MASK_ALPHA);
  }
  ctx.putImageData(im, 0, 0);
  return cv;
}

// drawOverlay draws a result over its frame on canvas, in pixels of the
// frame as captured (points are in those pixels; the mask is stretched
// from the model's input size). edit, when set, is the correction in
// progress (its mask or points replace the result's).
async function drawOverlay(canvas, res, frame, manifest, edit, hidden) {
  const w = frame.ow || res.width || 256, h = frame.oh || res.height || 256;
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, w, h);
  if (res.task === 'segmentation' && res.mask_png) {
    const mask = edit && edit.mask ? edit.mask : await decodeMask(res);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(maskCanvas(mask, edit ? null : hidden), 0, 0, w, h);
  }
  if (edit && edit.points && edit.moved && res.points) {
    // Where the model put each point: dashed, with a line to the correction.
    ctx.save();
    ctx.setLineDash([6, 4]);
    ctx.lineWidth = 2;
    ctx.strokeStyle = 'rgba(255,255,255,0.85)';
    const r0 = Math.max(5, w / 90);
    res.points.forEach((q, i) => {
      ctx.beginPath(); ctx.arc(q.x, q.y, r0, 0, 2 * Math.PI); ctx.stroke();
      const to = edit.points[i];
      if (to) { ctx.beginPath(); ctx.moveTo(q.x, q.y); ctx.lineTo(to.x, to.y); ctx.stroke(); }
    });
    ctx.restore();
  }
  const pts = edit && edit.points ? edit.points : res.points;
  if (pts) {
    const r = Math.max(5, w / 90);
    pts.forEach((q, i) => {
      // A point outside the frame is drawn hollow at the nearest edge.
      const off = q.x < 0 || q.y < 0 || q.x > w || q.y > h;
      const p = off ? { x: Math.min(Math.max(q.x, r), w - r), y: Math.min(Math.max(q.y, r), h - r) } : q;
      ctx.beginPath();
      ctx.arc(p.x, p.y, r, 0, 2 * Math.PI);
      ctx.fillStyle = rgb(colour(i + 3), off ? 0.25 : 0.9);
      ctx.fill();
      if (off) {
        ctx.font = `${Math.round(r * 2)}px system-ui, sans-serif`;
        ctx.fillStyle = '#fff';
        ctx.textAlign = p.x > w / 2 ? 'right' : 'left';
        ctx.fillText(`off frame (${Math.round(q.x)}, ${Math.round(q.y)})`, p.x + (p.x > w / 2 ? -2 * r : 2 * r), p.y + (p.y > h / 2 ? -r : 2 * r));
        ctx.textAlign = 'left';
      }
      ctx.lineWidth = Math.max(2, r / 3);
      ctx.strokeStyle = '#fff';
      ctx.stroke();
      ctx.beginPath();
      ctx.moveTo(p.x - 2 * r, p.y); ctx.lineTo(p.x + 2 * r, p.y);
      ctx.moveTo(p.x, p.y - 2 * r); ctx.lineTo(p.x, p.y + 2 * r);
      ctx.stroke();
    });
  }
  if ((res.task === 'classification' || res.task === 'multilabel') && res.labels) {
    const fs = Math.max(14, Math.round(h / 18));
    ctx.font = `600 ${fs}px system-ui, sans-serif`;
    const text = res.labels.length ? res.labels.map((l) => `${l} ${(res.scores[l] || 0).toFixed(2)}`).join(', ') : '(no label above threshold)';
    const tw = ctx.measureText(text).width;
    ctx.fillStyle = 'rgba(0,0,0,0.6)';
    ctx.fillRect(0, 0, tw + fs, fs * 1.6);
    ctx.fillStyle = '#4cc38a';
    ctx.fillText(text, fs / 2, fs * 1.15);
  }
}

function threshold(res, manifest) {
  if (res.task !== 'multilabel') return null;
  return manifest && manifest.threshold ? manifest.threshold : null;
}

function renderInfo(c) {
  const { res, manifest } = c.shown;
  c.version.textContent = res.model_version;
  c.root.dataset.version = res.model_version;
  c.root.dataset.seq = res.seq;
  c.legend.replaceChildren();
  c.labels.replaceChildren();
  c.thr.textContent = '';
  if (res.task === 'segmentation' && res.classes) {
    res.classes.forEach((name, i) => {
      const frac = res.class_fraction ? res.class_fraction[i] : 0;
      const item = el('span', { class: 'class', title: 'click to hide or show', 'data-class': name, style: 'cursor:pointer' },
        el('i', { style: `background:${rgb(colour(i))}` }), `${name} ${(100 * frac).toFixed(1)}%`);
      if (c.hiddenClasses.has(i)) item.style.opacity = 0.4;
      item.addEventListener('click', () => {
        if (c.hiddenClasses.has(i)) c.hiddenClasses.delete(i); else c.hiddenClasses.add(i);
        drawOverlay(c.canvas, res, c.shown.frame, manifest, null, c.hiddenClasses).then(() => renderInfo(c));
      });
      c.legend.append(item);
    });
  }
  if (res.scores) {
    const thr = threshold(res, manifest);
    if (thr !== null) c.thr.textContent = `threshold ${thr}`;
    const on = new Set(res.labels || []);
    const names = Object.keys(res.scores).sort((a, b) => res.scores[b] - res.scores[a]);
    for (const n of names) {
      const s = res.scores[n];
      const bar = el('div', { class: 'bar' }, el('div', { class: 'fill', style: `width:${(100 * s).toFixed(1)}%` }));
      if (thr !== null) bar.append(el('div', { class: 'thr', style: `left:${100 * thr}%`, title: `threshold ${thr}` }));
      c.labels.append(el('li', { class: on.has(n) ? 'label on' : 'label', 'data-label': n },
        el('span', { class: 'name', text: n }), bar, el('span', { class: 'score', text: s.toFixed(3) })));
    }
  }
}

function median(a) {
  if (!a.length) return NaN;
  const s = [...a].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)];
}

function renderStats(c) {
  if (!c.shown) return;
  const src = c.shown.res.source;
  const span = c.arrivals.length > 1 ? (c.arrivals[c.arrivals.length - 1] - c.arrivals[0]) / 1000 : 0;
  const fps = span > 0 ? (c.arrivals.length - 1) / span : 0;
  const drops = (state.drops[src] || 0) + (c.ended ? 0 : 0);
  const items = [
    ['fps', fps.toFixed(1), 'fps'],
    ['latency', `${c.shown.res.latency_ms.toFixed(0)} ms (p50 ${median(c.lat).toFixed(0)})`, 'latency'],
    ['drops', c.ended ? `${c.ended.dropped}` : `${drops}`, 'drops'],
    ['seq', `${c.shown.res.seq}`, 'seq'],
  ];
  if (c.ended) items.push(['ended', `${c.ended.reason} after ${c.ended.frames} frames`, 'ended']);
  c.stats.replaceChildren(...items.map(([k, v, cls]) => el('span', { class: cls }, `${k} `, el('b', { text: v }))));
}
setInterval(() => state.cards.forEach(renderStats), 1000);

function onEnd(e) {
  for (const c of state.cards.values()) {
    if (c.shown && c.shown.res.source === e.source && c.shown.res.model === e.model) { c.ended = e; renderStats(c); }
  }
}
function onStats(s) {
  state.drops = s.dropped || {};
  state.published = s.published || {};
}
function onError(e) { console.info('vireo error event', e); }
function onModel(p) {
  const m = state.models.get(p.model);
  if (m) m.serving = p.version;
  if (!$('#view-models').classList.contains('hidden')) renderModels();
}

// ---------- models view ----------
async function post(url, body, rawSeq) {
  let text = body === undefined ? '{}' : JSON.stringify(body);
  if (rawSeq) text = text.replace(/"seq":"(\d+)"/, '"seq":$1'); // seq is kept as a string (parseResult)
  const r = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: text });
  const out = await r.text();
  if (!r.ok) throw new Error(`${r.status}: ${out}`);
  return out ? JSON.parse(out) : {};
}

let rendering = null;
async function renderModels() {
  if (rendering) return rendering;
  rendering = (async () => {
    const root = $('#models');
    try {
      const list = await loadModels();
      const cards = [];
      for (const m of list) {
        let versions = [];
        try { versions = await getJSON(`/v1/models/${m.model}/versions`); } catch (e) { console.warn(e); }
        const mm = state.models.get(m.model);
        for (const v of versions) mm.versions.set(v.version, v.manifest);
        cards.push(modelCard(m, versions));
      }
      root.replaceChildren(...cards);
      for (const m of list) paintRetrain(m.model); // statuses that came while the cards were built
      if (!list.length) root.replaceChildren(el('p', { class: 'hint', text: 'No models in the store.' }));
    } catch (e) {
      root.replaceChildren(el('p', { class: 'status err', text: String(e) }));
    } finally {
      rendering = null;
    }
  })();
  return rendering;
}

function fmtMetrics(ms) {
  if (!ms) return '';
  return Object.entries(ms).map(([k, v]) => `${k}=${+v.toFixed(4)}`).join(' ');
}

function modelCard(m, versions) {
  const status = el('span', { class: 'status' });
  const act = async (btn, fn) => {
    btn.disabled = true;
    status.className = 'status';
    status.textContent = '…';
    try {
      const out = await fn();
      status.className = 'status ok';
      status.textContent = out;
    } catch (e) {
      status.className = 'status err';
      status.textContent = String(e.message || e);
    }
    btn.disabled = false;
    renderModels();
  };
  // The version whose training plots show: the one picked, else the
  // serving one, else the newest.
  let sel = versions.find((v) => v.version === state.plotSel.get(m.model)) ||
    versions.find((v) => v.serving) || versions[versions.length - 1];
  const plots = el('div', { class: 'plots', id: `plots-${m.model}` });
  const rows = versions.slice().reverse().map((v) => {
    const serving = v.serving;
    const buttons = el('td', { class: 'buttons' });
    if (serving) {
      const rb = el('button', { class: 'rollback', text: 'Roll back' });
      rb.addEventListener('click', () => act(rb, async () => {
        const p = await post(`/v1/models/${m.model}/rollback`, {});
        return `rolled back: ${p.version || JSON.stringify(p)} serves`;
      }));
      buttons.append(rb);
    } else {
      const pb = el('button', { class: 'promote', text: 'Promote', 'data-version': v.version });
      pb.addEventListener('click', () => act(pb, async () => {
        const p = await post(`/v1/models/${m.model}/rollback`, { to: v.version });
        return `${p.version || v.version} serves`;
      }));
      buttons.append(pb);
    }
    const plotBtn = el('button', { class: 'plots-btn', text: 'Plots', 'data-version': v.version, title: 'show this version\'s training plots' });
    plotBtn.addEventListener('click', () => {
      state.plotSel.set(m.model, v.version);
      sel = v;
      renderPlots(plots, m.model, v);
    });
    buttons.append(' ', plotBtn);
    const served = (v.served || []).map((s) => `${new Date(s.from).toLocaleString()}${s.until ? ' – ' + new Date(s.until).toLocaleString() : ' – now'} (${s.reason})`).join('; ');
    return el('tr', { class: serving ? 'serving' : '', 'data-version': v.version },
      el('td', {}, el('span', { class: 'version', text: v.version }), ' ', serving ? el('span', { class: 'badge', text: 'serving' }) : ''),
      el('td', { text: v.manifest.parent_version || '—' }),
      el('td', { text: v.manifest.created_at ? new Date(v.manifest.created_at).toLocaleString() : '' }),
      el('td', { text: fmtMetrics(v.manifest.metrics) }),
      el('td', { text: served }),
      buttons);
  });
  if (sel) renderPlots(plots, m.model, sel);
  const retrain = el('button', { class: 'retrain-btn', text: 'Retrain now' });
  retrain.addEventListener('click', () => act(retrain, async () => {
    const out = await post(`/v1/models/${m.model}/retrain`, {});
    retrainState(m.model).status = out; // queued or running: polled until it ends
    return `retrain ${out.state || 'requested'}`;
  }));
  const rt = el('div', { class: 'retrain-status', id: `retrain-${m.model}` });
  const card = el('div', { class: 'model-card', id: `model-${m.model}`, 'data-serving': m.serving || '' },
    el('h3', {}, el('span', { text: m.model }), el('span', { class: 'meta', text: `${m.task || ''} · serving ${m.serving || 'none'}` }), retrain),
    rt,
    el('table', {},
      el('thead', {}, el('tr', {}, ...['version', 'parent', 'created', 'metrics', 'served', ''].map((h) => el('th', { text: h })))),
      el('tbody', {}, ...rows)),
    status, plots);
  paintRetrain(m.model, rt);
  refreshRetrain(m.model);
  return card;
}

// renderPlots shows a version's training plots (stored with it by `vireo
// models push` of a `vireo train` folder or by the retrain service).
const PLOTS = [['losses.png', 'loss', 'training and validation loss'], ['lr.png', 'lr', 'learning rate and momentum']];
function renderPlots(panel, model, v) {
  const files = v.files || [];
  const kids = [el('h4', { text: `Training plots of ${v.version}` })];
  const figs = PLOTS.filter(([f]) => files.includes(f)).map(([, name, title]) => el('figure', {},
    el('img', { class: `plot plot-${name}`, alt: `${title} of ${model} ${v.version}`, src: `/v1/models/${model}/versions/${v.version}/plots/${name}.png` }),
    el('figcaption', { text: title })));
  if (figs.length) kids.push(el('div', { class: 'figs' }, ...figs));
  else kids.push(el('p', { class: 'hint no-plots', text: 'no training plots recorded for this version' }));
  panel.dataset.version = v.version;
  panel.replaceChildren(...kids);
  panel.closest('.model-card')?.querySelectorAll('tr[data-version]').forEach((tr) => tr.classList.toggle('plotted', tr.dataset.version === v.version));
}

// ---------- retrain status (polled only while a run is queued or running) ----------
const RETRAIN_POLL_MS = 1000;
function retrainState(model) {
  let r = state.retrain.get(model);
  if (!r) { r = { status: null, error: '', timer: null, gen: 0 }; state.retrain.set(model, r); }
  return r;
}
const retrainActive = (st) => !!st && (st.state === 'running' || st.state === 'queued');
const modelsVisible = () => !$('#view-models').classList.contains('hidden');

async function refreshRetrain(model) {
  const r = retrainState(model);
  clearTimeout(r.timer);
  r.timer = null;
  const gen = ++r.gen; // a newer refresh supersedes this one
  const was = retrainActive(r.status);
  let st = null, err = '';
  try {
    const resp = await fetch(`/v1/models/${model}/retrain`);
    const body = await resp.json().catch(() => ({}));
    if (resp.ok) st = body;
    else err = body.error || `HTTP ${resp.status}`;
  } catch (e) {
    err = String(e.message || e);
  }
  if (gen !== r.gen) return;
  r.status = st;
  r.error = err;
  paintRetrain(model);
  if (retrainActive(st) && modelsVisible()) r.timer = setTimeout(() => refreshRetrain(model), RETRAIN_POLL_MS);
  if (was && !retrainActive(st)) renderModels(); // the run ended: its candidate is a new version
}

function stopRetrainPolls() {
  for (const r of state.retrain.values()) { clearTimeout(r.timer); r.timer = null; r.gen++; }
}

function paintRetrain(model, box = document.getElementById(`retrain-${model}`)) {
  if (!box) return;
  const r = retrainState(model);
  const st = r.status;
  if (!st) {
    box.dataset.state = r.error ? 'unavailable' : '';
    box.replaceChildren(el('span', { class: r.error ? 'status err' : 'hint', text: r.error ? `retrain: unavailable (${r.error})` : 'retrain: …' }));
    return;
  }
  Object.assign(box.dataset, { state: st.state, stage: st.stage || '', epoch: st.epoch || 0, epochs: st.epochs || 0, batch: st.batch || 0, batches: st.batches || 0 });
  const parts = [`retrain: ${st.state}`];
  if (st.stage) parts.push(st.stage.replace('_', ' '));
  if (st.epochs) parts.push(`epoch ${st.epoch}/${st.epochs}`);
  if (st.batches) parts.push(`batch ${st.batch}/${st.batches}`);
  const kids = [el('div', { class: 'rt-line', text: parts.join(' · ') })];
  if (retrainActive(st)) {
    const frac = st.epochs && st.batches ? ((st.epoch - 1) + st.batch / st.batches) / st.epochs : 0;
    kids.push(el('div', { class: 'progress', title: `${Math.round(frac * 100)}% of this stage` },
      el('div', { class: 'fill', style: `width:${(frac * 100).toFixed(1)}%` })));
  }
  kids.push(el('div', { class: 'rt-counts', text: `${st.corrections} ${st.corrections === 1 ? 'correction' : 'corrections'} kept, ${st.pending} new (a run starts at ${st.trigger})` }));
  if (st.last) {
    const l = st.last;
    const what = l.candidate ? `candidate ${l.candidate} from ${l.parent}` : (l.parent ? `from ${l.parent}` : '');
    kids.push(el('div', { class: `rt-last ${l.outcome}`, text: `last run (${l.trigger}, ${new Date(l.finished).toLocaleString()}): ${l.outcome}${what ? ' · ' + what : ''} — ${l.reason}` }));
  }
  box.replaceChildren(...kids);
}

// ---------- corrections ----------
let corr = null; // {card snapshot, edit state}

function openCorrection(c) {
  if (!c.shown) return;
  const { res, frame, manifest } = c.shown;
  corr = { res, frame, manifest, edit: {}, painting: null, brush: 0, cls: 0 };
  $('#correct').dataset.seq = String(res.seq); // which frame the dialog corrects
  $('#correct').classList.remove('hidden');
  $('#correct-meta').textContent = `${res.model} ${res.model_version} · source ${res.source} · seq ${res.seq} · ${res.task}`;
  const stage = $('#correct-stage');
  $('img', stage).src = frame.url;
  if (frame.ow && frame.oh) $('img', stage).style.aspectRatio = `${frame.ow} / ${frame.oh}`;
  $('#correct-status').textContent = '';
  $('#correct-status').className = 'status';
  const ctl = $('#correct-controls');
  ctl.replaceChildren();
  const labels = (manifest && manifest.labels) || res.classes || Object.keys(res.scores || {});
  if (res.task === 'classification') {
    ctl.append(el('p', { class: 'meta', text: 'Pick the right label:' }));
    labels.forEach((l) => {
      const r = el('input', { type: 'radio', name: 'corr-label', value: l });
      if ((res.labels || [])[0] === l) r.checked = true;
      ctl.append(el('label', {}, r, l));
    });
  } else if (res.task === 'multilabel') {
    ctl.append(el('p', { class: 'meta', text: 'Tick every label that applies:' }));
    labels.forEach((l) => {
      const b = el('input', { type: 'checkbox', name: 'corr-labels', value: l });
      if ((res.labels || []).includes(l)) b.checked = true;
      ctl.append(el('label', {}, b, l));
    });
  } else if (res.task === 'regression') {
    corr.edit.points = (res.points || []).map((p) => ({ x: p.x, y: p.y }));
    ctl.append(el('p', { class: 'meta', text: 'Drag a point (or click where it should be: the nearest point moves there).' }));
  } else if (res.task === 'segmentation') {
    ctl.append(el('p', { class: 'meta', text: 'Paint the region with a class:' }));
    (res.classes || []).forEach((n, i) => {
      const r = el('input', { type: 'radio', name: 'corr-class', value: String(i) });
      if (i === 0) r.checked = true;
      r.addEventListener('change', () => { corr.cls = i; });
      ctl.append(el('label', {}, r, el('i', { style: `display:inline-block;width:12px;height:12px;background:${rgb(colour(i))}` }), n));
    });
    const size = el('input', { type: 'range', min: '1', max: '16', value: '4', id: 'brush-size' });
    ctl.append(el('label', {}, 'brush', size));
    decodeMask(res).then((m) => { corr.edit.mask = m; redrawCorrection(); });
  }
  redrawCorrection();
}

function redrawCorrection() {
  if (!corr) return;
  drawOverlay($('#correct-canvas'), corr.res, corr.frame, corr.manifest, corr.edit);
}

// canvasPoint maps a pointer event to canvas pixels (the frame as captured).
function canvasPoint(ev) {
  const cv = $('#correct-canvas');
  const r = cv.getBoundingClientRect();
  return { x: (ev.clientX - r.left) * cv.width / r.width, y: (ev.clientY - r.top) * cv.height / r.height };
}

// paintAt paints a round brush of the chosen class into the mask at p
// (canvas pixels), and along the segment from `from` when given, so a fast
// stroke leaves no gaps between pointer events.
function paintAt(p, from) {
  const m = corr.edit.mask;
  if (!m) return;
  const cv = $('#correct-canvas');
  const sx = m.w / cv.width, sy = m.h / cv.height;
  const rad = +($('#brush-size') ? $('#brush-size').value : 4);
  const a = from || p;
  const steps = Math.max(1, Math.ceil(Math.hypot((p.x - a.x) * sx, (p.y - a.y) * sy)));
  for (let k = 0; k <= steps; k++) {
    const mx = Math.floor((a.x + (p.x - a.x) * k / steps) * sx), my = Math.floor((a.y + (p.y - a.y) * k / steps) * sy);
    for (let y = Math.max(0, my - rad); y <= Math.min(m.h - 1, my + rad); y++) {
      for (let x = Math.max(0, mx - rad); x <= Math.min(m.w - 1, mx + rad); x++) {
        if ((x - mx) ** 2 + (y - my) ** 2 <= rad * rad) m.ids[y * m.w + x] = corr.cls;
      }
    }
  }
  corr.edit.painted = true;
}

function nearest(pts, p) {
  let best = -1, bd = Infinity;
  pts.forEach((q, i) => { const d = (q.x - p.x) ** 2 + (q.y - p.y) ** 2; if (d < bd) { bd = d; best = i; } });
  return best;
}

function setupCorrectionCanvas() {
  const cv = $('#correct-canvas');
  let drag = -1;
  cv.addEventListener('pointerdown', (ev) => {
    if (!corr) return;
    const p = canvasPoint(ev);
    if (corr.res.task === 'regression' && corr.edit.points && corr.edit.points.length) {
      drag = nearest(corr.edit.points, p);
      corr.edit.points[drag] = p;
      corr.edit.moved = true;
      redrawCorrection();
    } else if (corr.res.task === 'segmentation') {
      corr.painting = p;
      paintAt(p);
      redrawCorrection();
    }
    cv.setPointerCapture(ev.pointerId);
  });
  cv.addEventListener('pointermove', (ev) => {
    if (!corr) return;
    const p = canvasPoint(ev);
    if (drag >= 0) { corr.edit.points[drag] = p; redrawCorrection(); }
    else if (corr.painting) { paintAt(p, corr.painting); corr.painting = p; redrawCorrection(); }
  });
  const up = () => { drag = -1; if (corr) corr.painting = null; };
  cv.addEventListener('pointerup', up);
  cv.addEventListener('pointercancel', up);
}

function prediction(res) {
  switch (res.task) {
    case 'classification': return { label: (res.labels || [])[0] };
    case 'multilabel': return { labels: res.labels || [] };
    case 'segmentation': return { mask_png: res.mask_png };
    default: return { points: res.points || [] };
  }
}

async function submitCorrection() {
  const st = $('#correct-status');
  const { res } = corr;
  const body = {
    schema_version: 1, model: res.model, model_version: res.model_version, task: res.task,
    source: res.source, seq: res.seq, prediction: prediction(res),
    labeler: 'dashboard', ts: new Date().toISOString(),
  };
  if (res.task === 'classification') {
    const r = document.querySelector('input[name="corr-label"]:checked');
    if (!r) { st.textContent = 'pick a label'; st.className = 'status err'; return; }
    body.label = r.value;
  } else if (res.task === 'multilabel') {
    body.labels = [...document.querySelectorAll('input[name="corr-labels"]:checked')].map((b) => b.value);
  } else if (res.task === 'regression') {
    body.points = corr.edit.points.map((p) => ({ x: Math.round(p.x * 10) / 10, y: Math.round(p.y * 10) / 10 }));
  } else {
    if (!corr.edit.mask) { st.textContent = 'mask not loaded yet'; st.className = 'status err'; return; }
    body.mask_png = base64(pngGrey(corr.edit.mask.w, corr.edit.mask.h, corr.edit.mask.ids));
  }
  if (!body.prediction.label && res.task === 'classification') delete body.prediction;
  st.className = 'status';
  st.textContent = 'sending…';
  try {
    const out = await post(`/v1/models/${res.model}/corrections`, body, true);
    st.className = 'status ok';
    st.textContent = `recorded ${JSON.stringify(out)}`;
  } catch (e) {
    st.className = 'status err';
    st.textContent = `not recorded: ${e.message || e}`;
  }
}

// ---------- a minimal greyscale PNG encoder (stored deflate blocks) ----------
const CRC = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) { let c = n; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; t[n] = c >>> 0; }
  return t;
})();
function crc32(b) { let c = 0xffffffff; for (const x of b) c = CRC[(c ^ x) & 0xff] ^ (c >>> 8); return (c ^ 0xffffffff) >>> 0; }
function pngGrey(w, h, ids) {
  const raw = new Uint8Array((w + 1) * h);
  for (let y = 0; y < h; y++) raw.set(ids.subarray(y * w, (y + 1) * w), y * (w + 1) + 1);
  const blocks = [];
  for (let i = 0; i < raw.length || i === 0; i += 65535) {
    const part = raw.subarray(i, Math.min(raw.length, i + 65535));
    const last = i + 65535 >= raw.length ? 1 : 0;
    const hdr = new Uint8Array([last, part.length & 255, part.length >> 8, ~part.length & 255, (~part.length >> 8) & 255]);
    blocks.push(hdr, part);
    if (raw.length === 0) break;
  }
  let a = 1, b = 0;
  for (const x of raw) { a = (a + x) % 65521; b = (b + a) % 65521; }
  const adler = ((b << 16) | a) >>> 0;
  const zlen = 2 + blocks.reduce((s, p) => s + p.length, 0) + 4;
  const z = new Uint8Array(zlen);
  z[0] = 0x78; z[1] = 0x01;
  let o = 2;
  for (const p of blocks) { z.set(p, o); o += p.length; }
  new DataView(z.buffer).setUint32(o, adler);
  const chunk = (type, data) => {
    const c = new Uint8Array(12 + data.length);
    const dv = new DataView(c.buffer);
    dv.setUint32(0, data.length);
    for (let i = 0; i < 4; i++) c[4 + i] = type.charCodeAt(i);
    c.set(data, 8);
    dv.setUint32(8 + data.length, crc32(c.subarray(4, 8 + data.length)));
    return c;
  };
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, w); dv.setUint32(4, h);
  ihdr[8] = 8; ihdr[9] = 0; // 8-bit greyscale
  const parts = [new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', z), chunk('IEND', new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let q = 0;
  for (const p of parts) { out.set(p, q); q += p.length; }
  return out;
}
function base64(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

// ---------- tabs and start ----------
function showView(name) {
  document.querySelectorAll('.tab').forEach((t) => t.classList.toggle('active', t.dataset.view === name));
  $('#view-live').classList.toggle('hidden', name !== 'live');
  $('#view-models').classList.toggle('hidden', name !== 'models');
  if (name === 'models') renderModels();
  else stopRetrainPolls();
  if (location.hash !== '#' + name) history.replaceState(null, '', '#' + name);
}
document.querySelectorAll('.tab').forEach((t) => t.addEventListener('click', () => showView(t.dataset.view)));
$('#correct-cancel').addEventListener('click', () => { $('#correct').classList.add('hidden'); corr = null; });
$('#correct-submit').addEventListener('click', submitCorrection);
setupCorrectionCanvas();
loadModels().catch((e) => console.warn(e));
showView(location.hash === '#models' ? 'models' : 'live');
connect();
