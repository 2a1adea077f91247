"""The dashboard's stylesheet and script, kept as Python strings so they ship inside the package
(no package-data configuration, nothing fetched from anywhere) and are served by the app itself
from ``/dashboard/dashboard.css`` and ``/dashboard/dashboard.js`` (CSP ``'self'``, no inline
code, so no nonce is needed)."""

from __future__ import annotations

__all__ = ["DASHBOARD_CSS", "DASHBOARD_JS"]

DASHBOARD_CSS = """
:root {
  --fg: #1d232b; --muted: #5c6773; --line: #d9dee4; --bg: #f6f7f9; --card: #fff;
  --accent: #2457c5; --cf: #2457c5; --text: #7a3fb8; --popular: #a86400;
  --exploration: #0f7a55; --rule: #5c6773; --bad: #b3261e; --good: #0f7a55;
}
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg); background: var(--bg); }
header { display: flex; align-items: center; gap: 1.5rem; padding: .6rem 1.2rem;
  background: #14213d; color: #fff; }
header a { color: #dbe4ff; text-decoration: none; }
header a.brand { color: #fff; font-weight: 700; font-size: 1.1rem; }
header nav { display: flex; gap: 1rem; }
header nav a.active { color: #fff; border-bottom: 2px solid #fff; }
header .who { margin-left: auto; font-size: .85rem; color: #c9d3ea; }
main { padding: 1rem 1.2rem 2rem; max-width: 1280px; margin: 0 auto; }
h1 { font-size: 1.35rem; margin: .2rem 0 1rem; }
h2 { font-size: 1.05rem; margin: 0 0 .6rem; }
h2.spaced { margin-top: 1rem; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(330px, 1fr)); gap: 1rem; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: .9rem 1rem; margin-bottom: 1rem; }
.kpis { display: flex; flex-wrap: wrap; gap: .6rem 1.4rem; margin-bottom: .6rem; }
.kpi { min-width: 6.5rem; }
.kpi .v { font-size: 1.45rem; font-weight: 650; }
.kpi .l { color: var(--muted); font-size: .8rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .32rem .45rem; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { font-size: .8rem; color: var(--muted); font-weight: 600; }
td { overflow-wrap: anywhere; }
td.num { overflow-wrap: normal; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.muted { color: var(--muted); }
.small { font-size: .82rem; }
.ok { color: var(--good); font-weight: 600; }
.bad { color: var(--bad); font-weight: 600; }
.badge { display: inline-block; padding: 0 .45rem; border-radius: 9px; font-size: .78rem;
  color: #fff; background: var(--rule); white-space: nowrap; }
.badge.cf { background: var(--cf); } .badge.text { background: var(--text); }
.badge.popular { background: var(--popular); } .badge.exploration { background: var(--exploration); }
.badge.new { background: #fff; color: var(--good); border: 1px solid var(--good); }
.badge.serving { background: var(--good); } .badge.current { background: var(--accent); }
form.inline { display: flex; flex-wrap: wrap; gap: .5rem .8rem; align-items: end; }
form.inline label { display: flex; flex-direction: column; font-size: .8rem; color: var(--muted); }
input, select, button { font: inherit; padding: .3rem .45rem; border: 1px solid var(--line);
  border-radius: 5px; background: #fff; color: var(--fg); }
input[type=number] { width: 6.2rem; }
input.wide { width: 22rem; max-width: 100%; }
button { cursor: pointer; background: var(--accent); color: #fff; border-color: var(--accent); }
button.secondary { background: #fff; color: var(--accent); }
button.small { padding: .1rem .4rem; font-size: .78rem; white-space: nowrap; }
meter { width: 4rem; height: .7rem; vertical-align: middle; }
ul.evidence { margin: .2rem 0 0; padding-left: 1rem; font-size: .82rem; color: var(--muted); }
svg.spark { width: 100%; height: 64px; display: block; }
svg.spark .bar { fill: var(--accent); } svg.spark .bar.fb { fill: var(--exploration); }
svg.spark .axis { stroke: var(--line); }
.error { border-left: 4px solid var(--bad); }
.status { min-height: 1.2rem; font-size: .85rem; color: var(--bad); }
footer { color: var(--muted); font-size: .78rem; text-align: center; padding: 1rem; }
"""

DASHBOARD_JS = """
"use strict";
(function () {
  function detail(response) {
    return response.json().then(function (body) {
      var d = body && body.detail;
      return typeof d === "string" ? d : "HTTP " + response.status;
    }, function () { return "HTTP " + response.status; });
  }

  // Login: the key travels once, in the X-API-Key header of a same-origin GET; the server
  // answers with an HttpOnly session cookie. The key input has no name, so the form can never
  // put it in a URL, even without this script.
  var login = document.getElementById("login-form");
  if (login) {
    login.addEventListener("submit", function (event) {
      event.preventDefault();
      var out = document.getElementById("login-status");
      var key = document.getElementById("login-key").value;
      out.textContent = "";
      fetch("/dashboard/login", {
        headers: { "X-API-Key": key }, credentials: "same-origin", cache: "no-store"
      }).then(function (response) {
        if (response.ok) { window.location.reload(); return null; }
        return detail(response).then(function (text) { out.textContent = text; });
      }).catch(function (err) { out.textContent = String(err); });
    });
  }

  // Live panel: re-rendered by the server every few seconds.
  var live = document.getElementById("live");
  if (live && live.getAttribute("data-refresh")) {
    var every = (parseInt(live.getAttribute("data-every"), 10) || 5) * 1000;
    window.setInterval(function () {
      fetch(live.getAttribute("data-refresh"), { credentials: "same-origin", cache: "no-store" })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) { if (html !== null) { live.innerHTML = html; } })
        .catch(function () { /* the next poll tries again */ });
    }, every);
  }

  // "Not interested" (and undo): the existing write endpoint, with the write key typed on the
  // page; it is sent only in the X-API-Key header and never stored.
  var buttons = document.querySelectorAll("button[data-action='not-interested']");
  Array.prototype.forEach.call(buttons, function (button) {
    button.addEventListener("click", function () {
      var status = document.getElementById("write-status");
      var key = document.getElementById("write-key").value;
      if (!key) { status.textContent = "Type the write key first (changes need it)."; return; }
      var user = button.getAttribute("data-user");
      fetch("/users/" + encodeURIComponent(user) + "/not-interested", {
        method: "POST",
        credentials: "omit",
        cache: "no-store",
        headers: { "X-API-Key": key, "Content-Type": "application/json" },
        body: JSON.stringify({
          kind: button.getAttribute("data-kind"),
          value: button.getAttribute("data-value"),
          undo: button.getAttribute("data-undo") === "true"
        })
      }).then(function (response) {
        if (response.ok) { window.location.reload(); return null; }
        return detail(response).then(function (text) { status.textContent = text; });
      }).catch(function (err) { status.textContent = String(err); });
    });
  });
})();
"""
