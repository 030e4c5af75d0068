// Eval page: the result drawer, JSON-free rating, and live updates that refresh only
// what changed — counts and stats at once; the table only when the user asks (no jumps).
(function () {
  "use strict";
  var script = document.currentScript;
  var evalId = script.dataset.evalId;
  var shown = Number(script.dataset.resultCount || 0);
  var drawer = document.getElementById("drawer");
  var drawerBody = document.getElementById("drawer-body");
  var banner = document.getElementById("new-results");
  var states = Array.prototype.slice.call(document.querySelectorAll("[data-live-state]"));

  function partialUrl(part) {
    var params = new URLSearchParams(location.search);
    params.set("partial", part);
    return location.pathname + "?" + params.toString();
  }
  function fetchInto(part, target) {
    return fetch(partialUrl(part), { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
      .then(function (html) { target.innerHTML = html; });
  }

  // --- drawer ------------------------------------------------------------------------
  function openDrawer(href) {
    var url = new URL(href, location.href);
    url.searchParams.set("partial", "1");
    url.searchParams.set("back", location.pathname + location.search);
    drawerBody.innerHTML = '<p class="muted">Loading…</p>';
    drawer.hidden = false;
    fetch(url, { credentials: "same-origin" })
      .then(function (r) { return r.text(); })
      .then(function (html) { drawerBody.innerHTML = html; });
  }
  document.addEventListener("click", function (event) {
    var link = event.target.closest("a[data-drawer]");
    if (link && !event.metaKey && !event.ctrlKey && !event.shiftKey) {
      event.preventDefault();
      document.querySelectorAll("td.selected").forEach(function (td) { td.classList.remove("selected"); });
      link.parentElement.classList.add("selected");
      openDrawer(link.href);
    }
    if (event.target.closest("[data-close-drawer]")) drawer.hidden = true;
    if (event.target.closest("[data-show-new]")) {
      banner.hidden = true;
      unseen = 0;
      fetchInto("table", document.getElementById("results")).then(function () {
        rowsOnPage = document.querySelectorAll("#results tr[data-test-idx]").length;
      });
    }
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") drawer.hidden = true;
  });

  // Rating inside the drawer: post, then reload the drawer (the stats follow over the socket).
  drawerBody.addEventListener("submit", function (event) {
    var form = event.target.closest("form.rate");
    if (!form) return;
    event.preventDefault();
    var data = new FormData(form);
    if (event.submitter) data.set(event.submitter.name, event.submitter.value);
    fetch(form.action, { method: "POST", body: data, credentials: "same-origin",
                         headers: { "Accept": "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error(r.status); })
      .then(function () {
        openDrawer(form.action.replace(/rate\/$/, ""));
        fetchInto("stats", document.getElementById("stats"));
      });
  });

  // --- live --------------------------------------------------------------------------
  var limit = Number(script.dataset.limit || 25);
  var rowsOnPage = Number(script.dataset.rows || 0);
  var unseen = 0;
  AlchemyLive.connect(script.dataset.ws, function (msg) {
    if (msg.type !== "eval.updated" || msg.eval_id !== evalId) return;
    var status = document.getElementById("eval-status");
    if (msg.status === "deleted") {
      status.className = "badge"; status.textContent = "deleted";
      return;
    }
    status.className = "badge " + msg.status;
    status.textContent = msg.status;
    if (msg.result_count === shown) return;
    var added = msg.result_count - shown;
    shown = msg.result_count;
    document.getElementById("result-count").textContent = AlchemyLive.formatCount(shown);
    fetchInto("stats", document.getElementById("stats"));
    // New results land at the end; only a page that is not full can change. Say so
    // instead of moving rows under the reader.
    if (rowsOnPage < limit && added > 0) {
      unseen += added;
      banner.querySelector("[data-new-count]").textContent =
        AlchemyLive.formatCount(unseen) + " new result" + (unseen === 1 ? "" : "s") + ".";
      banner.hidden = false;
    }
  }, states);
})();
