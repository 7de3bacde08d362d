// A Leaflet layer that draws every vehicle on one canvas, moving each marker smoothly from its last drawn
// position to its newest report. One canvas and one requestAnimationFrame loop keep 2,000+ vehicles cheap:
// no DOM element per vehicle.
import L from "leaflet";

/** Colour by schedule deviation in seconds (positive = late). */
export function delayColour(delay) {
  if (delay == null) return "#8a94a6";
  if (delay < -60) return "#3b82f6";
  if (delay < 60) return "#16a34a";
  if (delay < 180) return "#eab308";
  if (delay < 300) return "#f97316";
  return "#dc2626";
}

const EASE_MIN_MS = 300;
const EASE_MAX_MS = 2500;

export const VehicleLayer = L.Layer.extend({
  initialize() {
    this._items = new Map(); // id -> { v, fromLat, fromLon, toLat, toLon, t0, dur, lastUpdate }
    this._route = null;
    this._highlight = null;
    this._drawn = [];
    this.onDrawn = null;
  },

  onAdd(map) {
    this._map = map;
    this._canvas = L.DomUtil.create("canvas", "vehicle-canvas", map.getContainer());
    this._ctx = this._canvas.getContext("2d");
    map.on("resize", this._resize, this);
    this._resize();
    this._frame = requestAnimationFrame(() => this._draw());
  },

  onRemove(map) {
    cancelAnimationFrame(this._frame);
    map.off("resize", this._resize, this);
    this._canvas.remove();
  },

  update(batch) {
    const now = performance.now();
    for (const v of batch) {
      const item = this._items.get(v.id);
      if (!item) {
        this._items.set(v.id, { v, fromLat: v.latitude, fromLon: v.longitude, toLat: v.latitude, toLon: v.longitude, t0: now, dur: 0, lastUpdate: now });
        continue;
      }
      const [lat, lon] = this._position(item, now);
      // Ease over roughly the interval between reports, so a marker arrives as the next report comes in.
      const dur = Math.min(EASE_MAX_MS, Math.max(EASE_MIN_MS, now - item.lastUpdate));
      Object.assign(item, { v, fromLat: lat, fromLon: lon, toLat: v.latitude, toLon: v.longitude, t0: now, dur, lastUpdate: now });
    }
  },

  remove(ids) { for (const id of ids) this._items.delete(id); },
  get(id) { return this._items.get(id)?.v; },
  count() { return this._items.size; },
  filterRoute(route) { this._route = route; },
  highlight(id) { this._highlight = id; },

  /** Screen position of a vehicle (container pixels), or null; for tests. */
  positionOf(id) {
    const item = this._items.get(id);
    if (!item) return null;
    const [lat, lon] = this._position(item, performance.now());
    const p = this._map.latLngToContainerPoint([lat, lon]);
    return { x: p.x, y: p.y, lat, lon };
  },

  /** The drawn vehicle nearest to a container point within maxPx, or null. */
  nearest(point, maxPx) {
    let best = null;
    let bestD = maxPx;
    for (const d of this._drawn) {
      const dist = Math.hypot(d.x - point.x, d.y - point.y);
      if (dist < bestD) { best = d.v; bestD = dist; }
    }
    return best;
  },

  _position(item, now) {
    if (item.dur <= 0) return [item.toLat, item.toLon];
    const t = Math.min(1, (now - item.t0) / item.dur);
    const e = t * (2 - t); // ease out
    return [item.fromLat + (item.toLat - item.fromLat) * e, item.fromLon + (item.toLon - item.fromLon) * e];
  },

  _resize() {
    const size = this._map.getSize();
    const ratio = window.devicePixelRatio || 1;
    this._canvas.width = size.x * ratio;
    this._canvas.height = size.y * ratio;
    this._canvas.style.width = `${size.x}px`;
    this._canvas.style.height = `${size.y}px`;
    this._ratio = ratio;
  },

  _draw() {
    this._frame = requestAnimationFrame(() => this._draw());
    const map = this._map;
    const ctx = this._ctx;
    const ratio = this._ratio;
    const size = map.getSize();
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, size.x, size.y);
    const now = performance.now();
    const zoom = map.getZoom();
    const r = zoom >= 15 ? 7 : zoom >= 13 ? 5.5 : 4;
    const drawn = [];
    for (const item of this._items.values()) {
      const v = item.v;
      if (this._route && v.routeId !== this._route) continue;
      const [lat, lon] = this._position(item, now);
      const p = map.latLngToContainerPoint([lat, lon]);
      if (p.x < -r || p.y < -r || p.x > size.x + r || p.y > size.y + r) continue;
      drawn.push({ x: p.x, y: p.y, v });
      ctx.fillStyle = delayColour(v.delaySeconds);
      ctx.strokeStyle = v.id === this._highlight ? "#111827" : "rgba(255,255,255,0.9)";
      ctx.lineWidth = v.id === this._highlight ? 2.5 : 1;
      if (v.heading != null) {
        // An arrow: a triangle pointing along the heading (degrees clockwise from north).
        const a = (v.heading * Math.PI) / 180;
        const s = Math.sin(a);
        const c = Math.cos(a);
        ctx.beginPath();
        ctx.moveTo(p.x + s * r * 1.6, p.y - c * r * 1.6);
        ctx.lineTo(p.x - s * r + c * r, p.y + c * r + s * r);
        ctx.lineTo(p.x - s * r * 0.4, p.y + c * r * 0.4);
        ctx.lineTo(p.x - s * r - c * r, p.y + c * r - s * r);
        ctx.closePath();
      } else {
        ctx.beginPath();
        ctx.arc(p.x, p.y, r, 0, Math.PI * 2);
      }
      ctx.fill();
      ctx.stroke();
    }
    this._drawn = drawn;
    if (this.onDrawn) this.onDrawn(drawn.length);
  },
});
