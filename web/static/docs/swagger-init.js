// Starts Swagger UI on the API documentation page (/schema): a file of ours, because the
// pages' Content-Security-Policy allows no inline script. The schema's URL is on the page.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-spec-url"),
    domNode: root,
    deepLinking: true,
    // no badge fetched from the validator's site: the page works with no internet access
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
})();
