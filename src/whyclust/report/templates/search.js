(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("points-data").textContent);
  var input = document.getElementById("point-search");
  var body = document.getElementById("points-body");
  var status = document.getElementById("points-status");
  var LIMIT = 200;
  function cell(tr, text, cls) {
    var td = document.createElement("td");
    td.textContent = text;
    if (cls) { td.className = cls; }
    tr.appendChild(td);
  }
  function render() {
    var q = input.value.trim().toLowerCase();
    var m = q.match(/^cluster\s*[:=]?\s*(\d+)$/);
    var wanted = m ? parseInt(m[1], 10) : null;
    var matched = 0;
    var frag = document.createDocumentFragment();
    for (var i = 0; i < data.rows.length; i++) {
      var r = data.rows[i];
      var hit = wanted !== null ? r[1] === wanted
        : q === "" || String(r[0]).toLowerCase().indexOf(q) !== -1;
      if (!hit) { continue; }
      matched += 1;
      if (matched > LIMIT) { continue; }
      var tr = document.createElement("tr");
      cell(tr, r[0]);
      cell(tr, String(r[1]), "num");
      cell(tr, Math.abs(r[2]) >= 1e5 ? r[2].toExponential(3) : String(r[2]), "num");
      cell(tr, r[3].map(function (j) { return data.names[j]; }).join(", "));
      frag.appendChild(tr);
    }
    body.replaceChildren(frag);
    status.textContent = matched + " of " + data.rows.length + " points match" +
      (matched > LIMIT ? "; the first " + LIMIT + " are listed." : ".");
  }
  input.addEventListener("input", render);
  render();
}());
