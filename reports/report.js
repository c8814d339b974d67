(function () {
  var box = document.getElementById("filter");
  var sev = document.getElementById("severity");
  var rule = document.getElementById("rule");
  var body = document.querySelector("#findings tbody");
  var rows = Array.prototype.slice.call(body.querySelectorAll("tr"));
  var shown = document.getElementById("shown");
  var rank = {info: 0, low: 1, medium: 2, high: 3, critical: 4};
  function apply() {
    var q = box.value.toLowerCase(), min = rank[sev.value] || 0, only = rule.value, n = 0;
    rows.forEach(function (r) {
      var ok = r.textContent.toLowerCase().indexOf(q) >= 0 && rank[r.getAttribute("data-severity")] >= min &&
        (!only || r.getAttribute("data-rule") === only);
      r.hidden = !ok;
      if (ok) { n += 1; }
    });
    shown.textContent = String(n);
  }
  function sortBy(key) {
    var attr = key === "severity" ? "data-rank" : "data-" + key;
    var down = body.getAttribute("data-sorted") !== key;
    rows.sort(function (a, b) {
      var x = a.getAttribute(attr), y = b.getAttribute(attr);
      if (key === "severity") { x = -Number(x); y = -Number(y); }
      var c = x < y ? -1 : (x > y ? 1 : 0);
      return down ? c : -c;
    });
    body.setAttribute("data-sorted", down ? key : "");
    rows.forEach(function (r) { body.appendChild(r); });
  }
  Array.prototype.forEach.call(document.querySelectorAll("#findings th[data-sort]"), function (th) {
    th.addEventListener("click", function () { sortBy(th.getAttribute("data-sort")); });
  });
  box.addEventListener("input", apply);
  sev.addEventListener("change", apply);
  rule.addEventListener("change", apply);
  apply();
})();
