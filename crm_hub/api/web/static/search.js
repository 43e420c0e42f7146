// Instant results for the search box: fetch the server-rendered list as you type.
// Without JavaScript the form still works (Enter submits to /ui/?q=).
(function () {
  "use strict";
  var form = document.querySelector("form[data-instant]");
  if (!form) { return; }
  var input = form.querySelector("input[name=q]");
  var results = document.getElementById("results");
  var timer = null;
  var latest = 0;
  function refresh() {
    var q = input.value.trim();
    var ticket = ++latest;
    if (!q) { results.innerHTML = ""; return; }
    fetch(form.getAttribute("data-instant") + "?q=" + encodeURIComponent(q), {
      credentials: "same-origin", headers: { "Accept": "text/html" }
    }).then(function (response) {
      if (response.redirected || response.status === 401) { window.location = "/ui/login"; return null; }
      return response.ok ? response.text() : null;
    }).then(function (html) {
      if (html !== null && ticket === latest) { results.innerHTML = html; }
    }).catch(function () { /* offline: Enter still submits the form */ });
  }
  input.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(refresh, 180);
  });
})();
