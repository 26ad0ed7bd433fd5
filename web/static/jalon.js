// What every page's markup asks of script, without inline handlers (the Content-Security-Policy
// allows scripts from our own files only). Progressive enhancement: pages work without it.
(function () {
  "use strict";
  // A secret shown once (a token, a signing secret, a URL to copy) is selected when focused.
  document.addEventListener("focusin", function (event) {
    var field = event.target;
    if (field instanceof HTMLInputElement && field.hasAttribute("data-select-on-focus")) {
      field.select();
    }
  });

  // Each data cell learns its column's name (`data-label`, from the column headers), so that
  // on a phone, where the stylesheet stacks a table's rows as cards, every figure keeps its
  // label. Without script, such a table scrolls sideways inside itself instead.
  function labelCells(table) {
    var head = table.tHead && table.tHead.rows[table.tHead.rows.length - 1];
    if (!head) return;
    var names = [];
    Array.prototype.forEach.call(head.cells, function (cell) {
      var name = (cell.getAttribute("aria-label") || cell.textContent || "").trim();
      for (var i = 0; i < cell.colSpan; i++) names.push(name);
    });
    // the bodies' rows and the footer's (a total row is stacked like the others)
    var groups = Array.prototype.slice.call(table.tBodies);
    if (table.tFoot) groups.push(table.tFoot);
    groups.forEach(function (body) {
      Array.prototype.forEach.call(body.rows, function (row) {
        var column = 0;
        Array.prototype.forEach.call(row.cells, function (cell) {
          if (cell.tagName === "TD" && cell.colSpan === 1 && !cell.hasAttribute("data-label")) {
            cell.setAttribute("data-label", names[column] || "");
          }
          column += cell.colSpan;
        });
      });
    });
  }
  Array.prototype.forEach.call(document.querySelectorAll("table"), labelCells);
})();
