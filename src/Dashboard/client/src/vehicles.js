// A Leaflet layer that draws every vehicle on one canvas, moving each marker smoothly from its last drawn
// position to its newest report. One canvas and one requestAnimationFrame loop keep 2,000+ vehicles cheap:
// no DOM element per vehicle.
//
// Per frame, nothing is allocated and nothing is projected: each vehicle keeps its start and end positions as
// world pixels at zoom 0 (projected once, when a report arrives), so a frame interpolates two numbers and scales
// them to the current zoom and pan. Markers are drawn in one path per colour (one fill and one stroke each), not
// one path per vehicle. A frame in which nothing moved (no report easing, the map still, nothing changed) draws
// nothing at all.
import L from "leaflet";

/** The delay classes of the markers, in legend order: [colour, label]. */
export const DELAY_CLASSES = [
  ["#3b82f6", "early (> 1 min)"],
  ["#16a34a", "on time (±1 min)"],
  ["#eab308", "1–3 min late"],
  ["#f97316", "3–5 min late"],
  ["#dc2626", "over 5 min late"],
  ["#8a94a6", "delay unknown"],
];

/** Colour by schedule deviation in seconds (positive = late). */
export function delayColour(delay) {
  if (delay == null) return "#8a94a6";
  if (delay < -60) return "#3b82f6";
  if (delay < 60) return "#16a34a";
  if (delay < 180) return "#eab308";
  if (delay < 300) return "#f97316";
  return "#dc2626";
}

// The colours of delayColour, indexed (a marker's bucket in the per-colour paths).
const COLOURS = ["#8a94a6", "#3b82f6", "#16a34a", "#eab308", "#f97316", "#dc2626"];
function colourIndex(delay) {
  if (delay == null) return 0;
  if (delay < -60) return 1;
  if (delay < 60) return 2;
  if (delay < 180) return 3;
  if (delay < 300) return 4;
  return 5;
}

const EASE_MIN_MS = 300;
const EASE_MAX_MS = 2500;
const DEG = Math.PI / 180;

export const VehicleLayer = L.Layer.extend({
  initialize() {
    // id -> item { v, fx, fy, tx, ty (world pixels at zoom 0, from/to), fromLat, fromLon, t0, dur, lastUpdate,
    // colour, sin, cos, x, y, shown, index }
    this._items = new Map();
    this._list = []; // the same items, for allocation-free iteration
    this._route = null;
    this._highlight = null;
    this._dirty = true;
    this._easingUntil = 0;
    this._lastDraw = 0;
    this.onDrawn = null;
  },

  onAdd(map) {
    this._map = map;
    this._canvas = L.DomUtil.create("canvas", "vehicle-canvas", map.getContainer());
    this._ctx = this._canvas.getContext("2d");
    map.on("resize", this._resize, this);
    map.on("move zoom viewreset", this._invalidate, this);
    this._resize();
    this._tick = () => this._draw();
    this._frame = requestAnimationFrame(this._tick);
  },

  onRemove(map) {
    cancelAnimationFrame(this._frame);
    map.off("resize", this._resize, this);
    map.off("move zoom viewreset", this._invalidate, this);
    this._canvas.remove();
  },

  update(batch) {
    const now = performance.now();
    const crs = this._map?.options.crs ?? L.CRS.EPSG3857;
    for (const v of batch) {
      const w = crs.latLngToPoint(L.latLng(v.latitude, v.longitude), 0);
      let item = this._items.get(v.id);
      if (!item) {
        item = {
          v, fx: w.x, fy: w.y, tx: w.x, ty: w.y, fromLat: v.latitude, fromLon: v.longitude, t0: now, dur: 0, lastUpdate: now,
          colour: 0, sin: 0, cos: 0, x: 0, y: 0, shown: false, index: this._list.length,
        };
        this._items.set(v.id, item);
        this._list.push(item);
      } else {
        // Start from where the marker is now; ease over roughly the interval between reports, so a marker arrives
        // as the next report comes in.
        const e = this._ease(item, now);
        item.fx += (item.tx - item.fx) * e;
        item.fy += (item.ty - item.fy) * e;
        item.fromLat = item.fromLat + (item.v.latitude - item.fromLat) * e;
        item.fromLon = item.fromLon + (item.v.longitude - item.fromLon) * e;
        item.tx = w.x;
        item.ty = w.y;
        item.dur = Math.min(EASE_MAX_MS, Math.max(EASE_MIN_MS, now - item.lastUpdate));
        item.t0 = now;
        item.lastUpdate = now;
        item.v = v;
        if (item.t0 + item.dur > this._easingUntil) this._easingUntil = item.t0 + item.dur;
      }
      item.colour = colourIndex(v.delaySeconds);
      if (v.heading != null) {
        item.sin = Math.sin(v.heading * DEG);
        item.cos = Math.cos(v.heading * DEG);
      }
    }
    this._dirty = true;
  },

  remove(ids) {
    for (const id of ids) {
      const item = this._items.get(id);
      if (!item) continue;
      this._items.delete(id);
      // Swap-remove from the list.
      const last = this._list.pop();
      if (last !== item) {
        this._list[item.index] = last;
        last.index = item.index;
      }
    }
    this._dirty = true;
  },
  get(id) { return this._items.get(id)?.v; },
  /** Every vehicle's latest state (a new array). */
  all() { return this._list.map((i) => i.v); },
  count() { return this._items.size; },
  filterRoute(route) { this._route = route; this._dirty = true; },
  highlight(id) { this._highlight = id; this._dirty = true; },

  /** Screen position of a vehicle (container pixels), or null; for tests. */
  positionOf(id) {
    const item = this._items.get(id);
    if (!item) return null;
    const e = this._ease(item, performance.now());
    const lat = item.fromLat + (item.v.latitude - item.fromLat) * e;
    const lon = item.fromLon + (item.v.longitude - item.fromLon) * e;
    const p = this._map.latLngToContainerPoint([lat, lon]);
    return { x: p.x, y: p.y, lat, lon };
  },

  /** The drawn vehicle nearest to a container point within maxPx, or null. */
  nearest(point, maxPx) {
    let best = null;
    let bestD = maxPx;
    for (const item of this._list) {
      if (!item.shown) continue;
      const dist = Math.hypot(item.x - point.x, item.y - point.y);
      if (dist < bestD) { best = item.v; bestD = dist; }
    }
    return best;
  },

  _ease(item, now) {
    if (item.dur <= 0) return 1;
    const t = Math.min(1, (now - item.t0) / item.dur);
    return t * (2 - t); // ease out
  },

  _invalidate() { this._dirty = true; },

  _resize() {
    const size = this._map.getSize();
    const ratio = window.devicePixelRatio || 1;
    this._canvas.width = size.x * ratio;
    this._canvas.height = size.y * ratio;
    this._canvas.style.width = `${size.x}px`;
    this._canvas.style.height = `${size.y}px`;
    this._ratio = ratio;
    this._dirty = true;
  },

  _draw() {
    this._frame = requestAnimationFrame(this._tick);
    const now = performance.now();
    // Redraw only when something moved: a report still easing (drawn once more after the last one ended, so every
    // marker rests at its report), the map panned or zoomed, or a change.
    if (!this._dirty && this._lastDraw > this._easingUntil) return;
    this._dirty = false;
    this._lastDraw = now;
    const map = this._map;
    const ctx = this._ctx;
    const size = map.getSize();
    const width = size.x;
    const height = size.y;
    ctx.setTransform(this._ratio, 0, 0, this._ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const zoom = map.getZoom();
    const r = zoom >= 15 ? 7 : zoom >= 13 ? 5.5 : 4;
    // World pixel at zoom 0 -> container pixel: scale by 2^zoom, then the offset of the view (taken from the
    // centre, so it follows panning and zoom animation like latLngToContainerPoint does).
    const scale = map.options.crs.scale(zoom) / map.options.crs.scale(0);
    const centre = map.getCenter();
    const cw = map.options.crs.latLngToPoint(centre, 0);
    const cc = map.latLngToContainerPoint(centre);
    const ox = cc.x - cw.x * scale;
    const oy = cc.y - cw.y * scale;

    const list = this._list;
    const route = this._route;
    const highlight = this._highlight;
    let drawn = 0;
    let hi = null;
    // Pass 1: positions and visibility (no drawing).
    for (let i = 0; i < list.length; i++) {
      const item = list[i];
      item.shown = false;
      if (route && item.v.routeId !== route) continue;
      const e = this._ease(item, now);
      const x = (item.fx + (item.tx - item.fx) * e) * scale + ox;
      const y = (item.fy + (item.ty - item.fy) * e) * scale + oy;
      if (x < -r || y < -r || x > width + r || y > height + r) continue;
      item.x = x;
      item.y = y;
      item.shown = true;
      drawn++;
      if (item.v.id === highlight) hi = item;
    }
    // Pass 2: one path per colour, one fill and one stroke each.
    ctx.strokeStyle = "rgba(255,255,255,0.9)";
    ctx.lineWidth = 1;
    for (let c = 0; c < COLOURS.length; c++) {
      let any = false;
      ctx.beginPath();
      for (let i = 0; i < list.length; i++) {
        const item = list[i];
        if (!item.shown || item.colour !== c || item === hi) continue;
        any = true;
        this._shape(ctx, item, r);
      }
      if (!any) continue;
      ctx.fillStyle = COLOURS[c];
      ctx.fill();
      ctx.stroke();
    }
    if (hi) {
      // The selected vehicle on top, with a dark outline.
      ctx.beginPath();
      this._shape(ctx, hi, r);
      ctx.fillStyle = COLOURS[hi.colour];
      ctx.strokeStyle = "#111827";
      ctx.lineWidth = 2.5;
      ctx.fill();
      ctx.stroke();
    }
    if (zoom >= 15 && this.labelOf) {
      // Close in: each vehicle's route short name beside it (a few dozen vehicles are on screen at this zoom).
      ctx.font = "600 11px system-ui, sans-serif";
      ctx.textBaseline = "middle";
      ctx.lineWidth = 3;
      ctx.strokeStyle = "rgba(255,255,255,0.95)";
      ctx.fillStyle = "#111827";
      for (let i = 0; i < list.length; i++) {
        const item = list[i];
        if (!item.shown) continue;
        const label = this.labelOf(item.v);
        if (!label) continue;
        ctx.strokeText(label, item.x + r + 3, item.y);
        ctx.fillText(label, item.x + r + 3, item.y);
      }
    }
    if (this.onDrawn) this.onDrawn(drawn);
  },

  // Adds a marker to the current path: an arrow along the heading (degrees clockwise from north), or a dot.
  _shape(ctx, item, r) {
    const x = item.x;
    const y = item.y;
    if (item.v.heading != null) {
      const s = item.sin;
      const c = item.cos;
      ctx.moveTo(x + s * r * 1.6, y - c * r * 1.6);
      ctx.lineTo(x - s * r + c * r, y + c * r + s * r);
      ctx.lineTo(x - s * r * 0.4, y + c * r * 0.4);
      ctx.lineTo(x - s * r - c * r, y + c * r - s * r);
      ctx.closePath();
    } else {
      ctx.moveTo(x + r, y);
      ctx.arc(x, y, r, 0, Math.PI * 2);
    }
  },
});
