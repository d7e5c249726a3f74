// The DR page's operations section: open incidents (with Acknowledge), reports, runbooks, failure simulations.
// Same-origin fetches carry Airflow's login cookie; acknowledging POSTs JSON (no CORS: same origin only).
(function () {
  "use strict";
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined) continue;
      if (k === "text") e.textContent = v; else if (k === "on") e.addEventListener("click", v); else e.setAttribute(k, v);
    }
    e.append(...kids.flat().filter((k) => k !== null && k !== undefined));
    return e;
  }
  function age(sec) {
    if (sec < 120) return `${Math.round(sec)}s`;
    if (sec < 7200) return `${Math.round(sec / 60)}m`;
    if (sec < 172800) return `${(sec / 3600).toFixed(1)}h`;
    return `${(sec / 86400).toFixed(1)}d`;
  }
  const region = new URLSearchParams(location.search).get("region");
  const q = region ? `?region=${encodeURIComponent(region)}` : "";
  function fileLink(key) {
    return el("a", { href: `ops/files/${key}${q}`, target: "_blank", rel: "noopener", text: key.split("/").slice(1).join("/") });
  }
  // Airflow shows the page in a sandboxed iframe where window.prompt/confirm are blocked: confirm inline.
  function askAck(id, cell) {
    const note = el("input", { type: "text", placeholder: "note (optional)", "aria-label": "Acknowledgement note",
      maxlength: "500" });
    const cancel = el("button", { class: "btn", type: "button", text: "Cancel" });
    const confirm = el("button", { class: "btn", type: "button", text: "Confirm acknowledgement" });
    const before = Array.from(cell.childNodes);
    cancel.addEventListener("click", () => cell.replaceChildren(...before));
    confirm.addEventListener("click", () => ack(id, note.value, cell));
    cell.replaceChildren(note, confirm, cancel);
    note.focus();
  }
  async function ack(id, note, cell) {
    cell.replaceChildren(el("span", { class: "muted", text: "acknowledging…" }));
    const resp = await fetch(`incidents/${encodeURIComponent(id)}/ack${q}`, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ note }),
    });
    const body = await resp.json().catch(() => ({}));
    cell.replaceChildren(el("span", { class: resp.ok ? "badge pass" : "badge fail",
      text: resp.ok ? `acknowledged by ${body.acknowledged.by}` : (body.detail || `HTTP ${resp.status}`) }));
  }
  // GET a JSON overview; null when it cannot be had (the main section already explains login / catalog problems)
  async function getJSON(url) {
    try {
      const resp = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      return resp.ok ? await resp.json() : null;
    } catch (e) { return null; }
  }
  async function load() {
    const root = document.getElementById("ops");
    const data = root && await getJSON(`ops/overview${q}`);
    if (!data) return;
    const rows = data.incidents.map((i) => el("tr", { "data-incident": i.id },
      el("td", {}, el("span", { class: `badge ${i.severity === "critical" || i.severity === "high" ? "fail" : "running"}`, text: i.max_severity })),
      el("td", { class: "mono", text: i.key }),
      el("td", { text: i.value }),
      el("td", { text: i.status }),
      el("td", { class: "num", text: String(i.level) }),
      el("td", { class: "num", text: age(i.age_seconds) }),
      el("td", { class: "ack" }, i.status === "open" ? el("button", { class: "btn", type: "button", text: "Acknowledge",
        on: (ev) => askAck(i.id, ev.currentTarget.parentNode) })
        : el("span", { class: "muted", text: i.acknowledged_by || "" }))));
    root.replaceChildren(
      el("section", { class: "card", id: "incidents" },
        el("div", { class: "card-head" }, el("h2", { text: "Incidents" }),
          el("p", { class: "muted", text: "One per monitor finding; unacknowledged critical/high ones escalate (inventory alerts.escalation)." })),
        rows.length ? el("div", { class: "table-wrap" }, el("table", { class: "incidents" },
          el("thead", {}, el("tr", {}, ...["Severity", "Finding", "Value", "Status", "Level", "Age", ""].map((t) => el("th", { text: t })))),
          el("tbody", {}, rows))) : el("p", { class: "muted", text: "No open incidents." })),
      el("section", { class: "card", id: "reports" },
        el("div", { class: "card-head" }, el("h2", { text: "Reports and runbooks" }),
          el("p", { class: "muted", text: "From the catalog: readable without Airflow in either region." })),
        el("ul", {}, ...data.reports.filter((k) => /\.(pdf|html)$/.test(k)).map((k) => el("li", {}, fileLink(k)))),
        el("ul", {}, ...data.runbooks.filter((k) => k.endsWith(".html")).map((k) => el("li", {}, fileLink(k))))));
  }
  // Failure simulations (lifeboat_chaos_<family>): newest run per experiment, score trend, quarterly scores.
  const SVG = "http://www.w3.org/2000/svg";
  function sparkline(points) {
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("width", "120"); svg.setAttribute("height", "24"); svg.setAttribute("class", "trend");
    const scores = points.map((p) => (p.score === null ? 0 : p.score));
    const step = scores.length > 1 ? 116 / (scores.length - 1) : 0;
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", scores.map((v, i) => `${2 + i * step},${22 - (v / 100) * 20}`).join(" "));
    line.setAttribute("fill", "none"); line.setAttribute("stroke", "currentColor"); line.setAttribute("stroke-width", "1.5");
    svg.append(line);
    const title = document.createElementNS(SVG, "title");
    title.textContent = points.map((p) => `${p.at.slice(0, 10)} ${p.score} ${p.verdict}`).join("\n");
    svg.append(title);
    return svg;
  }
  function secs(v) { return v === null || v === undefined ? "–" : `${v.toFixed(1)}s`; }
  async function loadChaos() {
    const root = document.getElementById("ops");
    const data = root && await getJSON(`chaos/overview${q}`);
    if (!data) return;
    const rows = data.experiments.map((e) => el("tr", { "data-experiment": e.experiment },
      el("td", { class: "mono", text: e.experiment }),
      el("td", { text: `${e.family} / ${e.kind}` }),
      el("td", { text: e.last.started_at.slice(0, 16).replace("T", " ") }),
      el("td", {}, el("span", { class: `badge ${e.last.verdict === "pass" ? "pass" : "fail"}`, text: e.last.aborted ? "aborted" : e.last.verdict })),
      el("td", { class: "num", text: secs(e.last.detect_seconds) }),
      el("td", { class: "num", text: secs(e.last.recover_seconds) }),
      el("td", { class: "num", text: e.last.data_lost === null ? "–" : String(e.last.data_lost) }),
      el("td", { class: "num", text: e.last.score === null ? "–" : String(e.last.score) }),
      el("td", {}, sparkline(e.trend)),
      el("td", { text: Object.entries(e.quarters).map(([k, v]) => `${k}: ${v}`).join(", ") })));
    const quarters = Object.entries(data.quarters).map(([k, v]) => `${k}: ${v}`).join(" · ");
    root.append(el("section", { class: "card", id: "chaos" },
      el("div", { class: "card-head" }, el("h2", { text: "Failure simulations" }),
        el("p", { class: "muted", text: `Resilience score = Σ weight × probe success ÷ Σ weights (0–100). Per quarter: ${quarters || "no runs yet"}.` +
          (data.injected.length ? ` ${data.injected.length} fault(s) still injected: lifeboat_chaos_cleanup reverts them.` : "") })),
      rows.length ? el("div", { class: "table-wrap" }, el("table", { class: "chaos" },
        el("thead", {}, el("tr", {}, ...["Experiment", "Family / kind", "Last run", "Verdict", "Detect", "Recover", "Data lost", "Score", "Trend", "Quarters"].map((t) => el("th", { text: t })))),
        el("tbody", {}, rows))) : el("p", { class: "muted", text: "No failure simulation has run yet (lifeboat_chaos_service / _network / _database)." })));
  }
  async function loadAll() { await load(); await loadChaos(); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", loadAll); else loadAll();
})();
