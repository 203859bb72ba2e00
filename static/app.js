// The console's only script. htmx is configured by the htmx-config meta tag;
// this file adds what a Content-Security-Policy without inline script needs:
// the CSRF header on every htmx request, focus management after swaps, and
// times shown in the browser's time zone.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = csrfToken();
  });

  // ---------------------------------------------------------------- focus

  // Where focus goes after new content arrives, so keyboard and
  // screen-reader users hear the outcome and never land on <body>: the
  // first invalid field, else a flash message, else (when the focused
  // element was swapped away, as after a click on a sort or page link, or
  // after Back/Forward) the updated region.

  function focusLost() {
    var active = document.activeElement;
    return !active || active === document.body || !active.isConnected;
  }

  // The region that was updated: a focusable, labelled region inside the
  // new content, the new content itself, or the nearest focusable
  // container around it (`main` has tabindex=-1).
  function updatedRegion(root) {
    var region = root.querySelector('[role="region"][tabindex="-1"]');
    if (region) return region;
    if (root.matches('[tabindex="-1"]')) return root;
    return root.closest('[tabindex="-1"]');
  }

  function focusFirstInvalid(root) {
    var invalid = root.querySelector('[aria-invalid="true"]');
    if (!invalid) return false;
    invalid.focus();
    return true;
  }

  function focusAfterSwap(root) {
    if (focusFirstInvalid(root)) return;
    var flash = root.querySelector(".flash");
    if (flash) {
      flash.focus();
      return;
    }
    if (!focusLost()) return;
    var region = updatedRegion(root);
    if (region) region.focus({ preventScroll: true });
  }

  // A swapped-in dialog (the QR code) arrives open, which works without
  // script; reopen it as a modal so the page behind is inert.
  function openSwappedDialog(root) {
    var dialog = root.querySelector("dialog[data-modal]");
    if (!dialog || typeof dialog.showModal !== "function") return false;
    if (dialog.open) dialog.close();
    dialog.showModal();
    return true;
  }

  // htmx fires afterSwap on each element the swap put in place: the target
  // of an innerHTML swap, the new elements of an outerHTML swap (the old
  // target in event.detail is detached by then), the history element when
  // Back/Forward restores a page (event.detail has no target at all). So
  // the content is event.target, whatever the kind of swap.
  document.addEventListener("htmx:afterSwap", function (event) {
    var root = event.target;
    if (!(root instanceof Element) || !root.isConnected) return;
    if (openSwappedDialog(root)) return;
    focusAfterSwap(root);
  });

  // Times in the browser's time zone. The server writes each time as
  // <time datetime="RFC 3339"> with UTC text, which stays as it is without
  // script; here the text becomes the browser's local date and time with
  // the zone named ("29 Nov 2026, 14:02 CET"), or only the local calendar
  // day for data-show="day". Date fields marked data-today get the
  // browser's today (as their value and/or their max), and hidden
  // data-utc-offset fields its offset from UTC in minutes, so the server
  // knows which day "today" is for this person.
  function showLocalTimes(root) {
    // The elements matching `selector` in root, root itself included.
    var within = function (selector) {
      var found = Array.prototype.slice.call(root.querySelectorAll(selector));
      if (root.matches && root.matches(selector)) found.unshift(root);
      return found;
    };
    var day = new Intl.DateTimeFormat("en-GB", { day: "numeric", month: "short", year: "numeric" });
    var moment = new Intl.DateTimeFormat("en-GB", {
      day: "numeric",
      month: "short",
      year: "numeric",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
      timeZoneName: "short",
    });
    var times = within("time[datetime]");
    for (var i = 0; i < times.length; i++) {
      var time = times[i];
      var at = new Date(time.getAttribute("datetime"));
      if (isNaN(at.getTime())) continue;
      if (!time.hasAttribute("title")) time.setAttribute("title", time.textContent);
      time.textContent = (time.getAttribute("data-show") === "day" ? day : moment).format(at);
    }

    var now = new Date();
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    var today = now.getFullYear() + "-" + pad(now.getMonth() + 1) + "-" + pad(now.getDate());
    var dates = within("input[type=date][data-today]");
    for (var j = 0; j < dates.length; j++) {
      var what = dates[j].getAttribute("data-today").split(" ");
      if (what.indexOf("value") >= 0) dates[j].value = today;
      if (what.indexOf("max") >= 0) dates[j].max = today;
      // Once: a later swap must not overwrite a date the person picked.
      dates[j].removeAttribute("data-today");
    }
    var offsets = within("input[data-utc-offset]");
    for (var k = 0; k < offsets.length; k++) {
      offsets[k].value = String(-now.getTimezoneOffset());
    }
  }

  showLocalTimes(document);
  // New content from htmx (lists, panels, dialogs) arrives with UTC text.
  document.addEventListener("htmx:load", function (event) {
    showLocalTimes(event.detail.elt);
  });

  // A plain (script-free) post answered with its errors is a new page:
  // start at the first field to fix rather than at the top.
  focusFirstInvalid(document);

  // Print buttons (the printable invitation): no inline handlers under the CSP.
  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-print]")) window.print();
  });
})();
