// A websocket that reconnects with exponential backoff (no polling loop).
// window.AlchemyLive.connect(path, onMessage, stateEl) → {close()}
(function () {
  "use strict";
  var STOP_CODES = { 4401: "log in again for live updates", 4404: "eval not found" };

  function connect(path, onMessage, stateEls) {
    var delay = 500, maxDelay = 30000, socket = null, stopped = false, timer = null;
    function show(text, cls) {
      (stateEls || []).forEach(function (el) { el.textContent = text; el.dataset.state = cls; });
    }
    function open() {
      var scheme = location.protocol === "https:" ? "wss://" : "ws://";
      socket = new WebSocket(scheme + location.host + path);
      socket.onopen = function () { delay = 500; show("● live", "open"); };
      socket.onmessage = function (event) {
        var data;
        try { data = JSON.parse(event.data); } catch (e) { return; }
        onMessage(data);
      };
      socket.onclose = function (event) {
        if (stopped) return;
        if (STOP_CODES[event.code]) { show(STOP_CODES[event.code], "stopped"); return; }
        show("reconnecting…", "retry");
        // Jittered exponential backoff; a reconnect greets us with the current state.
        timer = setTimeout(open, delay * (0.75 + Math.random() / 2));
        delay = Math.min(delay * 2, maxDelay);
      };
    }
    // Back online or tab visible again: retry now instead of waiting out the backoff.
    function retryNow() {
      if (!stopped && socket && socket.readyState === WebSocket.CLOSED) {
        clearTimeout(timer); delay = 500; open();
      }
    }
    window.addEventListener("online", retryNow);
    document.addEventListener("visibilitychange", function () { if (!document.hidden) retryNow(); });
    open();
    return { close: function () { stopped = true; clearTimeout(timer); if (socket) socket.close(); } };
  }

  function formatCount(n) { return Number(n || 0).toLocaleString("en-US"); }

  window.AlchemyLive = { connect: connect, formatCount: formatCount };
})();
