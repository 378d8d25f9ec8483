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
