// Starts Redoc on the API reference page (/schema/redoc): a file of ours, because the pages'
// Content-Security-Policy allows no inline script. Redoc writes its styles into <style>
// elements; they carry this script's nonce, which the page's policy allows for styles.
(function () {
  "use strict";
  var script = document.currentScript;
  var root = document.getElementById("redoc");
  Redoc.init(root.getAttribute("data-spec-url"), { nonce: script.nonce }, root);
})();
