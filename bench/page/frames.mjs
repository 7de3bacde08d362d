// Measures the page's frame times in headless Chromium (DevTools protocol over --remote-debugging-pipe; no packages):
// opens URL, waits until at least MIN vehicles are on the map, then records requestAnimationFrame intervals for
// SECONDS and prints one JSON object (frame-time percentiles, and the share of the window the main thread was busy, in
// script, layout and style, from the DevTools Performance metrics). Usage: node frames.mjs URL [MIN=2000] [SECONDS=10]
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [url, min = "2000", seconds = "10"] = process.argv.slice(2);
const chrome = spawn("/usr/bin/chromium", [
  "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--window-size=1280,800", "--remote-debugging-pipe",
  "--user-data-dir=" + mkdtempSync(join(tmpdir(), "fleet-frames-")), "about:blank",
], { stdio: ["ignore", "ignore", "ignore", "pipe", "pipe"] });
const toChrome = chrome.stdio[3], fromChrome = chrome.stdio[4];
let next = 0, buffer = "";
const pending = new Map();
fromChrome.on("data", (d) => {
  buffer += d.toString();
  for (let i; (i = buffer.indexOf("\0")) >= 0; buffer = buffer.slice(i + 1)) {
    const m = JSON.parse(buffer.slice(0, i));
    if (m.id && pending.has(m.id)) { pending.get(m.id)(m); pending.delete(m.id); }
  }
});
const send = (method, params = {}, sessionId) => new Promise((resolve, reject) => {
  const id = ++next;
  pending.set(id, (m) => (m.error ? reject(new Error(method + ": " + m.error.message)) : resolve(m.result)));
  toChrome.write(JSON.stringify(sessionId ? { id, method, params, sessionId } : { id, method, params }) + "\0");
});
const evaluate = async (expression, sessionId) =>
  (await send("Runtime.evaluate", { expression, awaitPromise: true, returnByValue: true }, sessionId)).result.value;

try {
  const { targetId } = await send("Target.createTarget", { url: "about:blank" });
  const { sessionId } = await send("Target.attachToTarget", { targetId, flatten: true });
  await send("Page.navigate", { url }, sessionId);
  const deadline = Date.now() + 90_000;
  let vehicles = 0;
  while ((vehicles = (await evaluate("window.fleet?.vehicles?._items?.size ?? 0", sessionId))) < Number(min)) {
    if (Date.now() > deadline) throw new Error(`only ${vehicles} vehicles on the map after 90 s`);
    await new Promise((r) => setTimeout(r, 500));
  }
  await send("Performance.enable", {}, sessionId);
  const metrics = async () => Object.fromEntries((await send("Performance.getMetrics", {}, sessionId)).metrics.map((m) => [m.name, m.value]));
  const m0 = await metrics();
  const frames = JSON.parse(await evaluate(`new Promise((done) => {
    const gaps = []; let last = performance.now(); const end = last + ${Number(seconds) * 1000};
    const tick = (now) => { gaps.push(now - last); last = now; if (now < end) requestAnimationFrame(tick); else done(JSON.stringify(gaps)); };
    requestAnimationFrame(tick);
  })`, sessionId));
  const m1 = await metrics();
  const cpu = (k) => +(((m1[k] - m0[k]) / (m1.Timestamp - m0.Timestamp)) * 100).toFixed(1);
  const sorted = [...frames].sort((a, b) => a - b);
  const pct = (p) => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
  const total = frames.reduce((a, b) => a + b, 0);
  console.log(JSON.stringify({
    vehicles: await evaluate("window.fleet.vehicles._items.size", sessionId),
    frames: frames.length, fps: +(frames.length / (total / 1000)).toFixed(1),
    p50Ms: +pct(0.5).toFixed(1), p95Ms: +pct(0.95).toFixed(1), p99Ms: +pct(0.99).toFixed(1), maxMs: +sorted.at(-1).toFixed(1),
    over50Ms: frames.filter((g) => g > 50).length,
    mainThreadBusyPct: cpu("TaskDuration"), scriptPct: cpu("ScriptDuration"), layoutPct: cpu("LayoutDuration"), stylePct: cpu("RecalcStyleDuration"),
  }));
} finally {
  chrome.kill();
}
