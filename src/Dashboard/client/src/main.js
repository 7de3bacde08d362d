// The Fleet live map. Data: GET /api/config, /api/network (GeoJSON base map), /api/routes, /api/alerts,
// /api/health, /api/vehicles/{id}, /api/stops/{id}/arrivals, /api/replay; pushes from the SignalR hub /hubs/live
// (vehicles, removed, predictions, alerts) after Subscribe("bbox" | "stop" | "vehicle" | "route", id).
import "leaflet/dist/leaflet.css";
import "./style.css";
import L from "leaflet";
import * as signalR from "@microsoft/signalr";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { VehicleLayer, delayColour, DELAY_CLASSES } from "./vehicles.js";

// The API key (fleet serve --api-key) is kept for the browser session, never in the URL: a ?key= link is taken in
// and removed from the address bar; without a key, a server that wants one gets a small sign-in form.
const params = new URLSearchParams(location.search);
if (params.has("key")) {
  sessionStorage.setItem("fleet.key", params.get("key"));
  params.delete("key");
  history.replaceState(null, "", `${location.pathname}${params.size ? `?${params}` : ""}${location.hash}`);
}
const apiKey = sessionStorage.getItem("fleet.key") ?? "";

const $ = (id) => document.getElementById(id);
const headers = apiKey ? { "X-Api-Key": apiKey } : {};

class HttpError extends Error {
  constructor(path, status) { super(`${path}: HTTP ${status}`); this.status = status; }
}

async function api(path, init = {}) {
  const res = await fetch(path, { ...init, headers: { ...headers, ...(init.headers ?? {}) } });
  if (!res.ok) throw new HttpError(path, res.status);
  return res.status === 204 ? null : res.json();
}

function showSignIn(wrong) {
  const form = $("sign-in");
  form.hidden = false;
  $("sign-in-error").textContent = wrong ? "That key was not accepted." : "";
  $("sign-in-key").focus();
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem("fleet.key", $("sign-in-key").value.trim());
    location.reload();
  }, { once: true });
}

// ---- map ---------------------------------------------------------------------------------------------------
const map = L.map("map", { preferCanvas: true, zoomControl: true, attributionControl: true, worldCopyJump: false });
map.attributionControl.setPrefix(false);
map.setView([60.17, 24.94], 12);
const baseRenderer = L.canvas({ padding: 0.2 });
const vehicles = new VehicleLayer();
vehicles.addTo(map);
// The side panel's figures change many times a second; they are written at most every 250 ms (and only when they
// changed), so text updates do not make the browser recompute style and layout in most frames.
let drawnCount = -1;
let shownCount = -1;
let updates = 0;
let shownUpdates = -1;
const counterEls = {};
function renderCounters() {
  if (drawnCount !== shownCount) { shownCount = drawnCount; (counterEls.v ??= $("vehicle-count")).textContent = String(drawnCount); }
  if (updates !== shownUpdates) { shownUpdates = updates; (counterEls.u ??= $("update-count")).textContent = String(updates); }
}
setInterval(renderCounters, 250);
vehicles.onDrawn = (n) => {
  if (n === drawnCount) return;
  const first = drawnCount < 0;
  drawnCount = n;
  if (first) renderCounters();
};

const stops = []; // { id, name, code, lat, lon }
const stopsById = new Map();
const routesById = new Map(); // id -> { id, shortName, longName, color, textColor }
let fitToVehiclesOnce = false;
vehicles.labelOf = (v) => (v.routeId ? routesById.get(v.routeId)?.shortName ?? v.routeId : null);
let shapesLayer = null;
let stopsLayer = null;
const routeColours = new Map();

// The tiles (OpenStreetMap's by default, with the attribution its usage policy asks for). When they cannot load
// (offline), the network drawn from GTFS stays and a small note says why the background is blank.
function loadTiles(config) {
  if (!config.tileUrl) return;
  const tiles = L.tileLayer(config.tileUrl, { maxZoom: 19, attribution: config.tileAttribution ?? "" }).addTo(map);
  let loaded = 0;
  let failed = 0;
  tiles.on("tileload", () => { loaded++; $("tiles-note").hidden = true; });
  tiles.on("tileerror", () => {
    failed++;
    if (loaded === 0 && failed >= 3) $("tiles-note").hidden = false;
  });
}

function addLegend() {
  const legend = L.control({ position: "bottomleft" });
  legend.onAdd = () => {
    const div = L.DomUtil.create("div", "legend");
    div.id = "legend";
    div.setAttribute("role", "group");
    div.setAttribute("aria-label", "Delay legend");
    div.innerHTML = `<b>Delay</b>${DELAY_CLASSES.map(([c, label]) =>
      `<div><span class="dot" style="background:${c}"></span>${label}</div>`).join("")}`;
    return div;
  };
  legend.addTo(map);
}

let selectedStopMarker = null;
async function loadBaseMap(config) {
  loadTiles(config);
  addLegend();
  const geo = await api("/api/network");
  const lines = { type: "FeatureCollection", features: geo.features.filter((f) => f.geometry.type !== "Point") };
  const points = geo.features.filter((f) => f.geometry.type === "Point");
  shapesLayer = L.geoJSON(lines, {
    renderer: baseRenderer,
    interactive: false,
    style: (f) => ({ color: colourOf(f.properties.routeId, f.properties.color), weight: 2, opacity: 0.55 }),
  }).addTo(map);
  stopsLayer = L.layerGroup().addTo(map);
  for (const f of points) {
    const [lon, lat] = f.geometry.coordinates;
    const stop = { id: f.properties.id, name: f.properties.name, code: f.properties.code ?? null, lat, lon };
    stops.push(stop);
    stopsById.set(stop.id, stop);
    // Stops answer the pointer: their name on hover, their board on click.
    L.circleMarker([lat, lon], {
      renderer: baseRenderer, radius: 3, weight: 1, color: "#5b6573", fillColor: "#ffffff", fillOpacity: 1, interactive: true, bubblingMouseEvents: false,
    }).bindTooltip(stop.code ? `${stop.name} (${stop.code})` : stop.name, { direction: "top", offset: [0, -3] })
      .on("click", () => select("stop", stop.id))
      .addTo(stopsLayer);
  }
  const bounds = shapesLayer.getBounds();
  if (bounds.isValid()) map.fitBounds(bounds, { padding: [10, 10] });
  else if (stops.length) map.fitBounds(L.latLngBounds(stops.map((s) => [s.lat, s.lon])), { padding: [10, 10] });
  else fitToVehiclesOnce = true; // no GTFS: the view follows the first vehicles instead
}

// The selected stop, ringed on the map while its board is open.
function markStop(id) {
  selectedStopMarker?.remove();
  selectedStopMarker = null;
  const s = id ? stopsById.get(id) : null;
  if (!s) return;
  selectedStopMarker = L.circleMarker([s.lat, s.lon], { radius: 9, weight: 3, color: "#111827", fill: false, interactive: false }).addTo(map);
}

// The selected route (or the selected vehicle's) drawn over the others along its shapes.
function highlightRoute(routeId) {
  shapesLayer?.setStyle((f) => ({
    color: colourOf(f.properties.routeId), weight: routeId && f.properties.routeId === routeId ? 5 : 2,
    opacity: routeId && f.properties.routeId !== routeId ? 0.2 : routeId ? 0.95 : 0.55,
  }));
}

function colourOf(routeId, colour) {
  if (colour) routeColours.set(routeId, `#${colour}`);
  return routeColours.get(routeId) ?? "#7a8699";
}

// ---- hub ---------------------------------------------------------------------------------------------------
const subscriptions = new Set(); // "kind|id"
const conn = new signalR.HubConnectionBuilder()
  .withUrl("/hubs/live", apiKey ? { accessTokenFactory: () => apiKey } : {})
  .withAutomaticReconnect({ nextRetryDelayInMilliseconds: (ctx) => Math.min(10000, 500 * 2 ** ctx.previousRetryCount) })
  .configureLogging(signalR.LogLevel.Warning)
  .build();

conn.on("vehicles", (batch) => {
  updates += batch.length;
  vehicles.update(batch);
  if (fitToVehiclesOnce && batch.length) {
    fitToVehiclesOnce = false;
    map.fitBounds(L.latLngBounds(batch.map((v) => [v.latitude, v.longitude])), { padding: [30, 30], maxZoom: 15 });
  }
  if (selected?.kind === "vehicle") {
    const v = batch.find((b) => b.id === selected.id);
    if (v) { addToTrail(v); renderVehicle(v); }
  }
});
conn.on("removed", (ids) => vehicles.remove(ids));
conn.on("predictions", (batch) => {
  for (const p of batch) {
    const key = `${p.stopId}|${p.tripId}`;
    predictions.set(key, p);
    withdrawn.delete(key);
  }
  if (selected) renderSelected();
});
// A prediction taken back: its vehicle reached the stop, left the trip, went quiet, or the replay sought or looped.
conn.on("withdrawn", (batch) => {
  let restarted = false;
  for (const w of batch) {
    const key = `${w.stopId}|${w.tripId}`;
    predictions.delete(key);
    withdrawn.set(key, w.reason);
    restarted ||= w.reason === "restarted";
  }
  if (selected) renderSelected();
  // The replay starts over elsewhere: the board's scheduled trips (and its clock) belong to the old moment. Fetched
  // again once the replay has moved its clock to the new one.
  if (restarted && selected?.kind === "stop") setTimeout(() => refreshStop(true).then(() => selected && renderSelected()), 1000);
});
let alertsPending = false;
conn.on("alerts", (batch) => {
  for (const a of batch) {
    if (a.cleared) alerts.delete(a.id);
    else alerts.set(a.id, a);
  }
  // One render per animation frame however many batches came (the list is rebuilt as a whole).
  if (!alertsPending) { alertsPending = true; requestAnimationFrame(() => { alertsPending = false; renderAlerts(); }); }
});
conn.onreconnecting(() => setConn("reconnecting"));
conn.onreconnected(async () => { setConn("connected"); await resubscribe(); });
conn.onclose(() => setConn("disconnected"));

function setConn(state) {
  $("conn-state").textContent = state;
  $("conn-state").className = state;
}

async function subscribe(kind, id) {
  const key = `${kind}|${id}`;
  if (subscriptions.has(key)) return;
  subscriptions.add(key);
  if (conn.state === signalR.HubConnectionState.Connected) await conn.invoke("Subscribe", kind, id);
}

async function unsubscribe(kind, id) {
  const key = `${kind}|${id}`;
  if (!subscriptions.delete(key)) return;
  if (conn.state === signalR.HubConnectionState.Connected) await conn.invoke("Unsubscribe", kind, id);
}

async function resubscribe() {
  for (const key of subscriptions) {
    const [kind, id] = key.split("|");
    await conn.invoke("Subscribe", kind, id);
  }
}

// What the map sees: the visible box, padded so that panning a little shows vehicles at once.
let viewBox = null;
async function followView() {
  const b = map.getBounds().pad(0.25);
  const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
  const box = [clamp(b.getWest(), -180, 180), clamp(b.getSouth(), -90, 90), clamp(b.getEast(), -180, 180), clamp(b.getNorth(), -90, 90)]
    .map((v) => v.toFixed(5)).join(",");
  if (box === viewBox) return;
  const previous = viewBox;
  viewBox = box;
  await subscribe("bbox", box);
  if (previous) await unsubscribe("bbox", previous);
}
map.on("moveend", () => followView().catch(console.error));

// ---- selection: a vehicle or a stop ------------------------------------------------------------------------
const predictions = new Map(); // "stop|trip" -> prediction
const withdrawn = new Map(); // "stop|trip" -> why its prediction was taken back (until a new one comes)
const alerts = new Map();
let selected = null; // { kind: "vehicle"|"stop"|"route", id, data }

// The selected vehicle's trail: where it was over the last minutes (from the pushes since it was selected, and the
// positions of its panel's fetch).
const TRAIL_MS = 5 * 60 * 1000;
let trail = [];
const trailLine = L.polyline([], { color: "#111827", weight: 3, opacity: 0.55, dashArray: "4 4", interactive: false }).addTo(map);
function addToTrail(v) {
  const t = new Date(v.updated).getTime();
  if (trail.length && trail[trail.length - 1].t >= t) return;
  trail.push({ t, lat: v.latitude, lon: v.longitude });
  const cutoff = t - TRAIL_MS;
  while (trail.length && trail[0].t < cutoff) trail.shift();
  trailLine.setLatLngs(trail.map((p) => [p.lat, p.lon]));
}
function clearTrail() { trail = []; trailLine.setLatLngs([]); }

// Shareable views: #stop=ID, #route=ID, #vehicle=ID reopen what was open.
function setHash(kind, id) {
  const hash = kind ? `#${kind}=${encodeURIComponent(id)}` : "";
  if (location.hash !== hash) history.replaceState(null, "", `${location.pathname}${location.search}${hash}`);
}
function openFromHash() {
  const m = /^#(stop|route|vehicle)=(.+)$/.exec(location.hash);
  if (!m) return;
  const [, kind, id] = m;
  const decoded = decodeURIComponent(id);
  if (selected?.kind === kind && selected.id === decoded) return;
  select(kind, decoded).catch(console.error);
}
window.addEventListener("hashchange", openFromHash);

map.on("click", (e) => {
  const v = vehicles.nearest(e.containerPoint, 12);
  if (v) return select("vehicle", v.id);
  const p = e.containerPoint;
  let best = null;
  let bestD = 10;
  for (const s of stops) {
    const q = map.latLngToContainerPoint([s.lat, s.lon]);
    const d = Math.hypot(q.x - p.x, q.y - p.y);
    if (d < bestD) { best = s; bestD = d; }
  }
  if (best) return select("stop", best.id);
  return undefined;
});

async function select(kind, id) {
  if (selected) await unsubscribe(selected.kind, selected.id).catch(console.error);
  selected = { kind, id, data: null };
  setHash(kind, id);
  vehicles.highlight(kind === "vehicle" ? id : null);
  markStop(kind === "stop" ? id : null);
  clearTrail();
  if (kind === "route") {
    $("route-filter").value = id;
    vehicles.filterRoute(id);
  }
  highlightRoute(kind === "route" ? id : kind === "vehicle" ? vehicles.get(id)?.routeId ?? null : ($("route-filter").value || null));
  $("details").hidden = false;
  document.body.classList.add("panel-open");
  $("details-body").innerHTML = "<p>loading…</p>";
  if (kind === "stop") {
    const s = stopsById.get(id);
    if (s && !map.getBounds().contains([s.lat, s.lon])) map.panTo([s.lat, s.lon]);
  }
  try {
    await subscribe(kind, id);
  } catch (err) {
    // The hub refuses an unknown id (a stale shared link): said in the panel.
    selected.data = { error: String(err.message ?? err).replace(/^.*HubException: /, "") };
    renderSelected();
    return;
  }
  try {
    selected.data = kind === "vehicle"
      ? await api(`/api/vehicles/${id}`)
      : kind === "route"
        ? { route: routesById.get(id) ?? { id } }
        : await api(`/api/stops/${encodeURIComponent(id)}/arrivals`);
    if (kind === "vehicle") {
      addToTrail(selected.data.vehicle);
      highlightRoute(selected.data.vehicle.routeId);
      const v = selected.data.vehicle;
      if (!map.getBounds().contains([v.latitude, v.longitude])) map.panTo([v.latitude, v.longitude]);
    }
    selected.fetchedAt = Date.now();
    if (kind === "stop" && selected.data.now) clockSkew = new Date(selected.data.now).getTime() - selected.fetchedAt;
    for (const p of (kind === "vehicle" ? selected.data.nextStops : [])) {
      predictions.set(`${p.stopId}|${p.tripId}`, p);
      withdrawn.delete(`${p.stopId}|${p.tripId}`);
    }
    if (kind === "stop") for (const a of selected.data.arrivals) withdrawn.delete(`${id}|${a.tripId}`);
  } catch (err) {
    selected.data = { error: String(err) };
  }
  renderSelected();
}

// The selected stop's list (scheduled trips and their names) is fetched again every 30 s: the window moves with the
// clock, and trips first heard of through pushed predictions get their headsigns.
async function refreshStop(force = false) {
  const s = selected;
  if (s?.kind !== "stop" || !s.data || s.refreshing || (!force && Date.now() - s.fetchedAt < 30000)) return;
  s.refreshing = true;
  try {
    const data = await api(`/api/stops/${encodeURIComponent(s.id)}/arrivals`);
    if (selected === s) {
      s.data = data;
      if (data.now) clockSkew = new Date(data.now).getTime() - Date.now();
      for (const a of data.arrivals) if (a.predicted) withdrawn.delete(`${s.id}|${a.tripId}`);
    }
  } catch (err) {
    console.warn("refreshing the stop's arrivals failed", err); // the last list stays; tried again in 30 s
  } finally {
    s.fetchedAt = Date.now();
    s.refreshing = false;
  }
}

$("details-close").addEventListener("click", async () => {
  if (selected) await unsubscribe(selected.kind, selected.id).catch(console.error);
  if (selected?.kind === "route") { $("route-filter").value = ""; vehicles.filterRoute(null); }
  selected = null;
  setHash(null);
  vehicles.highlight(null);
  markStop(null);
  clearTrail();
  highlightRoute($("route-filter").value || null);
  $("details").hidden = true;
  document.body.classList.remove("panel-open");
});

function renderSelected() {
  if (!selected) return;
  if (selected.data?.error) { $("details-body").innerHTML = `<p class="error">${esc(selected.data.error)}</p>`; return; }
  if (selected.kind === "vehicle") renderVehicle(vehicles.get(selected.id) ?? selected.data?.vehicle);
  else if (selected.kind === "route") renderRoute();
  else renderStop();
}

function renderVehicle(v) {
  if (!v) return;
  // By vehicle: an HFP vehicle's trip is its journey key, its predictions name the GTFS trip tracking matched. The trip
  // it is on in stop order, then its block's next trip (marked), as /api/vehicles/{id} lists them.
  const next = [...predictions.values()]
    .filter((p) => p.vehicleId === v.id)
    .sort((a, b) => (a.nextTrip - b.nextTrip) || (a.stopSequence - b.stopSequence)).slice(0, 8);
  $("details-body").innerHTML = `
    <h2>Vehicle ${esc(v.id)}</h2>
    <dl>
      <dt>route</dt><dd>${routeBadge(v.routeId)} ${esc(routesById.get(v.routeId)?.longName ?? "")}</dd>
      <dt>trip</dt><dd>${esc(v.tripId ?? "–")}</dd>
      <dt>delay</dt><dd><span class="dot" style="background:${delayColour(v.delaySeconds)}"></span>${fmtDelay(v.delaySeconds)}</dd>
      <dt>speed</dt><dd>${v.speed == null ? "–" : `${(v.speed * 3.6).toFixed(0)} km/h`}</dd>
      <dt>updated</dt><dd>${new Date(v.updated).toLocaleTimeString()}</dd>
    </dl>
    <h3>Next stops</h3>
    ${next.length ? `<ul class="arrivals" id="vehicle-next-stops">${next.map((p) => `<li data-trip="${esc(p.tripId)}" data-sequence="${p.stopSequence}"${p.nextTrip ? " class=\"next-trip\"" : ""}><span>${p.nextTrip ? "<small class=\"tag\">next trip</small> " : ""}${esc(stopName(p.stopId))}</span>
      <span class="time">${fmtTime(p.predicted)}${p.low !== p.high ? ` <small>(${fmtTime(p.low)}–${fmtTime(p.high)})</small>` : ""}</span></li>`).join("")}</ul>`
      : `<p class="muted">${v.routeId ? "no predictions yet" : "not on a trip"}</p>`}`;
}

function routeBadge(routeId) {
  if (!routeId) return "–";
  const r = routesById.get(routeId);
  const bg = r?.color ? `#${r.color}` : colourOf(routeId);
  const fg = r?.textColor ? `#${r.textColor}` : "#ffffff";
  return `<span class="route-badge" style="background:${bg};color:${fg}">${esc(r?.shortName ?? routeId)}</span>`;
}

// A route's panel: its delay and headways along the day (charts, refreshed every 30 s) and its vehicles now (the
// route is drawn over the others on the map).
function renderRoute() {
  const r = selected.data?.route ?? { id: selected.id };
  const list = vehicles.all().filter((v) => v.routeId === r.id).sort((a, b) => (b.delaySeconds ?? -1e9) - (a.delaySeconds ?? -1e9));
  if (!$("route-panel") || $("route-panel").dataset.route !== r.id) {
    $("details-body").innerHTML = `
      <div id="route-panel" data-route="${esc(r.id)}">
        <h2>${routeBadge(r.id)} ${esc(r.longName ?? "")}</h2>
        <h3>Delay along the day (min)</h3><div id="route-delay-chart" class="chart"></div>
        <h3>Headway (min): actual and scheduled</h3><div id="route-headway-chart" class="chart"></div>
        <p class="muted" id="route-count"></p>
        <ul class="arrivals" id="route-vehicles"></ul>
      </div>`;
    selected.charts = null;
    loadRouteHistory().catch(console.error);
  }
  $("route-count").textContent = `route ${r.id}: ${list.length} vehicle${list.length === 1 ? "" : "s"} on the map`;
  $("route-vehicles").innerHTML = list.map((v) => `<li data-vehicle="${esc(v.id)}"><a href="#vehicle=${encodeURIComponent(v.id)}">${esc(v.id)}</a>
      <span class="time"><span class="dot" style="background:${delayColour(v.delaySeconds)}"></span>${fmtDelay(v.delaySeconds)}</span></li>`).join("");
}

const RouteBucketSeconds = 300;
async function loadRouteHistory() {
  const s = selected;
  if (s?.kind !== "route") return;
  const h = await api(`/api/routes/${encodeURIComponent(s.id)}/history`);
  if (selected !== s || !$("route-delay-chart")) return;
  s.historyAt = Date.now();
  const x = h.points.map((p) => new Date(p.time).getTime() / 1000);
  const mins = (v) => (v == null ? null : v / 60);
  const delay = [x, h.points.map((p) => mins(p.meanDelaySeconds))];
  const headway = [x, h.points.map((p) => mins(p.meanHeadwaySeconds)), h.points.map((p) => mins(p.scheduledHeadwaySeconds))];
  const colour = `#${routesById.get(s.id)?.color ?? "1f77b4"}`;
  const width = Math.max(200, $("details-body").clientWidth - 8);
  // The x range from the data (uPlot would stretch a single bucket over years): at least the last hour.
  const now = Date.now() / 1000;
  const hi = x.length ? x[x.length - 1] + RouteBucketSeconds : now;
  const lo = Math.min(x.length ? x[0] : hi, hi - 3600);
  const opts = (series) => ({ width, height: 120, legend: { show: false }, scales: { x: { time: true, auto: false, range: [lo, hi] } }, axes: [{ size: 30 }, { size: 36 }], series });
  if (s.charts) {
    s.charts.delay.setData(delay, false);
    s.charts.headway.setData(headway, false);
    for (const c of [s.charts.delay, s.charts.headway]) { c.setScale("x", { min: lo, max: hi }); }
  } else {
    s.charts = {
      delay: new uPlot(opts([{}, { label: "delay", stroke: colour, width: 2, spanGaps: true }]), delay, $("route-delay-chart")),
      headway: new uPlot(opts([{}, { label: "actual", stroke: colour, width: 2, spanGaps: true },
        { label: "scheduled", stroke: "#6b7280", dash: [4, 4], width: 1, spanGaps: true }]), headway, $("route-headway-chart")),
    };
  }
  if (!h.points.length) $("route-delay-chart").dataset.empty = "no arrivals yet";
}

function renderStop() {
  const d = selected.data;
  if (!d) return;
  const now = Date.now();
  // A withdrawn prediction's row goes when its vehicle has reached the stop (or left the trip); otherwise the trip
  // falls back to its scheduled time.
  const rows = new Map();
  for (const a of d.arrivals) {
    const why = withdrawn.get(`${selected.id}|${a.tripId}`);
    if (why === "passed" || why === "trip-ended") continue;
    rows.set(a.tripId, why ? { ...a, predicted: null, low: null, high: null, vehicleId: null } : { ...a });
  }
  for (const p of predictions.values()) {
    if (p.stopId !== selected.id) continue;
    const row = rows.get(p.tripId) ?? { tripId: p.tripId, routeId: p.routeId, scheduled: p.scheduled };
    Object.assign(row, { predicted: p.predicted, low: p.low, high: p.high, vehicleId: p.vehicleId });
    rows.set(p.tripId, row);
  }
  const list = [...rows.values()]
    .map((r) => ({ ...r, at: new Date(r.predicted ?? r.scheduled).getTime() }))
    .filter((r) => r.at >= now - 60000)
    .sort((a, b) => a.at - b.at)
    .slice(0, 15);
  $("details-body").innerHTML = `
    <h2>Stop ${esc(d.stop.name ?? selected.id)}</h2>
    <p class="muted">${esc(selected.id)}</p>
    <ul class="arrivals" id="stop-arrivals">
      ${list.map((r) => `<li data-trip="${esc(r.tripId)}" data-at="${r.at}"${r.vehicleId ? ` data-vehicle="${esc(r.vehicleId)}"` : ""}>
        <span>${routeBadge(r.routeId)} ${esc(r.headsign ?? "")}</span>
        <span class="time">${r.predicted ? `<b>${countdown(r.predicted, now)}</b> ${range(r, now)}` : `<b>${countdown(r.scheduled, now)}</b> <small>scheduled</small>`}
        ${r.scheduled ? `<small class="muted">sched ${fmtTime(r.scheduled)}</small>` : ""}</span></li>`).join("")}
    </ul>
    ${list.length ? "" : "<p class=\"muted\">no arrivals in the next hour</p>"}`;
}

// Alerts, newest first, filtered by route and kind (the kind is the alert id's prefix: "SevereDelay:0018/00426").
function alertKind(a) { return a.id.split(":")[0]; }
function renderAlerts() {
  const route = $("alert-route").value;
  const kind = $("alert-kind").value;
  const kinds = new Set([...alerts.values()].map(alertKind));
  const kindSel = $("alert-kind");
  for (const k of [...kinds].sort()) {
    if (![...kindSel.options].some((o) => o.value === k)) {
      const o = document.createElement("option");
      o.value = k;
      o.textContent = k.replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase();
      kindSel.append(o);
    }
  }
  const list = [...alerts.values()]
    .filter((a) => (!route || a.routeId === route) && (!kind || alertKind(a) === kind))
    .sort((a, b) => b.time.localeCompare(a.time)).slice(0, 50);
  $("alert-count").textContent = String(alerts.size);
  $("alert-list").innerHTML = list.map((a) => `<li class="${esc(a.severity)}"><time datetime="${esc(a.time)}">${fmtTime(a.time)}</time> ${a.routeId ? routeBadge(a.routeId) + " " : ""}${esc(a.text)}</li>`).join("")
    || "<li class=\"muted\">none</li>";
}
$("alert-route").addEventListener("change", renderAlerts);
$("alert-kind").addEventListener("change", renderAlerts);

// ---- search: stops (name, code), routes (short and long name), vehicles; arrows, Enter and Escape -------------
const searchBox = $("search");
const searchList = $("search-results");
let searchHits = [];
let searchActive = -1;
function searchFor(text) {
  const q = text.trim().toLowerCase();
  if (!q) return [];
  const hits = [];
  for (const r of routesById.values()) {
    const short = (r.shortName ?? "").toLowerCase();
    if (short === q || short.startsWith(q) || r.id.toLowerCase() === q || (r.longName ?? "").toLowerCase().includes(q)) {
      hits.push({ kind: "route", id: r.id, label: `${r.shortName ?? r.id}${r.longName ? ` – ${r.longName}` : ""}`, rank: short === q ? 0 : 1 });
    }
  }
  for (const s of stops) {
    const name = (s.name ?? "").toLowerCase();
    if (name.includes(q) || (s.code ?? "").toLowerCase() === q || s.id.toLowerCase() === q) {
      hits.push({ kind: "stop", id: s.id, label: `${s.name}${s.code ? ` (${s.code})` : ""}`, rank: name.startsWith(q) || s.code?.toLowerCase() === q ? 0 : 2 });
    }
  }
  for (const v of vehicles.all()) {
    if (v.id.toLowerCase().includes(q)) hits.push({ kind: "vehicle", id: v.id, label: `${v.id}${v.routeId ? ` on ${routesById.get(v.routeId)?.shortName ?? v.routeId}` : ""}`, rank: 1 });
  }
  return hits.sort((a, b) => a.rank - b.rank || a.label.localeCompare(b.label)).slice(0, 12);
}
function renderSearch() {
  searchList.hidden = searchHits.length === 0;
  searchBox.setAttribute("aria-expanded", String(searchHits.length > 0));
  searchList.innerHTML = searchHits.map((h, i) =>
    `<li role="option" id="search-hit-${i}" data-index="${i}" aria-selected="${i === searchActive}" class="${i === searchActive ? "active" : ""}">
      <small class="tag">${h.kind}</small> ${esc(h.label)}</li>`).join("");
  if (searchActive >= 0) searchBox.setAttribute("aria-activedescendant", `search-hit-${searchActive}`);
  else searchBox.removeAttribute("aria-activedescendant");
}
function chooseHit(i) {
  const h = searchHits[i];
  if (!h) return;
  searchHits = [];
  searchActive = -1;
  searchBox.value = "";
  renderSearch();
  select(h.kind, h.id).catch(console.error);
}
searchBox.addEventListener("input", () => { searchHits = searchFor(searchBox.value); searchActive = searchHits.length ? 0 : -1; renderSearch(); });
searchBox.addEventListener("keydown", (e) => {
  if (e.key === "ArrowDown" && searchHits.length) { searchActive = (searchActive + 1) % searchHits.length; renderSearch(); e.preventDefault(); }
  else if (e.key === "ArrowUp" && searchHits.length) { searchActive = (searchActive - 1 + searchHits.length) % searchHits.length; renderSearch(); e.preventDefault(); }
  else if (e.key === "Enter") { chooseHit(searchActive >= 0 ? searchActive : 0); e.preventDefault(); }
  else if (e.key === "Escape") { searchHits = []; searchActive = -1; renderSearch(); }
});
searchList.addEventListener("mousedown", (e) => {
  const li = e.target.closest("li[data-index]");
  if (li) { e.preventDefault(); chooseHit(Number(li.dataset.index)); }
});
searchBox.addEventListener("blur", () => setTimeout(() => { searchHits = []; renderSearch(); }, 150));

// ---- route filter, status, replay --------------------------------------------------------------------------
async function loadRoutes() {
  const routes = await api("/api/routes");
  const sel = $("route-filter");
  for (const r of routes) {
    routesById.set(r.id, r);
    colourOf(r.id, r.color);
    const label = `${r.shortName ?? r.id}${r.longName ? ` – ${r.longName}` : ""}`;
    for (const target of [sel, $("alert-route")]) {
      const o = document.createElement("option");
      o.value = r.id;
      o.textContent = label;
      target.append(o);
    }
  }
  sel.addEventListener("change", () => {
    const route = sel.value || null;
    if (route) select("route", route).catch(console.error);
    else { vehicles.filterRoute(null); highlightRoute(null); if (selected?.kind === "route") $("details-close").click(); }
  });
}

async function pollStatus() {
  try {
    const h = await api("/api/health");
    $("events-rate").textContent = h.eventsPerSecond.toFixed(0);
    $("lag").textContent = humanSeconds(h.lagSeconds);
  } catch { /* shown by the connection state */ }
}

let replayState = null;
async function pollReplay() {
  try {
    replayState = await api("/api/replay");
  } catch {
    $("replay").hidden = true;
    return;
  }
  $("replay").hidden = false;
  $("replay-toggle").textContent = replayState.playing ? "Pause" : "Play";
  const speeds = $("replay-speed");
  if (![...speeds.options].some((o) => o.value === String(replayState.speed))) {
    // A speed given on the command line that the menu lacks (e.g. --speed 20): add it.
    const o = document.createElement("option");
    o.value = String(replayState.speed);
    o.textContent = `${replayState.speed}×`;
    speeds.append(o);
  }
  speeds.value = String(replayState.speed);
  if (!dragging) $("replay-position").value = String(Math.round(replayState.position * 1000));
  $("replay-time").textContent = replayState.recordedTime ? new Date(replayState.recordedTime).toLocaleTimeString() : "";
}
let dragging = false;
const replay = (body) => api("/api/replay", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })
  .then(pollReplay).catch(console.error);
$("replay-toggle").addEventListener("click", () => replay({ playing: !replayState?.playing }));
$("replay-speed").addEventListener("change", (e) => replay({ speed: Number(e.target.value) }));
$("replay-position").addEventListener("input", () => { dragging = true; });
$("replay-position").addEventListener("change", (e) => { dragging = false; replay({ position: Number(e.target.value) / 1000 }); });

// ---- helpers -----------------------------------------------------------------------------------------------
// A lag or age in the unit a person reads it in: "0.4 s", "12 s", "3 min", "2 h 5 min", "4 days".
function humanSeconds(s) {
  if (s == null || !Number.isFinite(s)) return "–";
  const a = Math.abs(s);
  if (a < 10) return `${s.toFixed(1)} s`;
  if (a < 90) return `${Math.round(s)} s`;
  if (a < 5400) return `${Math.round(s / 60)} min`;
  if (a < 172800) return `${Math.floor(a / 3600)} h ${Math.round((a % 3600) / 60)} min`;
  return `${Math.round(a / 86400)} days`;
}
function esc(s) { return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;" }[c])); }
function fmtTime(t) { return t ? new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : "–"; }
function fmtDelay(s) { if (s == null) return "unknown"; const m = Math.round(Math.abs(s) / 60); return s >= 0 ? `${m} min late` : `${m} min early`; }
function stopName(id) { return stops.find((s) => s.id === id)?.name ?? id; }
function range(r, now) {
  return r.low && r.high && r.low !== r.high ? `<small>(${countdown(r.low, now)}–${countdown(r.high, now)})</small>` : "<small>predicted</small>";
}
// Countdowns are relative to the pipeline's clock (a replay of another day counts down in that day's time).
let clockSkew = 0;
function countdown(t, now) {
  if (!t) return "–";
  const s = Math.round((new Date(t).getTime() - (now + clockSkew)) / 1000);
  if (s <= 30) return "now";
  return s < 3600 ? `${Math.round(s / 60)} min` : fmtTime(t);
}

// ---- start -------------------------------------------------------------------------------------------------
async function start() {
  let config;
  try {
    config = await api("/api/config");
  } catch (err) {
    if (err.status === 401) { showSignIn(Boolean(apiKey)); setConn("sign in needed"); return; }
    throw err;
  }
  await Promise.all([loadBaseMap(config).catch(console.error), loadRoutes().catch(console.error)]);
  for (const a of await api("/api/alerts").catch(() => [])) alerts.set(a.id, a);
  renderAlerts();
  setConn("connecting");
  for (;;) {
    try { await conn.start(); break; } catch (err) { console.warn(err); setConn("retrying"); await new Promise((r) => setTimeout(r, 2000)); }
  }
  setConn("connected");
  await followView();
  await resubscribe();
  openFromHash();
  pollStatus();
  setInterval(pollStatus, 2000);
  // Replay controls only when something replays (live sources have none: no polling, no 404s).
  if (config.replay) { pollReplay(); setInterval(pollReplay, 1000); }
  setInterval(() => {
    if (selected?.kind !== "route") return;
    renderRoute();
    if (Date.now() - (selected.historyAt ?? 0) > 30000) loadRouteHistory().catch(console.error);
  }, 2000);
  setInterval(() => {
    if (selected?.kind === "stop") { renderStop(); refreshStop(); }
    $("clock").textContent = new Date().toLocaleTimeString();
  }, 1000);
}

// Debug hooks for tests and the console.
window.fleet = { map, vehicles, select, subscriptions, conn, now: () => Date.now() + clockSkew, routeColours, shapes: () => shapesLayer, trail: () => trail };
start().catch((err) => { console.error(err); setConn(`error: ${err.message}`); });
