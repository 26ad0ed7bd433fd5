// What every page's markup asks of script, without inline handlers (the Content-Security-Policy
// allows scripts from our own files only). Progressive enhancement: pages work without it.
(function () {
  "use strict";
  // A secret shown once (a token, a signing secret, a URL to copy) is selected when focused.
  document.addEventListener("focusin", function (event) {
    var field = event.target;
    if (field instanceof HTMLInputElement && field.hasAttribute("data-select-on-focus")) {
      field.select();
    }
  });
})();
