"""The viewer's one page: HTML, CSS and JavaScript inline, nothing fetched but the server's own API.

The depth map is coloured by inverse depth through magma (near is bright, as ``mldanet predict``'s
pictures), between the 1st and 95th percentiles of its depth; the colour bar's ticks are metres at
their inverse-depth positions. The point cloud is drawn on a 2-D canvas with a z-buffer: each
point is a square as large as the gap to its neighbours where it lands, so surfaces look closed.

After an item is drawn the element ``#status`` carries ``data-state="ready"``, ``data-item``
(its id), ``data-depth-pixels`` (depth pixels drawn) and ``data-points`` (cloud points drawn):
headless tests read them from the DOM. ``?item=ID`` opens that item first.
"""

from __future__ import annotations

import functools
import json


@functools.lru_cache(maxsize=1)
def magma_lut() -> list[int]:
    """matplotlib's magma as 256 RGB triples, flattened (768 ints): the page's colours and the
    colour map of ``mldanet predict``'s pictures are the same."""
    import numpy as np
    from matplotlib import colormaps

    return colormaps["magma"](np.linspace(0.0, 1.0, 256), bytes=True)[:, :3].reshape(-1).tolist()


@functools.lru_cache(maxsize=1)
def page_html() -> str:
    """The page, with the colour table filled in."""
    return PAGE.replace("__MAGMA__", json.dumps(magma_lut(), separators=(",", ":")))


PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mldanet view</title>
<style>
:root { --bg: #121419; --panel: #1b1e25; --line: #2b303a; --text: #e3e6eb; --dim: #959cab; --accent: #fcb046; --bad: #ff6b6b; }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
html, body { margin: 0; height: 100%; background: var(--bg); color: var(--text);
  font: 13.5px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
header { display: flex; align-items: baseline; gap: 18px; padding: 10px 18px; border-bottom: 1px solid var(--line); height: 44px; white-space: nowrap; overflow: hidden; }
header h1 { font-size: 16px; margin: 0; font-weight: 650; letter-spacing: .2px; }
header h1 span { color: var(--accent); }
header .meta { color: var(--dim); font-size: 12.5px; overflow: hidden; text-overflow: ellipsis; }
#app { display: grid; grid-template-columns: 236px minmax(0, 1fr); height: calc(100% - 44px); }
aside { border-right: 1px solid var(--line); padding: 14px; overflow: auto; display: flex; flex-direction: column; gap: 18px; }
aside h2 { font-size: 11.5px; text-transform: uppercase; letter-spacing: .8px; color: var(--dim); margin: 0 0 8px; font-weight: 600; }
.upload { display: block; text-align: center; padding: 9px 10px; border: 1px dashed #4a5161; border-radius: 7px; cursor: pointer; color: var(--text); }
.upload:hover { border-color: var(--accent); color: var(--accent); }
.upload input { display: none; }
#message { margin-top: 8px; font-size: 12.5px; color: var(--dim); overflow-wrap: anywhere; }
#message.error { color: var(--bad); } #message.ok { color: #7bd88f; } #message.busy { color: var(--accent); }
#items { list-style: none; margin: 0; padding: 0; max-height: 40vh; overflow: auto; }
#items li { padding: 5px 8px; border-radius: 5px; cursor: pointer; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; font-size: 12.5px; }
#items li:hover { background: #252a33; }
#items li.active { background: #2e3440; color: var(--accent); }
#items li small { color: var(--dim); margin-left: 4px; }
#items .empty { color: var(--dim); cursor: default; }
dl.info { margin: 0; font-size: 12px; display: grid; grid-template-columns: auto 1fr; gap: 3px 8px; }
dl.info dt { color: var(--dim); } dl.info dd { margin: 0; overflow-wrap: anywhere; }
#status { margin-top: auto; font-size: 12px; color: var(--dim); }
#status[data-state="error"] { color: var(--bad); }
main { padding: 14px 18px; display: flex; flex-direction: column; gap: 14px; min-height: 0; min-width: 0; }
.row { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 14px; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 9px; padding: 10px 12px 12px; margin: 0; min-width: 0; display: flex; flex-direction: column; }
.panel h3 { margin: 0 0 8px; font-size: 13px; font-weight: 600; display: flex; justify-content: space-between; align-items: baseline; gap: 10px; white-space: nowrap; }
.panel h3 .sub { color: var(--dim); font-weight: 400; font-size: 12px; overflow: hidden; text-overflow: ellipsis; }
.frame { position: relative; margin: 0 auto; background: #0b0c0f; }
.frame > img, .frame > canvas { position: absolute; left: 0; top: 0; width: 100%; height: 100%; display: block; }
.frame > .overlay { pointer-events: none; }
.frame .none { position: absolute; inset: 0; display: flex; align-items: center; justify-content: center; text-align: center; padding: 12px; color: var(--dim); font-size: 12.5px; }
#readout { font: 12.5px ui-monospace, "DejaVu Sans Mono", monospace; color: var(--accent); }
#readout.idle { font: 12px system-ui, sans-serif; color: var(--dim); }
#colorbar { display: block; margin: 8px auto 0; }
.caption { margin-top: 10px; font-size: 12px; color: var(--dim); text-align: center; }
.cloud { flex: 1; min-height: 0; }
.cloud h3 label { color: var(--dim); font-weight: 400; font-size: 12px; display: inline-flex; align-items: center; gap: 6px; }
#cloudbox { position: relative; flex: 1; min-height: 160px; border-radius: 6px; overflow: hidden; }
#cloud { position: absolute; inset: 0; width: 100%; height: 100%; cursor: grab; touch-action: none; }
#cloud.dragging { cursor: grabbing; }
#cloudinfo { position: absolute; left: 10px; bottom: 8px; font-size: 11.5px; color: var(--dim); pointer-events: none; }
input[type=range] { width: 120px; accent-color: var(--accent); }
</style>
</head>
<body>
<header><h1>mldanet <span>view</span></h1><span class="meta" id="checkpoint"></span></header>
<div id="app">
<aside>
  <section>
    <h2>Upload an image</h2>
    <label class="upload">Choose an image…<input type="file" id="file" accept="image/*"></label>
    <div id="message" role="alert"></div>
  </section>
  <section>
    <h2>Predictions</h2>
    <ul id="items"><li class="empty">none yet</li></ul>
  </section>
  <section>
    <h2>Model</h2>
    <dl class="info"><dt>network</dt><dd id="network">–</dd><dt>depth</dt><dd id="unit">–</dd><dt>camera</dt><dd id="camera">–</dd></dl>
  </section>
  <div id="status" data-state="loading">loading…</div>
</aside>
<main>
  <div class="row">
    <figure class="panel"><h3>Input <span class="sub" id="name"></span></h3>
      <div class="frame" id="inputframe"><img id="input" alt=""><canvas class="overlay" id="inputmark"></canvas><div class="none" id="noimage" hidden></div></div>
      <div class="caption" id="inputinfo"></div>
    </figure>
    <figure class="panel"><h3>Depth <span id="readout" class="idle">point at a picture</span></h3>
      <div class="frame" id="depthframe"><canvas id="depth"></canvas><canvas class="overlay" id="depthmark"></canvas></div>
      <canvas id="colorbar"></canvas>
    </figure>
  </div>
  <figure class="panel cloud"><h3>Point cloud <span class="sub">drag: rotate · wheel: zoom · double-click: reset</span>
      <span><label>max depth <input type="range" id="maxdepth" min="0" max="1000" value="1000"> <span id="maxdepthvalue"></span></label>
      <label><input type="checkbox" id="bydepth"> colour by depth</label></span></h3>
    <div id="cloudbox"><canvas id="cloud"></canvas><div id="cloudinfo"></div></div>
  </figure>
</main>
</div>
<script>
"use strict";
const MAGMA = new Uint8Array(__MAGMA__);
const BACKGROUND = [0x0b, 0x0c, 0x0f];
const $ = (id) => document.getElementById(id);
const S = { info: null, item: null, depth: null, xyz: null, imageColours: null, depthColours: null, n: 0,
            view: null, hover: null, maxDepth: Infinity, zbuf: null, pending: false };

function setStatus(state, text, data = {}) {
  const el = $("status");
  el.dataset.state = state;
  el.textContent = text;
  for (const [key, value] of Object.entries(data)) el.dataset[key] = String(value);
}
function showMessage(text, kind = "") { const el = $("message"); el.textContent = text; el.className = kind; }

async function errorOf(response) {
  try { const body = await response.json(); if (body && body.error) return body.error; } catch (e) { /* not JSON */ }
  return `${response.status} ${response.statusText}`;
}
async function fetchJSON(url, options) {
  const response = await fetch(url, options);
  if (!response.ok) throw new Error(await errorOf(response));
  return response.json();
}
async function fetchBinary(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(await errorOf(response));
  return response.arrayBuffer();
}

const unitLabel = () => (S.item && S.item.unit === "m" ? " m" : "");
function formatDepth(d) {
  if (!(d > 0) || !isFinite(d)) return "–";
  return (d >= 100 ? d.toFixed(0) : d >= 10 ? d.toFixed(1) : d.toFixed(2)) + unitLabel();
}
function tickLabel(v) { return v >= 10 ? v.toFixed(0) : v >= 1 ? String(+v.toFixed(1)) : String(+v.toFixed(2)); }

// Where depth d falls between near (0) and far (1) in inverse depth: the colours follow disparity.
function inversePosition(d, near, far) { return (1 / near - 1 / d) / (1 / near - 1 / far); }
function magmaIndex(d, near, far) {
  const t = 1 - inversePosition(d, near, far);
  return 3 * Math.max(0, Math.min(255, Math.round(t * 255)));
}
function packed(r, g, b) { return (0xff000000 | (b << 16) | (g << 8) | r) >>> 0; }

function drawDepth() {
  const { width: w, height: h, near, far } = S.item;
  const canvas = $("depth");
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(w, h);
  const out = new Uint32Array(image.data.buffer);
  let drawn = 0;
  for (let i = 0; i < w * h; i++) {
    const d = S.depth[i];
    if (d > 0 && isFinite(d)) {
      const k = magmaIndex(d, near, far);
      out[i] = packed(MAGMA[k], MAGMA[k + 1], MAGMA[k + 2]);
      drawn++;
    } else out[i] = packed(...BACKGROUND);
  }
  ctx.putImageData(image, 0, 0);
  return drawn;
}

function colourBarTicks(near, far, width) {
  // Round metres first (1, 2, 5 × 10^k), then the others where they still fit.
  const candidates = [];
  for (let e = Math.floor(Math.log10(near)) - 1; e <= Math.ceil(Math.log10(far)); e++)
    for (const [m, rank] of [[1, 0], [2, 1], [5, 1], [3, 2], [1.5, 3], [7, 3]]) {
      const v = m * Math.pow(10, e);
      if (v >= near && v <= far) candidates.push([v, rank]);
    }
  candidates.sort((a, b) => a[1] - b[1] || a[0] - b[0]);
  const kept = [];
  for (const [v] of candidates) {
    const x = inversePosition(v, near, far) * width;
    if (kept.every((k) => Math.abs(k.x - x) >= 42)) kept.push({ v, x });
  }
  return kept.sort((a, b) => a.x - b.x);
}

function drawColourBar(cssWidth) {
  const { near, far } = S.item;
  const canvas = $("colorbar"), dpr = window.devicePixelRatio || 1, cssHeight = 48;
  canvas.style.width = cssWidth + "px"; canvas.style.height = cssHeight + "px";
  canvas.width = Math.round(cssWidth * dpr); canvas.height = Math.round(cssHeight * dpr);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  const barHeight = 12, left = 0, barWidth = cssWidth - 2;
  for (let x = 0; x < barWidth; x++) {
    const t = 1 - x / Math.max(1, barWidth - 1), k = 3 * Math.round(t * 255);
    ctx.fillStyle = `rgb(${MAGMA[k]},${MAGMA[k + 1]},${MAGMA[k + 2]})`;
    ctx.fillRect(left + x, 0, 1, barHeight);
  }
  ctx.strokeStyle = "#3a404c"; ctx.strokeRect(left + 0.5, 0.5, barWidth - 1, barHeight - 1);
  ctx.fillStyle = "#c9ced8"; ctx.strokeStyle = "#c9ced8";
  ctx.font = "11.5px system-ui, sans-serif"; ctx.textBaseline = "top";
  for (const { v, x } of colourBarTicks(near, far, barWidth)) {
    ctx.beginPath(); ctx.moveTo(left + x + 0.5, barHeight); ctx.lineTo(left + x + 0.5, barHeight + 4); ctx.stroke();
    const label = tickLabel(v);
    const w = ctx.measureText(label).width;
    ctx.textAlign = "left";
    ctx.fillText(label, Math.max(0, Math.min(cssWidth - w, left + x - w / 2)), barHeight + 6);
  }
  ctx.fillStyle = "#959cab"; ctx.textAlign = "right";
  const caption = S.item.unit === "m" ? "depth in metres (colour: 1 / depth)" : "relative depth (colour: 1 / depth)";
  ctx.fillText(caption, cssWidth, barHeight + 22);
}

function buildColours(xyz, rgb, n) {
  const { near, far } = S.item;
  S.imageColours = new Uint32Array(n);
  S.depthColours = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    S.imageColours[i] = packed(rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]);
    const k = magmaIndex(Math.min(xyz[3 * i + 2], far), near, far);
    S.depthColours[i] = packed(MAGMA[k], MAGMA[k + 1], MAGMA[k + 2]);
  }
}

function median(values) {
  const sorted = Float32Array.from(values).sort();
  return sorted.length ? sorted[Math.floor(sorted.length / 2)] : 1;
}

function baseFocal(W, H) {
  // At zoom 1 the cloud fills the canvas as the picture would, seen from the camera itself.
  return Math.min(W / S.item.width, H / S.item.height) * S.item.fx;
}

function resetView() {
  const z = new Float32Array(S.n);
  for (let i = 0; i < S.n; i++) z[i] = S.xyz[3 * i + 2];
  const pivot = Math.min(median(z), S.item.far);
  // Behind, beside and above the camera, looking at the scene's middle.
  S.view = { yaw: -0.62, pitch: 0.24, pivot: [0, 0, pivot], dist: pivot * 1.9, zoom: 1, shift: [0, 0] };
  fitView();
}

function fitView() {
  // Zoom and centre so that 98 % of the points and the camera fill the canvas.
  const canvas = $("cloud"), W = canvas.width || 800, H = canvas.height || 400;
  const project = transform(S.view), xs = [0], ys = [0], step = Math.max(1, Math.floor(S.n / 4000));
  const camera = project(0, 0, 0);
  for (let i = 0; i < S.n; i += step) {
    if (S.xyz[3 * i + 2] > S.maxDepth) continue;
    const q = project(S.xyz[3 * i], S.xyz[3 * i + 1], S.xyz[3 * i + 2]);
    if (q[2] > 1e-3) { xs.push(q[0] / q[2]); ys.push(q[1] / q[2]); }
  }
  if (xs.length < 3 || camera[2] <= 1e-3) return;
  const quantile = (a, p) => { const s = Float32Array.from(a).sort(); return s[Math.floor(p * (s.length - 1))]; };
  const x0 = Math.min(quantile(xs, 0.01), camera[0] / camera[2]), x1 = Math.max(quantile(xs, 0.99), camera[0] / camera[2]);
  const y0 = Math.min(quantile(ys, 0.01), camera[1] / camera[2]), y1 = Math.max(quantile(ys, 0.99), camera[1] / camera[2]);
  const f = 0.92 * Math.min(W / Math.max(1e-6, x1 - x0), H / Math.max(1e-6, y1 - y0));
  S.view.zoom = f / baseFocal(W, H);
  S.view.shift = [(x0 + x1) / 2, (y0 + y1) / 2];
}

function transform(view) {
  const cy = Math.cos(view.yaw), sy = Math.sin(view.yaw), cp = Math.cos(view.pitch), sp = Math.sin(view.pitch);
  const [px, py, pz] = view.pivot;
  return (x, y, z) => {  // camera space → viewer space
    x -= px; y -= py; z -= pz;
    const x1 = cy * x + sy * z, z1 = -sy * x + cy * z;
    return [x1, cp * y - sp * z1, sp * y + cp * z1 + view.dist];
  };
}

function renderCloud() {
  const canvas = $("cloud"), W = canvas.width, H = canvas.height;
  if (!S.xyz || !W || !H) return 0;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(W, H);
  const out = new Uint32Array(image.data.buffer);
  out.fill(packed(...BACKGROUND));
  if (!S.zbuf || S.zbuf.length !== W * H) S.zbuf = new Float32Array(W * H);
  const zbuf = S.zbuf;
  zbuf.fill(Infinity);
  const view = S.view, xyz = S.xyz, colours = $("bydepth").checked ? S.depthColours : S.imageColours;
  const cy = Math.cos(view.yaw), sy = Math.sin(view.yaw), cp = Math.cos(view.pitch), sp = Math.sin(view.pitch);
  const [px, py, pz] = view.pivot;
  const f = view.zoom * baseFocal(W, H);
  // Points as large as the gap to their neighbours (a ground row seen from above is further apart: × 1.5).
  const gap = 1.5 * S.item.stride / S.item.fx, maxDepth = S.maxDepth;
  const cx = W / 2 - f * view.shift[0], cyc = H / 2 - f * view.shift[1];
  let drawn = 0;
  for (let i = 0; i < S.n; i++) {
    const z0 = xyz[3 * i + 2];
    if (z0 > maxDepth) continue;
    const x = xyz[3 * i] - px, y = xyz[3 * i + 1] - py, z = z0 - pz;
    const x1 = cy * x + sy * z, z1 = -sy * x + cy * z;
    const y2 = cp * y - sp * z1, z2 = sp * y + cp * z1 + view.dist;
    if (z2 < 1e-3) continue;
    let s = Math.ceil(f * gap * z0 / z2);
    s = s < 1 ? 1 : s > 7 ? 7 : s;
    const u0 = Math.round(cx + f * x1 / z2 - s / 2), v0 = Math.round(cyc + f * y2 / z2 - s / 2);
    if (u0 >= W || v0 >= H || u0 + s <= 0 || v0 + s <= 0) continue;
    const colour = colours[i];
    for (let dv = 0; dv < s; dv++) {
      const row = v0 + dv;
      if (row < 0 || row >= H) continue;
      for (let du = 0; du < s; du++) {
        const col = u0 + du;
        if (col < 0 || col >= W) continue;
        const k = row * W + col;
        if (z2 < zbuf[k]) { zbuf[k] = z2; out[k] = colour; }
      }
    }
    drawn++;
  }
  ctx.putImageData(image, 0, 0);
  const project = (p) => { const q = transform(view)(...p); return q[2] > 1e-3 ? [cx + f * q[0] / q[2], cyc + f * q[1] / q[2]] : null; };
  drawCamera(ctx, project);
  if (S.hover) {
    const { u, v, d } = S.hover;
    const q = project([(u - S.item.cx) / S.item.fx * d, (v - S.item.cy) / S.item.fy * d, d]);
    if (q) { ctx.strokeStyle = "#49d3ff"; ctx.lineWidth = 2; ctx.beginPath(); ctx.arc(q[0], q[1], 7, 0, 2 * Math.PI); ctx.stroke(); }
  }
  $("cloudinfo").textContent = `${drawn.toLocaleString("en")} of ${S.n.toLocaleString("en")} points (one pixel in ${S.item.stride}×${S.item.stride})` +
    ` · fx ${S.item.fx.toFixed(1)} fy ${S.item.fy.toFixed(1)} cx ${S.item.cx.toFixed(1)} cy ${S.item.cy.toFixed(1)} px`;
  return drawn;
}

function drawCamera(ctx, project) {
  // The camera as a frustum: its centre and its picture's corners at a tenth of the median depth.
  const d = S.view.pivot[2] * 0.12, { width: w, height: h, fx, fy, cx, cy } = S.item;
  const corners = [[0, 0], [w, 0], [w, h], [0, h]].map(([u, v]) => project([(u - cx) / fx * d, (v - cy) / fy * d, d]));
  const origin = project([0, 0, 0]);
  if (!origin || corners.some((c) => !c)) return;
  ctx.strokeStyle = "rgba(73, 211, 255, 0.85)"; ctx.lineWidth = 1.5; ctx.beginPath();
  for (const c of corners) { ctx.moveTo(origin[0], origin[1]); ctx.lineTo(c[0], c[1]); }
  ctx.moveTo(corners[3][0], corners[3][1]);
  for (const c of corners) ctx.lineTo(c[0], c[1]);
  ctx.stroke();
}

function requestRender() {
  if (S.pending) return;
  S.pending = true;
  requestAnimationFrame(() => { S.pending = false; renderCloud(); });
}

function fitFrame(frame, panel, w, h, maxHeight) {
  const available = panel.clientWidth - 24;
  const scale = Math.min(available / w, maxHeight / h);
  frame.style.width = Math.floor(w * scale) + "px";
  frame.style.height = Math.floor(h * scale) + "px";
  return Math.floor(w * scale);
}

function layout(refit = false) {
  if (!S.item) return;
  const { width: w, height: h } = S.item, maxHeight = Math.max(110, window.innerHeight * 0.3);
  fitFrame($("inputframe"), $("inputframe").parentElement, w, h, maxHeight);
  const width = fitFrame($("depthframe"), $("depthframe").parentElement, w, h, maxHeight);
  for (const id of ["inputmark", "depthmark"]) { $(id).width = w; $(id).height = h; }
  drawColourBar(width);
  const box = $("cloudbox"), canvas = $("cloud");
  canvas.width = box.clientWidth; canvas.height = box.clientHeight;
  if (refit) resetView();
  return renderCloud();
}

function setMaxDepth() {
  // The slider is logarithmic between the nearest point and the farthest.
  const lo = Math.max(1e-3, S.item.near), hi = Math.max(S.item.max, lo * 1.01), t = $("maxdepth").value / 1000;
  S.maxDepth = t >= 1 ? Infinity : lo * Math.pow(hi / lo, t);
  $("maxdepthvalue").textContent = t >= 1 ? "all" : formatDepth(S.maxDepth);
}

function pointerPixel(event, element) {
  const rect = element.getBoundingClientRect();
  const u = Math.floor((event.clientX - rect.left) / rect.width * S.item.width);
  const v = Math.floor((event.clientY - rect.top) / rect.height * S.item.height);
  return u >= 0 && v >= 0 && u < S.item.width && v < S.item.height ? [u, v] : null;
}

function drawMarks() {
  for (const id of ["inputmark", "depthmark"]) {
    const canvas = $(id), ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (!S.hover) continue;
    const r = Math.max(4, canvas.width / 90), { u, v } = S.hover;
    ctx.lineWidth = Math.max(1.5, canvas.width / 500); ctx.strokeStyle = "#49d3ff";
    ctx.beginPath(); ctx.moveTo(u + 0.5 - 2 * r, v + 0.5); ctx.lineTo(u + 0.5 - r / 2, v + 0.5);
    ctx.moveTo(u + 0.5 + r / 2, v + 0.5); ctx.lineTo(u + 0.5 + 2 * r, v + 0.5);
    ctx.moveTo(u + 0.5, v + 0.5 - 2 * r); ctx.lineTo(u + 0.5, v + 0.5 - r / 2);
    ctx.moveTo(u + 0.5, v + 0.5 + r / 2); ctx.lineTo(u + 0.5, v + 0.5 + 2 * r); ctx.stroke();
  }
}

function hover(event) {
  if (!S.item) return;
  const pixel = pointerPixel(event, event.currentTarget);
  if (!pixel) return leave();
  const [u, v] = pixel, d = S.depth[v * S.item.width + u];
  S.hover = d > 0 && isFinite(d) ? { u, v, d } : null;
  $("readout").textContent = `x ${u}  y ${v}   ${formatDepth(d)}`;
  $("readout").className = "";
  drawMarks(); requestRender();
}
function leave() { S.hover = null; $("readout").textContent = "point at a picture"; $("readout").className = "idle"; drawMarks(); requestRender(); }

function listItems(activeId) {
  const list = $("items");
  list.textContent = "";
  if (!S.info.items.length) { const li = document.createElement("li"); li.className = "empty"; li.textContent = "none yet: upload an image"; list.append(li); }
  for (const item of S.info.items) {
    const li = document.createElement("li");
    li.textContent = item.name; li.title = item.name; li.dataset.id = item.id;
    if (item.source === "upload") { const tag = document.createElement("small"); tag.textContent = "upload"; li.append(tag); }
    if (item.id === activeId) li.className = "active";
    li.addEventListener("click", () => show(item.id));
    list.append(li);
  }
}

async function show(id) {
  setStatus("loading", `loading ${id}…`);
  try {
    const meta = await fetchJSON(`/api/items/${id}`);
    const [depth, cloud] = await Promise.all([fetchBinary(`/api/items/${id}/depth`), fetchBinary(`/api/items/${id}/cloud`)]);
    if (depth.byteLength !== 4 * meta.width * meta.height) throw new Error(`item ${id}: depth has ${depth.byteLength} bytes, not ${4 * meta.width * meta.height}`);
    if (cloud.byteLength !== 15 * meta.points) throw new Error(`item ${id}: cloud has ${cloud.byteLength} bytes, not ${15 * meta.points}`);
    S.item = meta; S.depth = new Float32Array(depth); S.n = meta.points;
    S.xyz = new Float32Array(cloud, 0, 3 * meta.points);
    buildColours(S.xyz, new Uint8Array(cloud, 12 * meta.points), S.n);
    S.hover = null;
    $("name").textContent = meta.name;
    $("inputinfo").textContent = `${meta.source === "upload" ? "uploaded" : "predict output"} · ${meta.width}×${meta.height} px shown` +
      ` · ${formatDepth(meta.near)} to ${formatDepth(meta.far)} (1st–95th percentile) · point at a picture for the depth`;
    const img = $("input"), none = $("noimage");
    if (meta.has_image) {
      await new Promise((resolve, reject) => { img.onload = resolve; img.onerror = () => reject(new Error(`item ${id}: its image did not load`)); img.src = `/api/items/${id}/image`; });
      img.hidden = false; none.hidden = true;
    } else { img.hidden = true; img.removeAttribute("src"); none.hidden = false; none.textContent = meta.note || "no input image"; }
    $("bydepth").checked = !meta.has_image;
    $("maxdepth").value = 1000 * Math.min(1, Math.log(meta.far * 1.6 / Math.max(1e-3, meta.near)) / Math.log(Math.max(meta.max, meta.near * 1.01) / Math.max(1e-3, meta.near)));
    setMaxDepth();
    const depthPixels = drawDepth();
    const points = layout(true);
    drawMarks();
    listItems(id);
    if (meta.note) showMessage(meta.note, "error");
    setStatus("ready", `${meta.name}: ${meta.width}×${meta.height}, ${formatDepth(meta.near)} to ${formatDepth(meta.far)}`,
              { item: id, depthPixels, points });
  } catch (error) {
    setStatus("error", error.message, { item: id });
    showMessage(error.message, "error");
  }
}

async function upload(file) {
  const limit = S.info.max_upload_bytes;
  if (file.size > limit) {
    showMessage(`${file.name} is ${(file.size / 2 ** 20).toFixed(1)} MB, over this viewer's ${(limit / 2 ** 20).toFixed(0)} MB (--max-upload-mb)`, "error");
    return;
  }
  showMessage(`running the depth network on ${file.name}…`, "busy");
  try {
    const meta = await fetchJSON("/api/predict", { method: "POST", body: file,
      headers: { "Content-Type": "application/octet-stream", "X-File-Name": encodeURIComponent(file.name) } });
    S.info = await fetchJSON("/api/items");
    showMessage(`${file.name}: done`, "ok");
    await show(meta.id);
  } catch (error) { showMessage(error.message, "error"); }
}

function bindEvents() {
  $("file").addEventListener("change", async (event) => { const file = event.target.files[0]; if (file) await upload(file); event.target.value = ""; });
  for (const id of ["depth", "input"]) { $(id).addEventListener("pointermove", hover); $(id).addEventListener("pointerleave", leave); }
  const canvas = $("cloud");
  let drag = null;
  canvas.addEventListener("pointerdown", (e) => { if (!S.view) return; drag = [e.clientX, e.clientY]; canvas.setPointerCapture(e.pointerId); canvas.classList.add("dragging"); });
  canvas.addEventListener("pointermove", (e) => {
    if (!drag) return;
    S.view.yaw += (e.clientX - drag[0]) * 0.006;
    S.view.pitch = Math.max(-1.5, Math.min(1.5, S.view.pitch + (e.clientY - drag[1]) * 0.006));
    drag = [e.clientX, e.clientY]; requestRender();
  });
  const stop = () => { drag = null; canvas.classList.remove("dragging"); };
  canvas.addEventListener("pointerup", stop); canvas.addEventListener("pointercancel", stop);
  canvas.addEventListener("wheel", (e) => { if (!S.view) return; e.preventDefault(); S.view.zoom *= Math.exp(-e.deltaY * 0.0015); requestRender(); }, { passive: false });
  canvas.addEventListener("dblclick", () => { if (S.view) { resetView(); requestRender(); } });
  $("maxdepth").addEventListener("input", () => { if (S.item) { setMaxDepth(); requestRender(); } });
  $("bydepth").addEventListener("change", requestRender);
  window.addEventListener("resize", () => layout());
}

async function main() {
  bindEvents();
  try {
    S.info = await fetchJSON("/api/items");
  } catch (error) { setStatus("error", `cannot reach the viewer: ${error.message}`); return; }
  $("checkpoint").textContent = S.info.checkpoint + (S.info.folder ? `   ·   predictions: ${S.info.folder}` : "");
  $("network").textContent = S.info.network;
  $("unit").textContent = S.info.metric ? "metres (stereo-trained)" : "relative (monocular: unknown scale)";
  $("camera").textContent = S.info.camera;
  listItems(null);
  const wanted = new URLSearchParams(location.search).get("item");
  const first = wanted !== null ? Number(wanted) : S.info.items.length ? S.info.items[0].id : null;
  if (first === null) setStatus("empty", "upload an image to see its depth");
  else await show(first);
}
main();
</script>
</body>
</html>
"""
