// Gatehouse adds this script to the app's pages so that an open tab follows its session: when the session
// ends (signed out elsewhere, disabled, password changed, idle or absolute timeout) the tab leaves the app
// for the sign-in page, which brings it back here afterwards; shortly before an idle timeout it offers
// "Stay signed in". It talks to /_gatehouse/session/live (see src/web/session_live.rs) and touches nothing
// of the app's: its one element lives in a shadow root, styled through the CSSOM (no inline style for a
// Content-Security-Policy to refuse).
(function () {
  "use strict";
  if (window.__gatehouseFollowsSession) return;
  window.__gatehouseFollowsSession = true;

  var LIVE = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/_gatehouse/session/live";
  var retryMs = 1000;
  var leaving = false;
  var socket = null;
  var banner = null;
  var ticker = null;

  function signIn(reason) {
    if (leaving) return;
    leaving = true;
    if (socket) socket.close();
    var back = location.pathname + location.search;
    // The sign-in page says why: "idle", "expired", or ended by someone ("1").
    var why = reason === "idle" || reason === "expired" ? reason : "1";
    location.replace("/_gatehouse/login?ended=" + why + "&rd=" + encodeURIComponent(back));
  }

  function connect() {
    socket = new WebSocket(LIVE);
    socket.onopen = function () { retryMs = 1000; };
    socket.onmessage = function (event) {
      var message;
      try { message = JSON.parse(event.data); } catch (e) { return; }
      if (message.state === "ended") signIn(message.reason);
      else if (message.state === "ending") showBanner(message);
      else hideBanner();
    };
    socket.onclose = function () {
      // Gatehouse restarting or the network gone: try again; a session that ended meanwhile says so.
      if (leaving) return;
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 30000);
    };
  }

  function style(element, rules) {
    for (var name in rules) element.style.setProperty(name, rules[name]);
    return element;
  }

  function showBanner(message) {
    hideBanner();
    var extendable = message.extendable;
    var endsAt = Date.now() + message.ends_in * 1000;
    var primary = message.primary || "#ff4b4b";
    var onPrimary = message.on_primary || "#ffffff";
    var dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
    var host = document.createElement("div");
    host.id = "gatehouse-session";
    var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
    var box = style(document.createElement("div"), {
      position: "fixed", "z-index": "2147483647", left: "50%", bottom: "1.5rem", transform: "translateX(-50%)",
      "max-width": "calc(100vw - 2rem)", width: "32rem", "box-sizing": "border-box", padding: "0.875rem 1rem",
      display: "flex", "flex-wrap": "wrap", gap: "0.75rem", "align-items": "center", "justify-content": "space-between",
      background: dark ? "#262730" : "#ffffff", color: dark ? "#fafafa" : "#31333f",
      border: "1px solid " + (dark ? "rgba(250,250,250,0.2)" : "rgba(49,51,63,0.2)"), "border-radius": "0.5rem",
      "box-shadow": "0 4px 16px rgba(0,0,0,0.18)", "line-height": "1.4", "font-size": "1rem",
      "font-family": '"Source Sans Pro", "Source Sans 3", -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, sans-serif'
    });
    box.setAttribute("role", "alertdialog");
    box.setAttribute("aria-live", "assertive");
    box.setAttribute("aria-label", "Sign-in ending");
    var text = style(document.createElement("span"), { flex: "1 1 14rem" });
    box.appendChild(text);
    var button = null;
    if (extendable) {
      button = style(document.createElement("button"), {
        font: "inherit", "font-weight": "600", cursor: "pointer", padding: "0.375rem 0.875rem",
        "border-radius": "0.5rem", border: "1px solid " + primary, background: primary, color: onPrimary
      });
      button.type = "button";
      button.textContent = "Stay signed in";
      button.addEventListener("click", function () {
        if (socket && socket.readyState === WebSocket.OPEN) socket.send("stay");
        button.disabled = true;
      });
      box.appendChild(button);
    }
    root.appendChild(box);
    function tick() {
      var left = Math.max(0, Math.round((endsAt - Date.now()) / 1000));
      var when = left >= 60 ? Math.floor(left / 60) + " min " + (left % 60) + " s" : left + " s";
      if (left === 0) {
        text.textContent = extendable
          ? "You are about to be signed out because this page has not been used."
          : "Your sign-in is ending. You will be asked to sign in again.";
      } else {
        text.textContent = extendable
          ? "You will be signed out in " + when + " because this page has not been used."
          : "Your sign-in ends in " + when + ". You will be asked to sign in again.";
      }
    }
    tick();
    ticker = setInterval(tick, 1000);
    document.body.appendChild(host);
    banner = host;
    if (button) button.focus({ preventScroll: true });
  }

  function hideBanner() {
    if (ticker) clearInterval(ticker);
    ticker = null;
    if (banner) banner.remove();
    banner = null;
  }

  connect();
})();
