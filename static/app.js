// The console's only script. htmx is configured by the htmx-config meta tag;
// this file adds what a Content-Security-Policy without inline script needs:
// the CSRF header on every htmx request, and focus management after swaps.
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

  // A plain (script-free) post answered with its errors is a new page:
  // start at the first field to fix rather than at the top.
  focusFirstInvalid(document);

  // Print buttons (the printable invitation): no inline handlers under the CSP.
  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-print]")) window.print();
  });
})();
