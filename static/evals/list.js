// Evals list and home page: live counts/status per row, a banner for new evals,
// and a confirmation before delete.
(function () {
  "use strict";
  var script = document.currentScript;
  var states = Array.prototype.slice.call(document.querySelectorAll("[data-live-state]"));

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

  AlchemyLive.connect(script.dataset.ws, function (msg) {
    if (msg.type !== "eval.updated") return;
    var row = rowFor(msg.eval_id);
    if (!row) {
      var banner = document.querySelector("[data-new-evals]");
      if (banner && msg.status !== "deleted") banner.hidden = false;
      return;
    }
    if (msg.status === "deleted") { row.classList.add("gone"); set(row, "status", function (el) { el.className = "badge"; el.textContent = "deleted"; }); return; }
    var rate = msg.result_count ? Math.round(1000 * msg.pass_count / msg.result_count) / 10 : 0;
    set(row, "status", function (el) { el.className = "badge " + msg.status; el.textContent = msg.status; });
    set(row, "result_count", function (el) { el.textContent = AlchemyLive.formatCount(msg.result_count); });
    set(row, "pass_rate", function (el) { el.textContent = rate + "%"; });
    set(row, "bar", function (el) { el.style.width = rate + "%"; });
  }, states);
})();
