// The console's own small script: progress polling, select-all and print.
// Every page works without it; it only saves a reload or a few clicks.
(function () {
  "use strict";
  var box = document.querySelector("[data-progress]");
  if (box) {
    var url = box.getAttribute("data-progress");
    var bar = document.getElementById("progress-bar");
    var text = document.getElementById("progress-text");
    var poll = function () {
      fetch(url, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (p) {
        bar.max = p.total; bar.value = p.done; text.textContent = p.done + " / " + p.total;
        if (p.state !== "running" || p.interrupted) { window.location.reload(); return; }
        setTimeout(poll, 500);
      }).catch(function () { setTimeout(poll, 2000); });
    };
    setTimeout(poll, 300);
  }
  document.querySelectorAll("[data-select-all]").forEach(function (all) {
    var name = all.getAttribute("data-select-all");
    all.addEventListener("change", function () {
      document.querySelectorAll("input[type=checkbox][name=" + name + "]").forEach(function (c) { c.checked = all.checked; });
    });
  });
  document.querySelectorAll("[data-print]").forEach(function (b) {
    b.addEventListener("click", function () { window.print(); });
  });
})();
