(function () {
  "use strict";
  // Sort a table by one column: numbers from data-sort, text otherwise; blanks always last.
  function sortBy(table, column, header) {
    var numeric = header.getAttribute("data-type") === "num";
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    var headers = header.parentNode.children;
    for (var h = 0; h < headers.length; h++) headers[h].removeAttribute("aria-sort");
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    var keyed = Array.prototype.map.call(body.rows, function (row, i) {
      var cell = row.cells[column];
      var key = null;
      if (cell) {
        if (numeric) {
          var raw = cell.getAttribute("data-sort");
          key = raw === null || raw === "" ? null : Number(raw);
        } else {
          key = cell.textContent.trim().toLowerCase();
        }
      }
      return [key, i, row];
    });
    var sign = ascending ? 1 : -1;
    keyed.sort(function (a, b) {
      if (a[0] === null || b[0] === null) {
        return (a[0] === null) - (b[0] === null) || a[1] - b[1];
      }
      if (a[0] < b[0]) return -sign;
      if (a[0] > b[0]) return sign;
      return a[1] - b[1];
    });
    var fragment = document.createDocumentFragment();
    keyed.forEach(function (k) { fragment.appendChild(k[2]); });
    body.appendChild(fragment);
  }

  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (header, column) {
      var button = header.querySelector("button");
      if (button) button.addEventListener("click", function () { sortBy(table, column, header); });
    });
  });

  // Hide the rows that do not contain every word typed in the filter box.
  Array.prototype.forEach.call(document.querySelectorAll("input[data-filter]"), function (box) {
    var table = document.getElementById(box.getAttribute("data-filter"));
    var counter = document.getElementById(box.getAttribute("data-filter") + "-count");
    if (!table) return;
    var rows = table.tBodies[0].rows;
    box.addEventListener("input", function () {
      var words = box.value.toLowerCase().split(/\s+/).filter(Boolean);
      var shown = 0;
      for (var i = 0; i < rows.length; i++) {
        var text = rows[i].textContent.toLowerCase();
        var hide = words.some(function (w) { return text.indexOf(w) < 0; });
        rows[i].hidden = hide;
        if (!hide) shown++;
      }
      if (counter) counter.textContent = shown + " of " + rows.length + " shown";
    });
  });
})();
