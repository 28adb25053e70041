(function () {
  "use strict";
  // Collects script errors and blocked content and shows them in #script-errors.
  var errors = [];
  function show() {
    var box = document.getElementById("script-errors");
    if (!box || !errors.length) { return; }
    box.hidden = false;
    box.setAttribute("data-count", String(errors.length));
    box.textContent = "The page script failed: " + errors.join("; ");
  }
  window.addEventListener("error", function (event) {
    errors.push(String(event.message || "error") + " (line " + (event.lineno || "?") + ")");
    show();
  });
  window.addEventListener("unhandledrejection", function (event) {
    errors.push("unhandled rejection: " + String(event.reason));
    show();
  });
  document.addEventListener("securitypolicyviolation", function (event) {
    errors.push("blocked by the page's policy: " + event.violatedDirective);
    show();
  });
  document.addEventListener("DOMContentLoaded", show);
})();
