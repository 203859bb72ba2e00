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

// ------------------------------------------------------------ drafts
// What was typed into a form survives a session that ended meanwhile
// (idle or absolute timeout, sign-out in another tab): the server answers
// such a post with the login page (`ended=form`, never the handler), and
// the typed values would be lost with the page.
//
// Every post form's values are kept in this tab's sessionStorage just
// before it is sent (passwords, hidden fields and the CSRF token never).
// The copy is dropped at the next page load or htmx answer, unless that is
// the login page for a session that ended, for the very page the form was
// on: then it waits there, and once the same user is signed in again and
// back on that page it is put back into the same form, with a note, and is
// never sent on its own. sessionStorage lives in this tab only and dies
// with it.
(function () {
  "use strict";

  var SENDING = "idm-draft-sending";
  var KEPT = "idm-draft-kept";
  var SKIPPED_TYPES = ["password", "hidden", "file", "submit", "button", "reset", "image"];

  function read(key) {
    try {
      var text = window.sessionStorage.getItem(key);
      return text ? JSON.parse(text) : null;
    } catch (e) {
      return null;
    }
  }

  function write(key, value) {
    try {
      window.sessionStorage.setItem(key, JSON.stringify(value));
    } catch (e) {
      // Storage off or full: the login page keeps saying the input is lost.
    }
  }

  function drop(key) {
    try {
      window.sessionStorage.removeItem(key);
    } catch (e) {
      // nothing kept
    }
  }

  function here() {
    return window.location.pathname + window.location.search;
  }

  // The signed-in user the header names, so a draft only ever returns to
  // the person who typed it.
  function whoami() {
    var name = document.querySelector(".whoami strong");
    return name ? name.textContent : "";
  }

  function keptField(element) {
    return (
      element.name &&
      element.name !== "csrf_token" &&
      !element.disabled &&
      SKIPPED_TYPES.indexOf(element.type) < 0
    );
  }

  // How the form is found again on the reloaded page.
  function formKey(form) {
    return form.id ? "#" + form.id : "action=" + (form.getAttribute("action") || "");
  }

  function findForm(key) {
    var forms = document.querySelectorAll("form");
    for (var i = 0; i < forms.length; i++) {
      if (formKey(forms[i]) === key) return forms[i];
    }
    return null;
  }

  function snapshot(form) {
    var fields = [];
    for (var i = 0; i < form.elements.length; i++) {
      var element = form.elements[i];
      if (!keptField(element)) continue;
      if (element.type === "checkbox" || element.type === "radio") {
        fields.push({ name: element.name, value: element.value, checked: element.checked });
      } else if (element.type !== "select-multiple") {
        fields.push({ name: element.name, value: element.value });
      }
    }
    return fields;
  }

  // Puts the values back; returns how many differ from what the page shows.
  function restore(form, fields) {
    var changed = 0;
    for (var i = 0; i < form.elements.length; i++) {
      var element = form.elements[i];
      if (!keptField(element)) continue;
      for (var j = 0; j < fields.length; j++) {
        var field = fields[j];
        if (field.name !== element.name) continue;
        if (element.type === "checkbox" || element.type === "radio") {
          if (field.value !== element.value) continue;
          if (element.checked !== field.checked) changed++;
          element.checked = field.checked;
        } else {
          if (element.value !== field.value) changed++;
          element.value = field.value;
        }
        fields.splice(j, 1);
        break;
      }
    }
    return changed;
  }

  function note(text, id, kind) {
    var box = document.createElement("div");
    box.id = id;
    box.className = "flash " + kind;
    box.setAttribute("role", "status");
    box.setAttribute("tabindex", "-1");
    box.textContent = text;
    return box;
  }

  // Capture phase: seen before htmx takes over an hx-post form.
  document.addEventListener(
    "submit",
    function (event) {
      var form = event.target;
      if (!(form instanceof HTMLFormElement)) return;
      if ((form.getAttribute("method") || "get").toLowerCase() !== "post") return;
      var fields = snapshot(form);
      if (fields.length === 0) {
        drop(SENDING);
        return;
      }
      write(SENDING, { page: here(), form: formKey(form), user: whoami(), fields: fields });
    },
    true,
  );

  // An htmx answer that is not the way to the login page: the post reached
  // the server, the copy is not needed.
  document.addEventListener("htmx:beforeOnLoad", function (event) {
    var redirect = event.detail.xhr && event.detail.xhr.getResponseHeader("HX-Redirect");
    if (!redirect || redirect.indexOf("/login?") !== 0) drop(SENDING);
  });

  function onLoad() {
    var sending = read(SENDING);
    drop(SENDING);
    var ended = document.querySelector("[data-session-ended]");
    var next = document.querySelector('#login-form input[name="next"]');
    var loginFor = next ? next.value : null;
    if (sending && ended && loginFor === sending.page) write(KEPT, sending);

    var kept = read(KEPT);
    if (!kept) return;
    if (document.getElementById("login-form")) {
      // Still (or again) signing in: wait, and say so.
      if (loginFor !== kept.page) {
        drop(KEPT);
        return;
      }
      var lost = document.getElementById("unsaved-note");
      var text = "What you typed was kept in this browser tab and is put back into the form after you sign in.";
      if (lost) {
        lost.textContent = text;
      } else {
        var card = document.getElementById("login-form").closest(".card");
        card.parentNode.insertBefore(note(text, "unsaved-note", "flash-ok"), card);
      }
      return;
    }
    drop(KEPT);
    if (kept.page !== here() || kept.user !== whoami()) return;
    var form = findForm(kept.form);
    if (!form) return;
    if (restore(form, kept.fields) === 0) return;
    var box = note("Your unsaved input was restored. Check it and save again.", "draft-restored", "flash-ok");
    form.parentNode.insertBefore(box, form);
    box.focus();
  }

  onLoad();
})();
