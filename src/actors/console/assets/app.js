// daisi console. Every value shown comes from monitored hosts (command
// lines, paths, names): it is put in the page with textContent, never as
// HTML. No framework, no network access but this server.
"use strict";

const REFRESH_MS = 2000;
const state = { filters: { host: "", module: "", severity: "", since: "", tactic: "", technique: "" }, timer: null };

// ---- small DOM helpers (text only) ---------------------------------------
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k === "onclick") e.addEventListener("click", v);
    else if (k === "onchange") e.addEventListener("change", v);
    else if (k === "onsubmit") e.addEventListener("submit", v);
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}
const main = () => document.getElementById("main");
function show(...nodes) { main().replaceChildren(...nodes); }

function when(ns) {
  if (!ns) return "";
  return new Date(ns / 1e6).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}
function severity(s) { return el("span", { class: "sev " + s }, s); }

// ---- the API ----------------------------------------------------------
class NeedToken extends Error {}
async function api(path) {
  const headers = {};
  const token = sessionStorage.getItem("daisi-token");
  if (token) headers["Authorization"] = "Bearer " + token;
  const r = await fetch(path, { headers });
  if (r.status === 401) throw new NeedToken();
  if (!r.ok) throw new Error(path + ": HTTP " + r.status);
  return r.json();
}

function tokenForm() {
  const input = el("input", { type: "password", id: "token", autocomplete: "off", size: "40" });
  return el("form", {
    class: "token", id: "token-form",
    onsubmit: (ev) => { ev.preventDefault(); sessionStorage.setItem("daisi-token", input.value); route(); },
  }, el("h1", {}, "This console needs its token"),
     el("p", { class: "muted" }, "The token is [console] token in the node's configuration."),
     input, " ", el("button", { type: "submit" }, "Open"));
}

function live(ok) {
  const l = document.getElementById("live");
  l.textContent = ok ? "live" : "not updating";
  l.className = ok ? "live" : "live stale";
}

// ---- alerts -----------------------------------------------------------
function query() {
  const f = state.filters, q = new URLSearchParams();
  if (f.host) q.set("host", f.host);
  if (f.module) q.set("module", f.module);
  if (f.severity) q.set("severity", f.severity);
  if (f.tactic) q.set("tactic", f.tactic);
  if (f.technique) q.set("technique", f.technique);
  if (f.since) q.set("since_ns", String(Date.now() * 1e6 - Number(f.since) * 1e9));
  q.set("limit", "200");
  return "/api/alerts?" + q.toString();
}

function select(id, label, value, options, onchange) {
  const s = el("select", { id, onchange });
  for (const [v, text] of options) {
    const o = el("option", { value: v }, text);
    if (v === value) o.selected = true;
    s.append(o);
  }
  return el("label", {}, label, s);
}

async function alertsPage() {
  const data = await api(query());
  const f = state.filters;
  const set = (key) => (ev) => { f[key] = ev.target.value; alertsPage().catch(fail); };
  const filters = el("div", { class: "filters" },
    select("f-host", "host", f.host, [["", "all"], ...data.hosts.map((h) => [h, h])], set("host")),
    select("f-module", "module", f.module, [["", "all"], ...data.modules.map((m) => [m, m])], set("module")),
    select("f-severity", "severity at least", f.severity,
      [["", "any"], ["low", "low"], ["medium", "medium"], ["high", "high"], ["critical", "critical"]], set("severity")),
    select("f-since", "time", f.since,
      [["", "any time"], ["900", "last 15 min"], ["3600", "last hour"], ["86400", "last day"]], set("since")),
    select("f-tactic", "ATT&CK tactic", f.tactic, [["", "any"], ...(data.tactics || []).map((t) => [t, t])], set("tactic")),
    el("label", {}, "ATT&CK technique", el("input", { id: "f-technique", value: f.technique, placeholder: "T1003",
      size: "9", onchange: set("technique") })));
  const attack = (a) => (a.threat && a.threat.technique && a.threat.technique.id || []).join(" ");
  const rows = data.alerts.map((a) => el("tr", {
    class: "row alert-row", "data-id": a.id, onclick: () => { location.hash = "#/alert/" + encodeURIComponent(a.id); },
  }, el("td", { class: "mono" }, when(a.ts_ns)), el("td", {}, severity(a.severity)),
     el("td", {}, a.host), el("td", {}, a.module), el("td", { class: "mono attack" }, attack(a)),
     el("td", {}, a.summary, a.count > 1 ? el("span", { class: "muted" }, " ×" + a.count) : null)));
  const table = el("table", { id: "alerts" },
    el("thead", {}, el("tr", {}, ...["time (UTC)", "severity", "host", "module", "ATT&CK", "summary"].map((h) => el("th", {}, h)))),
    el("tbody", {}, ...rows));
  show(el("h1", {}, "Alerts and incidents"), filters,
    data.alerts.length ? table : el("p", { class: "muted", id: "no-alerts" }, "No alert matches."));
  live(true);
}

// ---- one alert or incident ----------------------------------------------
function fields(pairs) {
  const dl = el("dl", { class: "fields" });
  for (const [k, v] of pairs) {
    if (v === undefined || v === null || v === "") continue;
    dl.append(el("dt", {}, k), el("dd", { class: "mono" }, typeof v === "object" ? JSON.stringify(v) : v));
  }
  return dl;
}

function processBox(p) {
  const found = (p.findings || []).length > 0;
  const box = el("div", { class: "proc" + (found ? " found" : ""), "data-pid": String(p.pid) },
    el("div", {}, el("strong", { class: "proc-name" }, p.name || "?"), " pid " + p.pid,
      p.uid !== undefined ? " uid " + p.uid + (p.user_name ? " (" + p.user_name + ")" : "") : ""),
    p.executable ? el("div", { class: "mono muted" }, p.executable) : null,
    p.args && p.args.length ? el("div", { class: "mono args" }, p.args.join(" ")) : null);
  for (const f of p.findings || []) {
    box.append(el("div", { class: "finding" }, severity(f.severity), " ", f.summary,
      f.baseline ? el("div", { class: "mono muted" }, JSON.stringify(f.baseline.behaviour)) : null));
  }
  return box;
}

function tree(members) {
  // Parents come before children: nest each under its parent.
  const items = new Map();
  const root = el("ul", { class: "tree", id: "tree" });
  for (const m of members) {
    const li = el("li", {}, processBox(m));
    items.set(m.pid, li);
    const parent = items.get(m.ppid);
    if (parent) {
      let ul = parent.querySelector(":scope > ul");
      if (!ul) { ul = el("ul"); parent.append(ul); }
      ul.append(li);
    } else root.append(li);
  }
  return root;
}

async function alertPage(id) {
  const { alert: a, related } = await api("/api/alerts/" + encodeURIComponent(id));
  const parts = [el("p", {}, el("a", { href: "#/" }, "← alerts")),
    el("h1", { id: "summary" }, a.summary),
    fields([["severity", a.severity], ["module", a.module], ["host", a.host], ["entity", a.entity],
      ["time (UTC)", when(a.ts_ns)], ["score", a.score && a.score.toFixed ? a.score.toFixed(3) : a.score],
      ["threshold", a.threshold], ["model", a.model], ["count", a.count], ["rule", a.rule && a.rule.name],
      ["file", a.file && a.file.path], ["process", a.process && [a.process.name, "pid " + a.process.pid,
        ...(a.process.args || [])].join(" ")],
      ["source", a.source && a.source.ip + ":" + a.source.port],
      ["destination", a.destination && a.destination.ip + ":" + a.destination.port],
      ["most unusual calls", a.window && a.window.calls.join(" ")],
      ["ATT&CK tactics", a.threat && (a.threat.tactic.name || []).join(", ")],
      ["ATT&CK techniques", a.threat && (a.threat.technique.id || []).map((t, i) =>
        t + ((a.threat.technique.name || [])[i] ? " " + a.threat.technique.name[i] : "")).join("; ")],
      ["id", a.id]])];
  if (a.tree && a.tree.length) parts.push(el("h2", {}, "Process tree"), tree(a.tree));
  const baseline = a.baseline || (a.tree || []).some((m) => (m.findings || []).some((f) => f.baseline));
  if (baseline) {
    const said = el("span", { id: "accept-result", class: "muted" });
    parts.push(el("p", {}, el("button", { id: "accept", onclick: () => acceptFindings(a.id, said) },
      "Accept into the baseline"), " ", said));
  }
  const flows = related.filter((r) => r.module === "network");
  if (flows.length) {
    parts.push(el("h2", {}, "Flows"), el("table", { id: "flows" },
      el("tbody", {}, ...flows.map((f) => el("tr", {},
        el("td", {}, severity(f.severity)),
        el("td", { class: "mono" }, (f.source ? f.source.ip + ":" + f.source.port : "?") + " → " +
          (f.destination ? f.destination.ip + ":" + f.destination.port : "?")),
        el("td", {}, f.summary))))));
  }
  const others = related.filter((r) => r.module !== "network");
  if (others.length) {
    parts.push(el("h2", {}, "Alerts joined"), el("ul", {}, ...others.map((r) =>
      el("li", {}, el("a", { href: "#/alert/" + encodeURIComponent(r.id) }, r.summary)))));
  }
  show(...parts);
  live(true);
}

async function acceptFindings(id, said) {
  clearInterval(state.timer); // keep the answer on the page
  const headers = {};
  const token = sessionStorage.getItem("daisi-token");
  if (token) headers["Authorization"] = "Bearer " + token;
  const r = await fetch("/api/alerts/" + encodeURIComponent(id) + "/accept", { method: "POST", headers });
  const body = await r.json();
  said.textContent = r.ok
    ? "accepted: " + body.accepted.length + ", already accepted: " + body.already.length
    : body.error;
}

// ---- nodes --------------------------------------------------------------
function spark(values, colour) {
  const w = 160, h = 32, max = Math.max(1, ...values);
  const pts = values.map((v, i) => `${(i / Math.max(1, values.length - 1)) * w},${h - (v / max) * (h - 2) - 1}`);
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", pts.join(" "));
  line.setAttribute("stroke", colour);
  svg.append(line);
  return svg;
}

function rates(points, idx) {
  const out = [];
  for (let i = 1; i < points.length; i++) {
    const dt = (points[i][0] - points[i - 1][0]) / 1e9;
    out.push(dt > 0 ? Math.max(0, points[i][idx] - points[i - 1][idx]) / dt : 0);
  }
  return out;
}

async function nodesPage() {
  const data = await api("/api/nodes");
  const rows = data.nodes.map((n) => {
    const age = (data.now_ns - n.heard_ns) / 1e9;
    const ev = rates(n.points, 1), dr = rates(n.points, 2);
    return el("tr", { class: "node-row" },
      el("td", { class: "mono" }, n.node_id), el("td", {}, n.host), el("td", {}, n.last.role),
      el("td", {}, n.last.version), el("td", {}, Math.round(n.last.uptime_s) + " s"),
      el("td", { class: age > 30 ? "silent" : "" }, age.toFixed(0) + " s ago" + (age > 30 ? " (silent)" : "")),
      el("td", {}, n.last.cpu_percent.toFixed(1) + " %"), el("td", {}, (n.last.rss_bytes / 1e6).toFixed(0) + " MB"),
      el("td", {}, spark(ev, "#4b7bec"), el("div", { class: "muted" }, (ev.length ? ev[ev.length - 1] : 0).toFixed(0) + " /s")),
      el("td", {}, spark(dr, "#e0562a"), el("div", { class: "muted" }, (dr.length ? dr[dr.length - 1] : 0).toFixed(0) + " /s")));
  });
  show(el("h1", {}, "Nodes"), el("table", { id: "nodes" },
    el("thead", {}, el("tr", {}, ...["node", "host", "role", "version", "uptime", "last heartbeat", "CPU",
      "memory", "events", "drops"].map((h) => el("th", {}, h)))),
    el("tbody", {}, ...rows)));
  live(true);
}

// ---- routing and live updates -------------------------------------------
function fail(e) {
  if (e instanceof NeedToken) { show(tokenForm()); return; }
  live(false);
  console.error(e);
}

function route() {
  clearInterval(state.timer);
  const hash = location.hash || "#/";
  for (const a of document.querySelectorAll("header nav a")) a.classList.toggle("active", a.getAttribute("href") === hash);
  let page;
  if (hash.startsWith("#/alert/")) {
    const id = decodeURIComponent(hash.slice("#/alert/".length));
    page = () => alertPage(id);
  } else if (hash === "#/nodes") {
    page = nodesPage;
  } else {
    page = alertsPage;
  }
  page().catch(fail);
  state.timer = setInterval(() => page().catch(fail), REFRESH_MS);
}

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", route);
