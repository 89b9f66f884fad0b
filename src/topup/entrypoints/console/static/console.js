// Small progressive enhancements; every page works without this file.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });
  document.querySelectorAll("[data-back]").forEach(function (link) {
    link.addEventListener("click", function (event) {
      if (window.history.length > 1) { event.preventDefault(); window.history.back(); }
    });
  });
  var box = document.querySelector("[data-autorefresh]");
  if (box) {
    var key = "topup-console-autorefresh";
    box.checked = window.localStorage.getItem(key) === "1";
    var timer = null;
    var arm = function () {
      if (timer) window.clearTimeout(timer);
      timer = box.checked ? window.setTimeout(function () { window.location.reload(); }, 10000) : null;
    };
    box.addEventListener("change", function () {
      window.localStorage.setItem(key, box.checked ? "1" : "0");
      arm();
    });
    arm();
  }
})();
// The channel form shows only the chosen protocol's credential fields (without this file, all show).
(function () {
  "use strict";
  var select = document.getElementById("protocol");
  if (!select) return;
  var sync = function () {
    document.querySelectorAll(".protocol-fields").forEach(function (box) {
      var on = box.getAttribute("data-protocol") === select.value;
      box.hidden = !on;
      box.querySelectorAll("input").forEach(function (input) { input.disabled = !on; });
    });
    var url = document.getElementById("callback-url");
    if (url) url.textContent = url.textContent.replace(/\/callbacks\/[^/]+\//, "/callbacks/" + select.value + "/");
  };
  select.addEventListener("change", sync);
  sync();
})();
