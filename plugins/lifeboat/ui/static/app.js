/* Lifeboat DR page: plain JavaScript, no build step, no third-party code.
 *
 * Data comes from the JSON endpoints beside this page (/lifeboat/health, /datastores, /drills,
 * /drills/{id}). They are protected by Airflow's authentication: the Airflow UI's login sets the
 * HttpOnly `_token` cookie, and these same-origin fetches carry it (credentials: "same-origin"), so the
 * page never sees or stores the token itself.
 *
 * Views: the overview (datastores, charts, drill history) and one drill (?drill=<id>). Both are real
 * URLs: Airflow mirrors the iframe's address into its own (/plugin/disaster-recovery/lifeboat/?drill=..),
 * so a drill's page can be shared and reloaded.
 */
"use strict";

(function () {
  const params = new URLSearchParams(location.search);
  const state = {
    region: params.get("region") || "",
    drill: params.get("drill") || "",
    all: params.get("all") === "1",
  };
  // The page lives at <airflow root>/lifeboat/; Airflow's own UI is at <airflow root>/.
  const AIRFLOW_ROOT = new URL("../", location.href).pathname;
  const HISTORY_ROWS = 25;

  // -- colour mode: follow the Airflow UI around us ----------------------------------------------------
  function syncColourMode() {
    let dark = false;
    try {
      const root = window.parent && window.parent !== window ? window.parent.document.documentElement : null;
      dark = root ? root.classList.contains("dark") || root.dataset.theme === "dark" || root.style.colorScheme === "dark"
        : window.matchMedia("(prefers-color-scheme: dark)").matches;
    } catch (e) { /* not same-origin: keep light */ }
    document.documentElement.classList.toggle("dark", dark);
    const logo = document.getElementById("logo");
    if (logo) logo.setAttribute("src", dark ? "static/icon-dark.svg" : "static/icon.svg");
  }
  syncColourMode();
  try {
    if (window.parent !== window) {
      new MutationObserver(syncColourMode).observe(window.parent.document.documentElement,
        { attributes: true, attributeFilter: ["class", "style", "data-theme"] });
    }
  } catch (e) { /* ignore */ }

  // -- DOM helpers --------------------------------------------------------------------------------------
  const SVGNS = "http://www.w3.org/2000/svg";
  function build(ns, tag, attrs, children) {
    const el = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") el.textContent = v;
      else if (k === "on") for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
      else if (k === "class") el.setAttribute("class", Array.isArray(v) ? v.filter(Boolean).join(" ") : v);
      else if (k === "dataset") Object.assign(el.dataset, v);
      else if (k === "style") Object.assign(el.style, v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of [].concat(children || [])) {
      if (c === null || c === undefined || c === false) continue;
      el.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
    }
    return el;
  }
  const h = (tag, attrs, ...children) => build(null, tag, attrs, children.flat());
  const s = (tag, attrs, ...children) => build(SVGNS, tag, attrs, children.flat());
  const $ = (id) => document.getElementById(id);
  function mount(el, ...children) { el.replaceChildren(...children.flat().filter(Boolean)); }

  // -- formatting ---------------------------------------------------------------------------------------
  function trim1(x) { return (Math.round(x * 10) / 10).toString(); }
  function fmtDur(sec) {
    if (sec === null || sec === undefined) return "–";
    if (sec < 10) return `${trim1(sec)}s`;
    if (sec < 60) return `${Math.round(sec)}s`;
    if (sec < 3600) return `${trim1(sec / 60)} min`;
    if (sec < 172800) return `${trim1(sec / 3600)} h`;
    return `${trim1(sec / 86400)} d`;
  }
  function fmtAge(sec) {
    if (sec === null || sec === undefined) return "never";
    if (sec < 60) return "just now";
    if (sec < 7200) return `${Math.round(sec / 60)} min ago`;
    if (sec < 172800) return `${Math.round(sec / 3600)} h ago`;
    return `${Math.round(sec / 86400)} d ago`;
  }
  function parseTime(iso) { return iso ? new Date(iso) : null; }
  function fmtTime(iso) {
    const d = parseTime(iso);
    if (!d) return "–";
    return d.toISOString().slice(0, 16).replace("T", " ") + " UTC";
  }
  function fmtDate(d) { return d.toISOString().slice(0, 10); }
  function fmtBytes(n) {
    if (!n) return "0 B";
    const u = ["B", "KiB", "MiB", "GiB", "TiB"];
    const i = Math.min(u.length - 1, Math.floor(Math.log(n) / Math.log(1024)));
    return `${trim1(n / 1024 ** i)} ${u[i]}`;
  }
  const GRADE_TEXT = { ok: "within objective", near: "within objective (above 80%)", miss: "misses objective", none: "not measured" };
  const label = (t) => (t || "").replace(/_/g, " ");

  // -- links ----------------------------------------------------------------------------------------------
  function pageHref(extra) {
    const q = new URLSearchParams();
    if (state.region) q.set("region", state.region);
    for (const [k, v] of Object.entries(extra || {})) if (v) q.set(k, v);
    const qs = q.toString();
    return qs ? `./?${qs}` : "./";
  }
  function dagRunHref(run) {
    if (!run || !run.dag_id || !run.run_id) return null;
    let href = `${AIRFLOW_ROOT}dags/${encodeURIComponent(run.dag_id)}/runs/${encodeURIComponent(run.run_id)}`;
    if (run.task_id) {
      href += `/tasks/${encodeURIComponent(run.task_id)}`;
      if (run.map_index !== undefined && run.map_index !== null && String(run.map_index) !== "-1") {
        href += `/mapped/${encodeURIComponent(run.map_index)}`;
      }
    }
    return href;
  }
  // Airflow shows this page in a sandboxed iframe that may not navigate the top window; its
  // single-page app follows history changes, so hand the URL to its router instead.
  function openInAirflow(ev) {
    if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    const href = ev.currentTarget.getAttribute("href");
    if (window.top === window) return; // opened on its own: a normal link
    ev.preventDefault();
    try {
      const top = window.top;
      top.history.pushState({}, "", href);
      top.dispatchEvent(new top.PopStateEvent("popstate", { state: {} }));
    } catch (e) {
      location.href = href; // at least open it here
    }
  }
  function runLink(run, text) {
    const href = dagRunHref(run);
    if (!href) return h("span", { class: "faint", text: "–" });
    return h("a", { href, class: "runlink", title: `DAG run ${run.dag_id} / ${run.run_id}`, on: { click: openInAirflow } },
      text || "DAG run ↗");
  }

  // -- API --------------------------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, detail, body) { super(detail); this.status = status; this.body = body || {}; }
  }
  async function api(path, query) {
    const url = new URL(path, location.href);
    if (state.region) url.searchParams.set("region", state.region);
    for (const [k, v] of Object.entries(query || {})) url.searchParams.set(k, v);
    let resp;
    try {
      resp = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    } catch (e) {
      throw new ApiError(0, `The Airflow API server did not answer (${e.message}).`);
    }
    let body = {};
    try { body = await resp.json(); } catch (e) { /* not JSON */ }
    if (!resp.ok) {
      const detail = typeof body.detail === "string" ? body.detail : `HTTP ${resp.status} ${resp.statusText}`;
      throw new ApiError(resp.status, detail, body);
    }
    return body;
  }

  // -- page chrome ------------------------------------------------------------------------------------------
  function renderSource(src) {
    const el = $("source");
    if (!src || !src.region) { el.textContent = "Catalog not available"; return; }
    mount(el,
      "Catalog of ", h("b", { text: src.region }), ` (${src.role} region) · `,
      h("span", { class: "mono", text: src.repository }), ` · read ${fmtTime(src.generated_at).slice(11)}`);
  }
  function renderRegions(src) {
    const regions = (src && src.regions) || {};
    const current = (src && (src.region || src.requested_region)) || state.region;
    mount($("regions"), ...["primary", "standby"].filter((r) => regions[r]).map((role) => {
      const r = regions[role];
      const q = new URLSearchParams();
      q.set("region", r);
      if (state.drill) q.set("drill", state.drill);
      return h("a", { href: `./?${q}`, class: r === current ? "on" : null, title: `Read the ${role} region's copy of the catalog` },
        r, h("small", { text: role }));
    }));
    $("refresh").setAttribute("href", location.search || "./");
  }
  function renderBanners(src) {
    const out = [];
    if (src && src.fallback) {
      out.push(h("div", { class: "banner warn", role: "status" }, h("span", { class: "icon", text: "!" }), h("div", {},
        h("b", { text: `The ${src.fallback.from} copy of the catalog is ${src.fallback.result}` }), `: ${src.fallback.reason}. `,
        h("b", { text: `Showing the ${src.region} (${src.role}) copy instead.` }))));
    } else if (src && src.role === "standby") {
      out.push(h("div", { class: "banner info" }, h("span", { class: "icon", text: "i" }), h("div", {},
        "Reading the ", h("b", { text: "standby region's" }), ` copy of the catalog (${src.region}). It is complete on its own; records `
        + "reach it when the mirror task runs after each backup and drill.")));
    }
    if (src && src.active) {
      const a = src.active;
      out.push(h("div", { class: "banner info", id: "active-region" }, h("span", { class: "icon", text: "i" }), h("div", {},
        "Active region: ", h("b", { text: a.region }),
        a.since ? ` since ${fmtTime(a.since)} (${a.kind}${a.previous ? ` from ${a.previous}` : ""}, ${a.by})`
          : " (the inventory's primary; no failover recorded)")));
    }
    if (src && src.problems && src.problems.length) {
      out.push(h("div", { class: "banner warn", role: "status" }, h("span", { class: "icon", text: "!" }), h("div", {},
        h("b", { text: `${src.problems.length} record(s) in the catalog could not be read` }),
        " and are left out below. Fix or remove them:",
        h("ul", {}, src.problems.map((p) => h("li", { text: p }))))));
    }
    mount($("banners"), ...out);
  }
  function showState(kind, title, message, extra) {
    const icons = { empty: "○", missing: "?", unreadable: "!", error: "!", auth: "⚿", notfound: "?" };
    mount($("main"), h("div", { class: `state state-${kind}`, dataset: { state: kind } },
      h("div", { class: "big", text: icons[kind] || "!" }),
      h("h2", { text: title }),
      message ? h("p", { class: "detail", text: message }) : null,
      extra || null));
  }
  function showError(err) {
    if (err.status === 401 || err.status === 403) {
      showState("auth", "Your Airflow session has ended",
        `The DR page's data needs an Airflow login (${err.message}).`,
        h("p", {}, h("a", { href: `${AIRFLOW_ROOT}auth/login/?next=${encodeURIComponent(AIRFLOW_ROOT + "plugin/disaster-recovery")}`, target: "_top", text: "Log in to Airflow again" })));
      return;
    }
    const src = err.body && err.body.source;
    if (src) { renderSource(src); renderRegions(src); renderBanners(src); return showSource(src); }
    if (err.status === 404) return showState("notfound", "Not found", err.message, h("p", {}, h("a", { href: pageHref(), text: "← All drills" })));
    showState("error", err.status === 400 ? "Bad request" : "The DR page could not load its data", err.message);
  }
  function showSource(src) {
    const titles = {
      empty: "The catalog is empty",
      missing: "No backup repository found",
      unreadable: "The backup repository cannot be read",
      error: "The DR page cannot read its configuration",
    };
    const failed = (src.attempts || []).filter((a) => a.result !== "ok");
    const tried = ["missing", "unreadable"].includes(src.status) && failed.length;
    const extra = tried ? h("ul", { class: "detail", style: { listStyle: "none" } },
      failed.map((a) => h("li", {}, h("b", { text: `${a.region}: ` }), a.reason))) : null;
    const message = tried ? `Looked for the catalog in both regions; check \`repository:\` in the inventory.` : src.message;
    showState(src.status, titles[src.status] || "The catalog is not available", message, extra);
  }

  // -- overview ----------------------------------------------------------------------------------------------
  function badge(cls, text, title) { return h("span", { class: `badge ${cls}`, title: title || null, text }); }
  function verdictBadge(v) { return badge(v === "pass" ? "pass" : v === "fail" ? "fail" : "running", v); }
  function graded(value, objective, grade) {
    const pct = objective ? Math.min(1, (value || 0) / objective) : 0;
    return h("span", { class: "nowrap" },
      h("span", { class: `g ${grade}`, title: `${GRADE_TEXT[grade]} (objective ${fmtDur(objective)})`, text: fmtDur(value) }),
      h("span", { class: "faint", text: ` / ${fmtDur(objective)}` }),
      value === null || value === undefined ? null : h("span", { class: "meter" },
        h("i", { class: grade, style: { width: `${Math.max(3, pct * 100 * 0.8)}%` } }),
        h("b", { style: { left: "80%" }, title: "objective" })));
  }

  function renderKpis(dss, drills) {
    const healthy = dss.filter((d) => d.state === "ok").length;
    const failing = dss.filter((d) => d.state === "fail");
    const finished = drills.filter((d) => d.verdict !== "running");
    const latest = dss.map((d) => d.latest_drill).filter(Boolean);
    const latestFailed = latest.filter((d) => d.verdict !== "pass");
    const newestDrill = latest.map((d) => d.started_at).sort().pop();
    const recent = finished.slice(0, 10);
    const passed = recent.filter((d) => d.verdict === "pass").length;
    const newestAges = dss.map((d) => d.backups.newest && d.backups.newest.age_seconds).filter((x) => x !== null && x !== undefined);
    const kpi = (lbl, value, sub, cls) => h("div", { class: "kpi" },
      h("div", { class: "label", text: lbl }), h("div", { class: `value ${cls || ""}` }, value), h("div", { class: "sub" }, sub));
    return h("div", { class: "kpis" },
      kpi("Datastores", `${healthy} / ${dss.length} healthy`,
        failing.length ? h("span", { class: "g miss", text: `needs attention: ${failing.map((d) => d.name).join(", ")}` }) : "every objective met", ""),
      kpi("Latest drills", latest.length ? `${latest.length - latestFailed.length} / ${latest.length} passed` : "–",
        latest.length ? (latestFailed.length
          ? h("span", { class: "g miss", text: `failed: ${latestFailed.map((d) => d.datastore).join(", ")}` })
          : `newest ${fmtTime(newestDrill)}`) : "no drill recorded yet"),
      kpi("Drill pass rate", recent.length ? `${passed} / ${recent.length}` : "–",
        recent.length ? `last ${recent.length} drill${recent.length > 1 ? "s" : ""}` : "no drill recorded yet"),
      kpi("Newest backup", newestAges.length ? fmtAge(Math.min(...newestAges)) : "–",
        `${dss.reduce((n, d) => n + d.backups.count, 0)} backups in the catalog`));
  }

  function renderDatastores(dss) {
    const rows = dss.map((d) => {
      const nb = d.backups.newest;
      const v = d.verification.last;
      const ld = d.latest_drill;
      const stale = d.backups.kinds.filter((k) => k.stale && k.count).map((k) => k.kind);
      return h("tr", { dataset: { datastore: d.name }, class: "ds-row" },
        h("td", {}, h("span", { class: "dsname", text: d.name }), h("span", { class: "chip", text: d.engine }),
          d.enabled ? null : h("span", { class: "chip", text: "disabled" }),
          d.notes.length ? h("span", { class: "sub notes", text: d.notes.join(" · ") }) : null),
        h("td", { class: "num nowrap" }, fmtDur(d.objectives.rpo_seconds)),
        h("td", { class: "num nowrap" }, fmtDur(d.objectives.rto_seconds)),
        h("td", { class: "nowrap" }, nb ? [
          h("span", { class: stale.length ? "g near" : "", text: fmtAge(nb.age_seconds), title: `${nb.id} · finished ${fmtTime(nb.finished_at)}` }),
          h("span", { class: "sub", text: `${nb.kind} · ${fmtBytes(nb.size)} · ${d.backups.count} total`
            + (d.backups.incomplete ? ` · ${d.backups.incomplete} interrupted` : "") }),
        ] : h("span", { class: "g miss", text: "no backup" })),
        h("td", {}, v ? [
          h("span", { class: `check ${v.ok ? "ok" : "fail"}`, text: v.ok ? "✓ passed" : "✗ failed", title: v.problems.join("\n") || null }),
          h("span", { class: "sub", title: `${d.verification.verified} verified, ${d.verification.failed} failed, ${d.verification.unverified} not verified yet`,
            text: `${fmtAge((Date.now() - parseTime(v.verified_at)) / 1000)} · ${d.verification.verified} of ${d.backups.count} ok` }),
        ] : h("span", { class: "check none", text: "never verified" })),
        h("td", {}, ld ? graded(ld.rpo_seconds, ld.objective_rpo_seconds, ld.rpo_grade) : h("span", { class: "faint", text: "–" })),
        h("td", {}, ld ? graded(ld.rto_seconds, ld.objective_rto_seconds, ld.rto_grade) : h("span", { class: "faint", text: "–" })),
        h("td", { class: "nowrap" }, ld ? [h("a", { href: pageHref({ drill: ld.id }), class: "verdict-link" }, verdictBadge(ld.verdict)),
          h("span", { class: "sub", text: fmtTime(ld.started_at) })] : badge("none", "never drilled")));
    });
    return h("section", { class: "card", id: "datastores" },
      h("div", { class: "card-head" }, h("h2", { text: "Datastores" }),
        h("span", { class: "muted", text: "Latest drill measurements against each datastore's objectives (amber: above 80% of it)" })),
      h("div", { class: "table-wrap" }, h("table", { class: "datastores" },
        h("thead", {}, h("tr", {}, ["Datastore", "RPO objective", "RTO objective", "Newest backup", "Last verification",
          "Latest RPO", "Latest RTO", "Latest drill"].map((t) => h("th", { text: t })))),
        h("tbody", {}, rows))));
  }

  // -- charts --------------------------------------------------------------------------------------------------
  function niceStep(max) {
    const units = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
    const raw = max / 4;
    return units.find((u) => u >= raw) || Math.ceil(raw / 86400) * 86400;
  }
  function chart(points, objectivePts, kind, width) {
    const W = Math.max(220, width), H = 170, L = 44, R = 10, T = 12, B = 24;
    const svg = s("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img",
      "aria-label": `measured ${kind.toUpperCase()} over time` });
    if (!points.length) {
      svg.appendChild(s("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty", text: "no drill yet" }));
      return svg;
    }
    const times = points.map((p) => p.t.getTime());
    let t0 = Math.min(...times), t1 = Math.max(...times);
    if (t1 - t0 < 86400e3) { t0 -= 43200e3; t1 += 43200e3; }
    const pad = (t1 - t0) * 0.04; t0 -= pad; t1 += pad;
    const vmax = Math.max(...points.map((p) => p.v || 0), ...objectivePts.map((p) => p.v)) * 1.15 || 1;
    const step = niceStep(vmax);
    const ymax = Math.ceil(vmax / step) * step;
    const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
    const y = (v) => T + (1 - v / ymax) * (H - T - B);
    for (let v = 0; v <= ymax + 1e-9; v += step) {
      svg.appendChild(s("line", { class: "grid", x1: L, x2: W - R, y1: y(v), y2: y(v) }));
      svg.appendChild(s("text", { x: L - 6, y: y(v) + 3.5, "text-anchor": "end", text: fmtDur(v).replace(" ", "") }));
    }
    const nTicks = Math.min(4, Math.max(2, Math.floor((W - L - R) / 110)));
    for (let i = 0; i <= nTicks; i++) {
      const t = t0 + ((t1 - t0) * i) / nTicks;
      svg.appendChild(s("text", { x: x(t), y: H - 6, "text-anchor": i === 0 ? "start" : i === nTicks ? "end" : "middle", text: fmtDate(new Date(t)) }));
    }
    // The objective recorded with each drill, as a step line across the chart.
    if (objectivePts.length) {
      let d = `M${L},${y(objectivePts[0].v)}`;
      objectivePts.forEach((p, i) => {
        const xi = i === 0 ? L : x(p.t.getTime());
        d += ` H${xi} V${y(p.v)}`;
      });
      d += ` H${W - R}`;
      svg.appendChild(s("path", { class: "objective", d }));
      const last = objectivePts[objectivePts.length - 1].v;
      svg.appendChild(s("text", { class: "objective-label", x: L + 4, y: y(objectivePts[0].v) - 5, "text-anchor": "start",
        text: `objective ${fmtDur(last)}` }));
    }
    const measured = points.filter((p) => p.v !== null && p.v !== undefined);
    if (measured.length) {
      const line = measured.map((p, i) => `${i ? "L" : "M"}${x(p.t.getTime()).toFixed(1)},${y(p.v).toFixed(1)}`).join(" ");
      const area = `${line} L${x(measured[measured.length - 1].t.getTime()).toFixed(1)},${y(0)} L${x(measured[0].t.getTime()).toFixed(1)},${y(0)} Z`;
      svg.appendChild(s("path", { class: `area ${kind}`, d: area }));
      svg.appendChild(s("path", { class: `series ${kind}`, d: line }));
    }
    for (const p of points) {
      const cx = x(p.t.getTime());
      const tip = `${p.id}\n${fmtTime(p.iso)} · ${p.verdict}\n${kind.toUpperCase()} ${fmtDur(p.v)} (objective ${fmtDur(p.obj)})`;
      if (p.v === null || p.v === undefined) {
        const g = s("a", { href: pageHref({ drill: p.id }) }, s("title", { text: `${tip}: not measured` }),
          s("line", { class: "unmeasured", x1: cx - 4, x2: cx + 4, y1: y(0) - 4, y2: y(0) + 4 }),
          s("line", { class: "unmeasured", x1: cx - 4, x2: cx + 4, y1: y(0) + 4, y2: y(0) - 4 }));
        svg.appendChild(g);
      } else {
        svg.appendChild(s("a", { href: pageHref({ drill: p.id }) }, s("circle", { class: `pt ${p.grade}`, cx, cy: y(p.v), r: 4.2 },
          s("title", { text: tip }))));
      }
    }
    return svg;
  }
  function renderCharts(dss, drills) {
    const names = dss.map((d) => d.name);
    for (const d of drills) if (!names.includes(d.datastore)) names.push(d.datastore);
    const card = h("section", { class: "card", id: "charts" },
      h("div", { class: "card-head" }, h("h2", { text: "Measured RTO and RPO over time" }),
        h("span", { class: "muted", text: "Every drill, per datastore; click a point to open the drill" })),
      h("div", { class: "card-body" },
        h("div", { class: "legend" }, h("span", { class: "l-rto", text: "measured RTO" }), h("span", { class: "l-rpo", text: "measured RPO" }),
          h("span", { class: "l-obj", text: "objective (as recorded by each drill)" }), h("span", { class: "l-miss", text: "misses the objective" })),
        h("div", { class: "charts", id: "chart-grid" })));
    const grid = card.querySelector("#chart-grid");
    const pending = [];
    for (const name of names) {
      const mine = drills.filter((d) => d.datastore === name && d.verdict !== "running").slice().reverse(); // oldest first
      const c = h("div", { class: "chart-card", dataset: { datastore: name } },
        h("header", {}, h("h3", { text: name }), h("span", { class: "faint", text: `${mine.length} drill${mine.length === 1 ? "" : "s"}` })),
        h("div", { class: "chart-pair" }, h("div", { class: "slot-rto" }), h("div", { class: "slot-rpo" })));
      grid.appendChild(c);
      pending.push([c, mine]);
    }
    const draw = () => {
      for (const [c, mine] of pending) {
        for (const kind of ["rto", "rpo"]) {
          const slot = c.querySelector(`.slot-${kind}`);
          const pts = mine.map((d) => ({ id: d.id, iso: d.started_at, t: parseTime(d.started_at), v: d[`${kind}_seconds`],
            obj: d[`objective_${kind}_seconds`], grade: d[`${kind}_grade`], verdict: d.verdict }));
          const objs = [];
          for (const p of pts) if (!objs.length || objs[objs.length - 1].v !== p.obj) objs.push({ t: p.t, v: p.obj });
          const last = pts[pts.length - 1];
          mount(slot, h("div", { class: "chart-title" }, h("span", { text: kind.toUpperCase() }),
            last ? h("span", { class: `g ${last.grade}`, text: `latest ${fmtDur(last.v)}` }) : null),
          chart(pts, objs, kind, slot.clientWidth || 220));
        }
      }
    };
    requestAnimationFrame(draw);
    let timer = null;
    window.addEventListener("resize", () => { clearTimeout(timer); timer = setTimeout(draw, 120); });
    return card;
  }

  // -- drill history -------------------------------------------------------------------------------------------
  function renderHistory(drills, total) {
    const shown = state.all ? drills : drills.slice(0, HISTORY_ROWS);
    const rows = shown.map((d) => h("tr", { class: "rowlink drill-row", dataset: { drill: d.id, verdict: d.verdict },
      on: { click: (ev) => { if (!ev.target.closest("a")) location.href = pageHref({ drill: d.id }); } } },
      h("td", { class: "nowrap" }, h("a", { href: pageHref({ drill: d.id }), text: fmtTime(d.started_at) })),
      h("td", {}, h("span", { class: "dsname", text: d.datastore })),
      h("td", { text: label(d.type) }),
      h("td", { class: "muted", text: (d.scope || []).join(", ") }),
      h("td", { class: "num r nowrap", text: fmtDur(d.duration_seconds) }),
      h("td", { class: "r" }, h("span", { class: `g ${d.rto_grade}`, text: fmtDur(d.rto_seconds), title: GRADE_TEXT[d.rto_grade] })),
      h("td", { class: "r" }, h("span", { class: `g ${d.rpo_grade}`, text: fmtDur(d.rpo_seconds), title: GRADE_TEXT[d.rpo_grade] })),
      h("td", {}, verdictBadge(d.verdict), d.reasons.length ? h("span", { class: "sub", text: d.reasons[0] }) : null),
      h("td", { class: "nowrap" }, runLink(d.run))));
    return h("section", { class: "card", id: "history" },
      h("div", { class: "card-head" }, h("h2", { text: "Drill history" }),
        h("span", { class: "muted" }, `${total} drill${total === 1 ? "" : "s"}, newest first`,
          !state.all && total > HISTORY_ROWS ? [" · ", h("a", { href: pageHref({ all: "1" }), text: "show all" })] : null)),
      rows.length ? h("div", { class: "table-wrap" }, h("table", { class: "drills" },
        h("thead", {}, h("tr", {}, ["Started", "Datastore", "Type", "Scope"].map((t) => h("th", { text: t })),
          ["Duration", "RTO", "RPO"].map((t) => h("th", { class: "r", text: t })), h("th", { text: "Verdict" }), h("th", { text: "Airflow" }))),
        h("tbody", {}, rows)))
        : h("div", { class: "card-body muted", text: "No drill has been recorded yet: the lifeboat_restore_test_monthly DAG records one per datastore." }));
  }

  async function overview() {
    const [ds, dr] = await Promise.all([api("datastores"), api("drills")]);
    renderSource(ds.source); renderRegions(ds.source); renderBanners(ds.source);
    if (ds.source.status === "empty") {
      showSource(ds.source);
      document.body.dataset.ready = "empty";
      return;
    }
    mount($("main"),
      renderKpis(ds.datastores, dr.drills),
      renderDatastores(ds.datastores),
      renderCharts(ds.datastores, dr.drills),
      renderHistory(dr.drills, dr.total),
      h("footer", { class: "foot", text: `Lifeboat · measured RTO = restore start → target ready and verified; measured RPO = drill start → newest heartbeat found in the restored data.` }));
    document.body.dataset.ready = "overview";
  }

  // -- one drill ---------------------------------------------------------------------------------------------------
  function timeline(d, width) {
    const steps = d.steps;
    const rs = d.marks.restore_started;
    const deadline = rs !== null && rs !== undefined ? rs + d.objective_rto_seconds : null;
    const end = Math.max(d.duration_seconds || 0, ...steps.map((st) => st.offset_seconds + (st.seconds || 0)), 1,
      deadline !== null && deadline < 1.5 * (d.duration_seconds || 0) ? deadline : 0);
    const hb = d.marks.newest_heartbeat;
    const t0 = hb !== null && hb !== undefined && hb < 0 ? hb : 0;
    const LBL = Math.min(220, Math.max(140, width * 0.24)), R = 70, ROW = 26, TOP = 40;
    const W = Math.max(520, width), H = TOP + steps.length * ROW + 26;
    const x = (sec) => LBL + ((sec - t0) / (end - t0)) * (W - LBL - R);
    const svg = s("svg", { class: "timeline", viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img", "aria-label": "drill step timeline" });
    const step = niceStep(end - t0);
    for (let v = Math.ceil(t0 / step) * step; v <= end + 1e-9; v += step) {
      svg.appendChild(s("line", { class: "grid", x1: x(v), x2: x(v), y1: TOP, y2: H - 20 }));
      svg.appendChild(s("text", { x: x(v), y: H - 6, "text-anchor": "middle", text: `${v < 0 ? "−" : "+"}${fmtDur(Math.abs(v)).replace(" ", "")}` }));
    }
    const m = d.marks;
    if (m.restore_started !== null && m.ready !== null && m.restore_started !== undefined && m.ready !== undefined) {
      svg.appendChild(s("rect", { class: "span-rto", x: x(m.restore_started), y: TOP, width: Math.max(1, x(m.ready) - x(m.restore_started)), height: steps.length * ROW }));
    }
    steps.forEach((st, i) => {
      const yy = TOP + i * ROW;
      svg.appendChild(s("rect", { class: "lane", x: LBL, y: yy + 3, width: W - LBL - R, height: ROW - 6, rx: 3 }));
      svg.appendChild(s("text", { class: "step", x: LBL - 10, y: yy + ROW / 2 + 4, "text-anchor": "end", text: st.name.length > 34 ? st.name.slice(0, 33) + "…" : st.name },
        s("title", { text: st.name })));
      const x0 = x(st.offset_seconds), x1 = x(st.offset_seconds + (st.seconds === null ? end - st.offset_seconds : st.seconds));
      const cls = st.ok === true ? "ok" : st.ok === false ? "fail" : "open";
      svg.appendChild(s("rect", { class: `bar ${cls}`, x: x0, y: yy + 6, width: Math.max(2, x1 - x0), height: ROW - 12, rx: 2 },
        s("title", { text: `${st.name}: ${st.seconds === null ? "did not finish" : fmtDur(st.seconds)}${st.detail ? "\n" + st.detail : ""}` })));
      svg.appendChild(s("text", { x: Math.max(x1, x0 + 2) + 6, y: yy + ROW / 2 + 4, text: st.seconds === null ? "—" : fmtDur(st.seconds) }));
    });
    // Marks, their labels on two staggered rows above the lanes so that neighbours do not collide.
    const mark = (sec, cls, text, row) => {
      if (sec === null || sec === undefined) return;
      const xx = x(sec), yy = row ? TOP - 20 : TOP - 6;
      const anchor = xx > W - R - 40 ? "end" : "start";
      svg.appendChild(s("line", { class: `mark ${cls}`, x1: xx, x2: xx, y1: yy - 10, y2: TOP + steps.length * ROW }));
      svg.appendChild(s("text", { class: `mark ${cls}`, x: xx + (anchor === "end" ? -4 : 4), y: yy - 2, "text-anchor": anchor, text }));
    };
    mark(m.newest_heartbeat, "hb", `newest heartbeat (RPO ${fmtDur(d.rpo_seconds)})`, 1);
    mark(m.restore_started, "restore", "restore start", 0);
    mark(m.ready, "ready", `ready + verified (RTO ${fmtDur(d.rto_seconds)})`, 1);
    if (deadline !== null && deadline <= end) mark(deadline, "deadline", `RTO objective ${fmtDur(d.objective_rto_seconds)}`, 0);
    return svg;
  }
  async function drillView(id) {
    const body = await api(`drills/${encodeURIComponent(id)}`);
    const d = body.drill;
    renderSource(body.source); renderRegions(body.source); renderBanners(body.source);
    const fact = (k, v) => h("div", {}, k, h("b", {}, v));
    const panel = h("section", { class: "card drill-detail", id: "drill", dataset: { drill: d.id, verdict: d.verdict } },
      h("div", { class: "card-body" },
        h("div", { class: "detail-head" },
          h("div", {}, h("div", { class: "muted", text: `${label(d.type)} drill of ${d.datastore}` }), h("h2", { text: d.id })),
          h("div", { class: "nowrap" }, verdictBadge(d.verdict), " ", runLink(d.run, "Open the DAG run in Airflow ↗"))),
        h("div", { class: "facts" },
          fact("Measured RTO", graded(d.rto_seconds, d.objective_rto_seconds, d.rto_grade)),
          fact("Measured RPO", graded(d.rpo_seconds, d.objective_rpo_seconds, d.rpo_grade)),
          fact("Started", fmtTime(d.started_at)),
          fact("Duration", fmtDur(d.duration_seconds)),
          fact("Backup restored", h("span", { class: "mono", text: d.backup_id || "–" })),
          fact("Recovery target", d.target),
          fact("Scope", (d.scope || []).join(", ") || "–"),
          fact("Newest heartbeat found", fmtTime(d.newest_heartbeat_at))),
        d.reasons.length ? h("ul", { class: "reasons" }, d.reasons.map((r) => h("li", { text: r }))) : null));
    const tl = h("section", { class: "card", id: "timeline" },
      h("div", { class: "card-head" }, h("h2", { text: "Step timeline" }),
        h("span", { class: "muted", text: "Time from the drill's start; shaded: the measured RTO (restore start → ready and verified)" })),
      h("div", { class: "card-body" }, h("div", { id: "timeline-slot" })));
    const stepsTable = h("section", { class: "card", id: "steps" },
      h("div", { class: "card-head" }, h("h2", { text: "Steps" })),
      h("div", { class: "table-wrap" }, h("table", {},
        h("thead", {}, h("tr", {}, h("th", { text: "Step" }), h("th", { text: "Started" }), h("th", { class: "r", text: "Took" }), h("th", { text: "Result" }), h("th", { text: "Detail" }))),
        h("tbody", {}, d.steps.map((st) => h("tr", { class: "step-row" },
          h("td", { class: "dsname", text: st.name }),
          h("td", { class: "nowrap num", text: `+${fmtDur(st.offset_seconds)}` }),
          h("td", { class: "r num nowrap", text: st.seconds === null ? "—" : fmtDur(st.seconds) }),
          h("td", {}, st.ok === true ? badge("pass", "ok") : st.ok === false ? badge("fail", "failed") : badge("running", "unfinished")),
          h("td", {}, st.detail ? h("pre", { class: "stepdetail", text: st.detail }) : h("span", { class: "faint", text: "–" }))))))));
    mount($("main"), h("a", { class: "back", href: pageHref(), text: "← All datastores and drills" }), panel, tl, stepsTable);
    const draw = () => { const slot = $("timeline-slot"); if (slot) mount(slot, timeline(d, slot.clientWidth || 800)); };
    requestAnimationFrame(draw);
    window.addEventListener("resize", draw);
    document.title = `${d.id} · Disaster Recovery`;
    document.body.dataset.ready = "drill";
  }

  // -- start --------------------------------------------------------------------------------------------------------
  async function start() {
    try {
      const health = await api("health");
      renderSource(health); renderRegions(health); renderBanners(health);
      if (!["ok", "empty"].includes(health.status)) { showSource(health); document.body.dataset.ready = health.status; return; }
      if (state.drill) await drillView(state.drill);
      else await overview();
    } catch (err) {
      showError(err);
      document.body.dataset.ready = "error";
    }
  }
  start();
})();
