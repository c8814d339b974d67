(function () {
  var box = document.getElementById("filter");
  var sev = document.getElementById("severity");
  var rows = Array.prototype.slice.call(document.querySelectorAll("#findings tbody tr"));
  var shown = document.getElementById("shown");
  var rank = {info: 0, low: 1, medium: 2, high: 3, critical: 4};
  function apply() {
    var q = box.value.toLowerCase(), min = rank[sev.value] || 0, n = 0;
    rows.forEach(function (r) {
      var ok = r.textContent.toLowerCase().indexOf(q) >= 0 && rank[r.getAttribute("data-severity")] >= min;
      r.hidden = !ok;
      if (ok) { n += 1; }
    });
    shown.textContent = String(n);
  }
  box.addEventListener("input", apply);
  sev.addEventListener("change", apply);
  apply();
})();
