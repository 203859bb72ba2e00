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

  // After a swap, move focus to the first invalid field, else to a new
  // flash message, so keyboard and screen-reader users hear the outcome.
  document.addEventListener("htmx:afterSwap", function (event) {
    var root = event.detail.target;
    // A swapped-in dialog (the QR code) arrives open, which works without
    // script; reopen it as a modal so the page behind is inert.
    var dialog = root.querySelector("dialog[data-modal]");
    if (dialog && typeof dialog.showModal === "function") {
      if (dialog.open) dialog.close();
      dialog.showModal();
      return;
    }
    var invalid = root.querySelector('[aria-invalid="true"]');
    if (invalid) {
      invalid.focus();
      return;
    }
    var flash = root.querySelector(".flash");
    if (flash) {
      flash.focus();
    }
  });

  // Print buttons (the printable invitation): no inline handlers under the CSP.
  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-print]")) window.print();
  });
})();
