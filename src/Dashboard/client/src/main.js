// The Fleet live map. Data: GET /api/config, /api/network (GeoJSON base map), /api/routes, /api/alerts,
// /api/health, /api/vehicles/{id}, /api/stops/{id}/arrivals, /api/replay; pushes from the SignalR hub /hubs/live
// (vehicles, removed, predictions, alerts) after Subscribe("bbox" | "stop" | "vehicle" | "route", id).
import "leaflet/dist/leaflet.css";
import "./style.css";
import L from "leaflet";
import * as signalR from "@microsoft/signalr";
import { VehicleLayer, delayColour } from "./vehicles.js";

const params = new URLSearchParams(location.search);
const apiKey = params.get("key") ?? sessionStorage.getItem("fleet.key") ?? "";
if (apiKey) sessionStorage.setItem("fleet.key", apiKey);

const $ = (id) => document.getElementById(id);
const headers = apiKey ? { "X-Api-Key": apiKey } : {};

async function api(path, init = {}) {
  const res = await fetch(path, { ...init, headers: { ...headers, ...(init.headers ?? {}) } });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return res.status === 204 ? null : res.json();
}

// ---- map ---------------------------------------------------------------------------------------------------
const map = L.map("map", { preferCanvas: true, zoomControl: true, attributionControl: false, worldCopyJump: false });
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

const stops = []; // { id, name, lat, lon }
let shapesLayer = null;
let stopsLayer = null;
const routeColours = new Map();

async function loadBaseMap(config) {
  if (config.tileUrl) L.tileLayer(config.tileUrl, { maxZoom: 19 }).addTo(map);
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
    stops.push({ id: f.properties.id, name: f.properties.name, lat, lon });
    L.circleMarker([lat, lon], {
      renderer: baseRenderer, radius: 2.5, weight: 1, color: "#5b6573", fillColor: "#ffffff", fillOpacity: 1, interactive: false,
    }).addTo(stopsLayer);
  }
  const bounds = shapesLayer.getBounds();
  if (bounds.isValid()) map.fitBounds(bounds, { padding: [10, 10] });
  else if (stops.length) map.fitBounds(L.latLngBounds(stops.map((s) => [s.lat, s.lon])), { padding: [10, 10] });
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
  if (selected?.kind === "vehicle") {
    const v = batch.find((b) => b.id === selected.id);
    if (v) renderVehicle(v);
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
let selected = null; // { kind: "vehicle"|"stop", id, data }

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
  if (selected) await unsubscribe(selected.kind, selected.id);
  selected = { kind, id, data: null };
  vehicles.highlight(kind === "vehicle" ? id : null);
  $("details").hidden = false;
  $("details-body").innerHTML = "<p>loading…</p>";
  await subscribe(kind, id);
  try {
    selected.data = kind === "vehicle"
      ? await api(`/api/vehicles/${id}`)
      : await api(`/api/stops/${encodeURIComponent(id)}/arrivals`);
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
  if (selected) await unsubscribe(selected.kind, selected.id);
  selected = null;
  vehicles.highlight(null);
  $("details").hidden = true;
});

function renderSelected() {
  if (!selected) return;
  if (selected.data?.error) { $("details-body").innerHTML = `<p class="error">${esc(selected.data.error)}</p>`; return; }
  if (selected.kind === "vehicle") renderVehicle(vehicles.get(selected.id) ?? selected.data?.vehicle);
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
      <dt>route</dt><dd>${esc(v.routeId ?? "–")}</dd>
      <dt>trip</dt><dd>${esc(v.tripId ?? "–")}</dd>
      <dt>delay</dt><dd><span class="dot" style="background:${delayColour(v.delaySeconds)}"></span>${fmtDelay(v.delaySeconds)}</dd>
      <dt>speed</dt><dd>${v.speed == null ? "–" : `${(v.speed * 3.6).toFixed(0)} km/h`}</dd>
      <dt>updated</dt><dd>${new Date(v.updated).toLocaleTimeString()}</dd>
    </dl>
    <h3>Next stops</h3>
    ${next.length ? `<ul class="arrivals" id="vehicle-next-stops">${next.map((p) => `<li data-trip="${esc(p.tripId)}" data-sequence="${p.stopSequence}"${p.nextTrip ? " class=\"next-trip\"" : ""}><span>${p.nextTrip ? "<small class=\"tag\">next trip</small> " : ""}${esc(stopName(p.stopId))}</span>
      <span class="time">${fmtTime(p.predicted)}${p.low !== p.high ? ` <small>(${fmtTime(p.low)}–${fmtTime(p.high)})</small>` : ""}</span></li>`).join("")}</ul>`
      : "<p class=\"muted\">no predictions yet</p>"}`;
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
        <span><b>${esc(r.routeId ?? "")}</b> ${esc(r.headsign ?? "")}</span>
        <span class="time">${r.predicted ? `<b>${countdown(r.predicted, now)}</b> ${range(r, now)}` : `<b>${countdown(r.scheduled, now)}</b> <small>scheduled</small>`}
        ${r.scheduled ? `<small class="muted">sched ${fmtTime(r.scheduled)}</small>` : ""}</span></li>`).join("")}
    </ul>
    ${list.length ? "" : "<p class=\"muted\">no arrivals in the next hour</p>"}`;
}

function renderAlerts() {
  const list = [...alerts.values()].sort((a, b) => b.time.localeCompare(a.time)).slice(0, 50);
  $("alert-count").textContent = String(alerts.size);
  $("alert-list").innerHTML = list.map((a) => `<li class="${esc(a.severity)}"><time>${fmtTime(a.time)}</time> ${esc(a.text)}</li>`).join("")
    || "<li class=\"muted\">none</li>";
}

// ---- route filter, status, replay --------------------------------------------------------------------------
async function loadRoutes() {
  const routes = await api("/api/routes");
  const sel = $("route-filter");
  for (const r of routes) {
    colourOf(r.id, r.color);
    const o = document.createElement("option");
    o.value = r.id;
    o.textContent = `${r.shortName ?? r.id}${r.longName ? ` – ${r.longName}` : ""}`;
    sel.append(o);
  }
  sel.addEventListener("change", () => {
    const route = sel.value || null;
    vehicles.filterRoute(route);
    shapesLayer?.setStyle((f) => ({
      color: colourOf(f.properties.routeId), weight: route && f.properties.routeId === route ? 4 : 2,
      opacity: route && f.properties.routeId !== route ? 0.15 : 0.55,
    }));
  });
}

async function pollStatus() {
  try {
    const h = await api("/api/health");
    $("events-rate").textContent = h.eventsPerSecond.toFixed(0);
    $("lag").textContent = `${h.lagSeconds.toFixed(1)} s`;
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
  const config = await api("/api/config");
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
  pollStatus(); pollReplay();
  setInterval(pollStatus, 2000);
  setInterval(pollReplay, 1000);
  setInterval(() => {
    if (selected?.kind === "stop") { renderStop(); refreshStop(); }
    $("clock").textContent = new Date().toLocaleTimeString();
  }, 1000);
}

// Debug hooks for tests and the console.
window.fleet = { map, vehicles, select, subscriptions, conn, now: () => Date.now() + clockSkew };
start().catch((err) => { console.error(err); setConn(`error: ${err.message}`); });
