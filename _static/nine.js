// Each figure's image becomes a link to the image itself, so a figure of several panels, shown at the
// column's width (on a phone about 340 px), opens at its full resolution.
document.addEventListener("DOMContentLoaded", () => {
  for (const img of document.querySelectorAll("main figure img")) {
    if (img.closest("a")) continue;
    const link = document.createElement("a");
    link.href = img.currentSrc || img.src;
    link.className = "full-image";
    link.title = "open the image at full resolution";
    img.replaceWith(link);
    link.appendChild(img);
  }
});

// A table or formula wider than its column scrolls sideways in its own box; a line above it says so, and how
// many columns wait off to the right, since a shadow at the edge is easy to miss. Checked again on resize.
const SCROLLERS = "main .cell_output .output, main table.nine-table, main table.claims-glance, main table.table, " +
                  'main mjx-container[display="true"]';

function scrollsSideways(el) {
  return ["auto", "scroll"].includes(getComputedStyle(el).overflowX) && el.scrollWidth > el.clientWidth + 1;
}

function hiddenColumns(box) {
  const table = box.matches("table") ? box : box.querySelector("table");
  const row = table && table.querySelector("thead tr:last-child, tr");
  if (!row) return 0;
  const right = box.getBoundingClientRect().right;
  return [...row.children].filter(cell => cell.getBoundingClientRect().right > right + 1).length;
}

function markScrollers() {
  const boxes = [...document.querySelectorAll(SCROLLERS)];
  for (const box of boxes) {
    const hint = box.previousElementSibling && box.previousElementSibling.classList.contains("scroll-hint")
      ? box.previousElementSibling : null;
    const outer = box.parentElement && box.parentElement.closest(SCROLLERS);
    if (!scrollsSideways(box) || (outer && scrollsSideways(outer))) {
      if (hint) hint.remove();
      continue;
    }
    const columns = hiddenColumns(box);
    const text = box.matches("mjx-container") ? "→ the formula continues to the right: scroll it sideways"
      : columns > 0 ? `→ ${columns} more column${columns > 1 ? "s" : ""} to the right: scroll the table sideways`
      : "→ the table continues to the right: scroll it sideways";
    const line = hint || document.createElement("p");
    line.className = "scroll-hint";
    line.textContent = text;
    if (!hint) box.before(line);
  }
}

window.addEventListener("load", () => {
  markScrollers();
  setTimeout(markScrollers, 1500);  // after MathJax has set the formulas
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) MathJax.startup.promise.then(markScrollers);
});
window.addEventListener("resize", () => { clearTimeout(window.nineHints); window.nineHints = setTimeout(markScrollers, 200); });
