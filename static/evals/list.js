// Evals list and home page: live counts/status per row, a banner for new evals,
// and a confirmation before delete.
(function () {
  "use strict";
  var script = document.currentScript;
  var states = Array.prototype.slice.call(document.querySelectorAll("[data-live-state]"));
  // Only an unfiltered first page (and home) can say "new evals arrived": elsewhere an
  // eval missing from the rows is just filtered out or on another page.
  var watchNew = script.hasAttribute("data-watch-new");

  document.querySelectorAll("[data-js-hide]").forEach(function (el) { el.hidden = true; });
  document.querySelectorAll("[data-js-show]").forEach(function (el) { el.hidden = false; });
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });

  function rowFor(id) {
    var rows = document.querySelectorAll("tr[data-eval-id]");
    for (var i = 0; i < rows.length; i++) if (rows[i].dataset.evalId === id) return rows[i];
    return null;
  }
  function set(row, name, fn) {
    var el = row.querySelector('[data-live="' + name + '"]');
    if (el) fn(el);
  }
  // Newer than the newest row shown (rows are newest first); with no rows, any eval is.
  function isNewer(createdAt) {
    var top = document.querySelector("tr[data-eval-id]");
    if (!top) return true;
    var when = Date.parse(createdAt), newest = Date.parse(top.dataset.created);
    return !isNaN(when) && (isNaN(newest) || when > newest);
  }

  AlchemyLive.connect(script.dataset.ws, function (msg) {
    if (msg.type !== "eval.updated") return;
    var row = rowFor(msg.eval_id);
    if (!row) {
      var banner = document.querySelector("[data-new-evals]");
      if (banner && watchNew && msg.status !== "deleted" && msg.created_at && isNewer(msg.created_at)) {
        banner.hidden = false;
      }
      return;
    }
    if (msg.status === "deleted") { row.classList.add("gone"); set(row, "status", function (el) { el.className = "badge"; el.textContent = "deleted"; }); return; }
    var rate = msg.result_count ? Math.round(1000 * msg.pass_count / msg.result_count) / 10 : 0;
    set(row, "status", function (el) { el.className = "badge " + msg.status; el.textContent = msg.status; });
    set(row, "result_count", function (el) { el.textContent = AlchemyLive.formatCount(msg.result_count); });
    set(row, "pass_rate", function (el) {
      el.textContent = msg.result_count ? rate + "%" : "no results yet";
      el.classList.toggle("muted", !msg.result_count);
    });
    set(row, "bar-box", function (el) { el.classList.toggle("empty", !msg.result_count); });
    set(row, "bar", function (el) { el.style.width = rate + "%"; });
  }, states);
})();
