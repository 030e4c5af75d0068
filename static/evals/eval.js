// Eval page: the result drawer, rating without a reload, and live updates that refresh
// only what changed. A socket message carries the eval's counts; when they move (new
// results, or a rating anywhere) the stats and the table's counts/pagination are fetched
// again, the rows only when the page on screen can change (it is not full), and nothing
// moves under the reader: content above the table keeps the table where it was.
(function () {
  "use strict";
  var script = document.currentScript;
  var data = script.dataset;
  var evalId = data.evalId;
  var limit = Number(data.limit || 25);
  var results = document.getElementById("results");
  var statsBox = document.getElementById("stats");
  var drawer = document.getElementById("drawer");
  var drawerBody = document.getElementById("drawer-body");
  var permalink = drawer.querySelector("[data-drawer-permalink]");
  var banner = document.getElementById("new-results");
  var states = Array.prototype.slice.call(document.querySelectorAll("[data-live-state]"));

  // What the page shows, to tell a message that changes something from a repeat.
  var KEYS = ["result_count", "pass_count", "fail_count", "error_count", "last_written_at"];
  var seen = {
    result_count: Number(data.resultCount || 0),
    pass_count: Number(data.passCount || 0),
    fail_count: Number(data.failCount || 0),
    error_count: Number(data.errorCount || 0),
    last_written_at: data.lastWritten || null
  };
  var filteredCount = Number(data.viewCount || 0);
  var unseen = 0;

  function partialUrl(part, extra) {
    var params = new URLSearchParams(location.search);
    params.set("partial", part);
    Object.keys(extra || {}).forEach(function (key) { params.set(key, extra[key]); });
    return location.pathname + "?" + params.toString();
  }
  function get(url) {
    return fetch(url, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.text();
    });
  }
  function fragment(html) {
    var template = document.createElement("template");
    template.innerHTML = html;
    return template.content;
  }
  // Run `change` (which may resize what is above the table) with the table held in place.
  function keepingScroll(change) {
    var before = results.getBoundingClientRect().top;
    change();
    var moved = results.getBoundingClientRect().top - before;
    if (moved) window.scrollBy(0, moved);
  }
  function rows() { return results.querySelectorAll("tr[data-test-idx]"); }
  function lastTestIdx() {
    var all = rows();
    return all.length ? all[all.length - 1].dataset.testIdx : null;
  }

  // --- drawer ------------------------------------------------------------------------
  var openLink = null, loads = 0;
  function withBack(href) {
    var url = new URL(href, location.href);
    url.searchParams.set("back", location.pathname + location.search);
    return url;
  }
  function select(link) {
    results.querySelectorAll("td.selected").forEach(function (td) { td.classList.remove("selected"); });
    if (link) link.closest("td").classList.add("selected");
  }
  function showError(text) {
    var p = document.createElement("p");
    p.className = "error";
    p.textContent = text;
    drawerBody.replaceChildren(p);
  }
  function openDrawer(link) {
    openLink = link;
    select(link);
    var page = withBack(link.href);
    permalink.href = page.pathname + page.search;
    var url = withBack(link.href);
    url.searchParams.set("partial", "1");
    drawerBody.innerHTML = '<p class="muted">Loading…</p>';
    drawer.hidden = false;
    document.body.classList.add("drawer-open");
    var load = ++loads;
    fetch(url, { credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) {
          var err = new Error(r.status === 404 ? "This result no longer exists."
            : "Could not load this result (HTTP " + r.status + ").");
          err.shown = true;
          throw err;
        }
        return r.text();
      })
      .then(function (html) { if (load === loads) drawerBody.innerHTML = html; })
      .catch(function (err) {
        if (load === loads) showError(err.shown ? err.message : "Could not load this result (network error).");
      });
  }
  function closeDrawer() {
    drawer.hidden = true;
    document.body.classList.remove("drawer-open");
    select(null);
    openLink = null;
  }
  // Previous/next result in table order (cells left to right, rows top to bottom).
  function step(delta) {
    if (!openLink) return;
    var links = Array.prototype.slice.call(results.querySelectorAll("a[data-drawer]"));
    var id = openLink.closest("td").dataset.resultId;
    var at = links.findIndex(function (a) { return a.closest("td").dataset.resultId === id; });
    var next = links[at + delta];
    if (at >= 0 && next) {
      openDrawer(next);
      next.scrollIntoView({ block: "nearest", inline: "nearest" });
    }
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest("a[data-drawer]");
    if (link && !event.metaKey && !event.ctrlKey && !event.shiftKey && event.button === 0) {
      event.preventDefault();
      openDrawer(link);
      return;
    }
    if (event.target.closest("[data-close-drawer]")) closeDrawer();
    var stepper = event.target.closest("[data-drawer-step]");
    if (stepper) step(Number(stepper.dataset.drawerStep));
    if (event.target.closest("[data-show-new]")) showNew();
    if (event.target.closest("[data-dismiss-new]")) hideBanner();
  });
  document.addEventListener("keydown", function (event) {
    if (drawer.hidden) return;
    if (event.key === "Escape") { closeDrawer(); return; }
    var typing = /^(INPUT|TEXTAREA|SELECT)$/.test((event.target.tagName || "")) || event.target.isContentEditable;
    if (typing || event.metaKey || event.ctrlKey || event.altKey) return;
    if (event.key === "j") step(1);
    if (event.key === "k") step(-1);
  });

  // Drag the drawer's left edge to resize it; the page makes room (see .drawer-open).
  var handle = drawer.querySelector("[data-drawer-resize]");
  var stored = Number(localStorage.getItem("alchemy.drawerWidth") || 0);
  function setWidth(px) {
    var width = Math.max(320, Math.min(px, window.innerWidth * 0.8));
    document.documentElement.style.setProperty("--drawer-w", Math.round(width) + "px");
    return width;
  }
  if (stored) setWidth(stored);
  handle.addEventListener("pointerdown", function (event) {
    event.preventDefault();
    handle.setPointerCapture(event.pointerId);
    function move(e) { stored = setWidth(window.innerWidth - e.clientX); }
    function up() {
      handle.removeEventListener("pointermove", move);
      handle.removeEventListener("pointerup", up);
      localStorage.setItem("alchemy.drawerWidth", String(Math.round(stored)));
    }
    handle.addEventListener("pointermove", move);
    handle.addEventListener("pointerup", up);
  });

  // Rating inside the drawer: post, redraw the rated cell, reload the drawer. The stats
  // follow over the socket (the rating moves the eval's counts).
  function markCell(id, passed, score) {
    var td = results.querySelector('td.cell[data-result-id="' + id + '"]');
    if (!td) return;
    td.classList.remove("pass", "fail", "error");
    td.classList.add(passed ? "pass" : "fail");
    var badge = td.querySelector("[data-verdict]");
    badge.className = "badge " + (passed ? "pass" : "fail");
    badge.textContent = passed ? "PASS" : "FAIL";
    var scoreEl = td.querySelector("[data-score]");
    if (scoreEl && score !== null && score !== undefined) scoreEl.textContent = Number(score).toFixed(2);
  }
  drawerBody.addEventListener("submit", function (event) {
    var form = event.target.closest("form.rate");
    if (!form) return;
    event.preventDefault();
    var body = new FormData(form);
    if (event.submitter) body.set(event.submitter.name, event.submitter.value);
    fetch(form.action, { method: "POST", body: body, credentials: "same-origin",
                         headers: { "Accept": "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (rated) {
        markCell(rated.id, rated.pass, rated.score);
        if (openLink) openDrawer(openLink);
      })
      .catch(function () { showError("The rating was not saved; try again."); });
  });

  // --- live --------------------------------------------------------------------------
  function hideBanner() { banner.hidden = true; unseen = 0; }
  function announce(count, onThisPage) {
    unseen += count;
    banner.dataset.here = onThisPage ? "1" : "";
    banner.querySelector("[data-new-count]").textContent =
      AlchemyLive.formatCount(unseen) + " new test" + (unseen === 1 ? "" : "s") +
      (onThisPage ? " below." : " in this view, on later pages.");
    banner.hidden = false;
  }
  function showNew() {
    var fresh = results.querySelector("tr.fresh");
    var last = results.querySelector("a[data-last-page]");
    hideBanner();
    if (fresh) fresh.scrollIntoView({ block: "center" });
    else if (last) location.href = last.href;
  }
  function refreshTable() {
    var before = {};
    rows().forEach(function (tr) { before[tr.dataset.testIdx] = true; });
    var selected = openLink ? openLink.closest("td").dataset.resultId : null;
    return get(partialUrl("table")).then(function (html) {
      keepingScroll(function () { results.innerHTML = html; });
      rows().forEach(function (tr) { if (!before[tr.dataset.testIdx]) tr.classList.add("fresh"); });
      if (selected) {
        var td = results.querySelector('td.cell[data-result-id="' + selected + '"]');
        openLink = td ? td.querySelector("a[data-drawer]") : openLink;
        if (td) td.classList.add("selected");
      }
    });
  }
  function refreshCounts() {
    var last = lastTestIdx();
    return get(partialUrl("counts", last === null ? {} : { last: last })).then(function (html) {
      var fresh = fragment(html);
      var count = Number(fresh.querySelector('[data-swap="meta"]').dataset.count);
      var grew = count - filteredCount;
      filteredCount = count;
      // A page that is not full is the view's last: new tests land on it, so fetch it.
      if (rows().length < limit) {
        return refreshTable().then(function () { if (grew > 0) announce(grew, true); });
      }
      fresh.querySelectorAll("[data-swap]").forEach(function (el) {
        var old = results.querySelector('[data-swap="' + el.dataset.swap + '"]');
        if (old) old.replaceWith(el);
      });
      if (grew > 0) announce(grew, false);
    });
  }
  function refreshStats() {
    return get(partialUrl("stats")).then(function (html) {
      keepingScroll(function () { statsBox.innerHTML = html; });
    });
  }
  // One refresh at a time; messages during one ask for exactly one more. Counts before
  // stats, not beside them: in a filtered view both read the same filtered summary, which
  // the server caches, so the second request finds it computed.
  var running = false, again = false;
  function refresh() {
    if (running) { again = true; return; }
    running = true;
    refreshCounts()
      .catch(function () { /* the stats may still load */ })
      .then(refreshStats)
      .catch(function () { /* the next message retries */ })
      .then(function () {
        running = false;
        if (again) { again = false; refresh(); }
      });
  }

  AlchemyLive.connect(data.ws, function (msg) {
    if (msg.type !== "eval.updated" || msg.eval_id !== evalId) return;
    var status = document.getElementById("eval-status");
    if (msg.status === "deleted") {
      status.className = "badge"; status.textContent = "deleted";
      return;
    }
    status.className = "badge " + msg.status;
    status.textContent = msg.status;
    var changed = KEYS.some(function (key) {
      var value = msg[key] === undefined ? null : msg[key];
      return value !== seen[key];
    });
    if (!changed) return;
    KEYS.forEach(function (key) { seen[key] = msg[key] === undefined ? null : msg[key]; });
    document.getElementById("result-count").textContent = AlchemyLive.formatCount(seen.result_count);
    refresh();
  }, states);
})();
