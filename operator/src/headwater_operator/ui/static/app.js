// Headwater UI: live updates, the virtualized task-run list, log following.
// Hand-written, no framework, no build step; served by the UI itself (air-gapped).
"use strict";

(function () {
  const csrf = () => document.querySelector('meta[name="csrf-token"]').content;

  // --- live updates: server-sent events from the watches ----------------------------
  // Regions marked data-live are re-fetched (debounced) when a change concerns the page.
  let refreshTimer = null;
  function refreshLive() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(async function () {
      const regions = document.querySelectorAll("[data-live]");
      if (!regions.length) return;
      const response = await fetch(location.href, { headers: { Accept: "text/html" } });
      if (!response.ok) return;
      const next = new DOMParser().parseFromString(await response.text(), "text/html");
      regions.forEach(function (region) {
        const key = region.getAttribute("data-live");
        const fresh = next.querySelector('[data-live="' + CSS.escape(key) + '"]');
        if (fresh && !region.contains(document.activeElement)) region.replaceWith(fresh);
      });
      document.dispatchEvent(new CustomEvent("hw:refreshed"));
    }, 700);
  }
  function concernsPage(change) {
    const page = document.body.dataset;
    // A subflow run's page shows its root FlowRun's record: that FlowRun's changes.
    if (page.page === "run" || page.page === "subflow") {
      return (change.kind === "FlowRun" && change.namespace === page.namespace && change.name === page.name) ||
        (change.kind === "Event" && change.namespace === page.namespace && change.involvedName === page.name);
    }
    if (page.page === "runs") return change.kind === "FlowRun" || change.kind === "Deployment";
    if (page.page === "list") return change.kind !== "Event";
    // A Deployment's, Schedule's, Flow's or Automation's page shows objects of its
    // namespace (its runs, schedules, conditions): refresh on any change there but Events.
    if (page.page === "deployment" || page.page === "schedule" || page.page === "flow" ||
        page.page === "automation") {
      return change.kind !== "Event" && change.namespace === page.namespace;
    }
    return false;
  }
  function connect() {
    if (!window.EventSource || !document.querySelector("[data-live]")) return;
    const status = document.querySelector('[data-testid="live-status"]');
    const source = new EventSource("/events");
    // A change between rendering this page and subscribing (or while reconnecting) has
    // no event left to announce it: catch up once each time the stream opens.
    source.onopen = function () {
      if (status) status.textContent = "live";
      refreshLive();
    };
    source.onerror = function () { if (status) status.textContent = "reconnecting…"; };
    source.addEventListener("change", function (event) {
      if (concernsPage(JSON.parse(event.data))) refreshLive();
    });
  }

  // --- the virtualized task-run list -------------------------------------------------
  // A single-select listbox (WAI-ARIA APG "Listbox", selection follows focus): the list
  // element keeps the keyboard focus and names its active row in aria-activedescendant.
  // Only a window of rows is in the DOM, plus the active row wherever it is, so that
  // reference always resolves, also after a scroll redraws the window. Arrows, Page
  // Up/Down, Home and End move the active row; Enter (or a click) opens its detail below.
  // Down in the search box moves into the list.
  const ROW = 28;
  function taskList(root) {
    const url = root.dataset.src;
    const viewport = root.querySelector(".vlist");
    const spacer = root.querySelector(".spacer");
    const search = root.querySelector('[data-testid="task-search"]');
    const count = root.querySelector('[data-testid="task-count"]');
    const detail = document.querySelector('[data-testid="task-detail"]');
    let rows = [];
    let active = -1;
    let opened = null;
    const optionId = function (i) { return viewport.id + "-option-" + i; };
    function cell(text, cls) {
      const span = document.createElement("span");
      span.textContent = text == null ? "" : String(text);
      if (cls) span.className = cls;
      return span;
    }
    function option(i) {
      const t = rows[i];
      const div = document.createElement("div");
      div.className = "vrow";
      div.id = optionId(i);
      div.style.top = i * ROW + "px";
      div.setAttribute("role", "option");
      div.setAttribute("aria-selected", i === active ? "true" : "false");
      if (t.id === opened) div.setAttribute("aria-current", "true");
      div.setAttribute("aria-posinset", String(i + 1));
      div.setAttribute("aria-setsize", String(rows.length));
      div.dataset.testid = "task-row";
      div.dataset.index = String(i);
      div.append(cell("\u00a0".repeat(2 * (t.depth || 0)) + t.label), cell(t.state, "st-" + t.state),
        cell(t.start), cell(t.duration), cell(t.attempts + " attempt" + (t.attempts === 1 ? "" : "s")),
        cell(t.cacheHit ? "cache hit" : ""));
      return div;
    }
    function draw() {
      spacer.style.height = rows.length * ROW + "px";
      const first = Math.max(0, Math.floor(viewport.scrollTop / ROW) - 5);
      const last = Math.min(rows.length, first + Math.ceil(viewport.clientHeight / ROW) + 10);
      const shown = [];
      for (let i = first; i < last; i++) shown.push(option(i));
      if (active >= 0 && (active < first || active >= last)) shown.push(option(active));
      spacer.replaceChildren(...shown);
      if (active >= 0) viewport.setAttribute("aria-activedescendant", optionId(active));
      else viewport.removeAttribute("aria-activedescendant");
    }
    function activate(i) {
      if (i < 0 || i >= rows.length) return;
      active = i;
      const top = i * ROW;
      if (top < viewport.scrollTop) viewport.scrollTop = top;
      else if (top + ROW > viewport.scrollTop + viewport.clientHeight) viewport.scrollTop = top + ROW - viewport.clientHeight;
      draw();
    }
    function open(i) {
      if (i < 0 || i >= rows.length) return Promise.resolve();
      opened = rows[i].id;
      activate(i);
      return showDetail(rows[i]);
    }
    async function showDetail(t) {
      if (!detail) return;
      const response = await fetch(url + "/" + encodeURIComponent(t.id) + location.search.replace(/^\?/, "?"));
      if (!response.ok) { detail.textContent = "Could not load the task run (" + response.status + ")."; return; }
      const html = await response.text();
      const doc = new DOMParser().parseFromString(html, "text/html");
      detail.replaceChildren(...doc.body.childNodes);
    }
    async function load() {
      const params = new URLSearchParams(location.search);
      params.set("q", search.value);
      const response = await fetch(url + "?" + params.toString(), { headers: { Accept: "application/json" } });
      if (!response.ok) { count.textContent = "Could not load task runs (" + response.status + ")."; return; }
      const data = await response.json();
      rows = data.taskRuns;
      active = -1;
      count.textContent = data.matched + " of " + data.total + " task runs";
      viewport.scrollTop = 0;
      draw();
    }
    viewport.addEventListener("scroll", function () { window.requestAnimationFrame(draw); });
    spacer.addEventListener("click", function (event) {
      const row = event.target.closest('[role="option"]');
      if (row) open(Number(row.dataset.index));
    });
    viewport.addEventListener("keydown", function (event) {
      const page = Math.max(1, Math.floor(viewport.clientHeight / ROW) - 1);
      const moves = { ArrowDown: 1, ArrowUp: -1, PageDown: page, PageUp: -page };
      if (event.key in moves) { event.preventDefault(); activate(Math.min(rows.length - 1, Math.max(0, (active < 0 ? 0 : active + moves[event.key])))); }
      else if (event.key === "Home") { event.preventDefault(); activate(0); }
      else if (event.key === "End") { event.preventDefault(); activate(rows.length - 1); }
      else if (event.key === "Enter" && active >= 0) { event.preventDefault(); open(active); }
    });
    search.addEventListener("keydown", function (event) {
      if (event.key !== "ArrowDown" || !rows.length) return;
      event.preventDefault();
      viewport.focus();
      activate(active < 0 ? 0 : active);
    });
    let typing = null;
    search.addEventListener("input", function () { clearTimeout(typing); typing = setTimeout(load, 200); });
    // A task run named in the address (?task=<id>: a subflow run's "called by task run"
    // link to its parent's page) is opened once the list has loaded.
    const linked = new URLSearchParams(location.search).get("task");
    load().then(async function () {
      if (!linked || !detail) return;
      const i = rows.findIndex(function (t) { return t.id === linked; });
      if (i < 0) { detail.textContent = "No task run " + linked + " in this list."; return; }
      await open(i);
      detail.scrollIntoView({ block: "start" });
    });
  }

  // --- logs: polled from the JSON endpoint (they come from the pod or the store) ----
  function logs(root) {
    const url = root.dataset.src;
    const out = root.querySelector(".logs");
    const level = root.querySelector('[data-testid="log-level"]');
    const attempt = root.querySelector('[data-testid="log-attempt"]');
    const follow = root.querySelector('[data-testid="log-follow"]');
    const note = root.querySelector('[data-testid="log-source"]');
    let timer = null;
    async function load() {
      clearTimeout(timer);
      const params = new URLSearchParams({ attempt: attempt.value, level: level.value });
      const response = await fetch(url + "?" + params.toString(), { headers: { Accept: "application/json" } });
      if (!response.ok) { note.textContent = "Could not load logs (" + response.status + ")."; return; }
      const data = await response.json();
      const atBottom = out.scrollTop + out.clientHeight >= out.scrollHeight - 4;
      out.replaceChildren();
      data.lines.forEach(function (line) {
        const div = document.createElement("div");
        div.className = "log-line lvl-" + line.level;
        div.dataset.testid = "log-line";
        div.dataset.level = line.level;
        div.textContent = line.text;
        out.append(div);
      });
      note.textContent = data.note;
      if (atBottom) out.scrollTop = out.scrollHeight;
      if (follow.checked && data.running) timer = setTimeout(load, 2000);
    }
    [level, attempt, follow].forEach(function (control) { control.addEventListener("change", load); });
    load();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-task-list]").forEach(taskList);
    document.querySelectorAll("[data-log-view]").forEach(logs);
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    });
    connect();
  });
  window.headwater = { csrf: csrf };
})();
