// Open a figure full size: click (or Enter/Space on) an image in the page content. The image
// opens at its natural size over the page, scrollable when larger than the window; "Fit" toggles
// fitting it to the window; Escape, a click or "Close" returns. No library, nothing loaded from
// elsewhere: the full-size image is the same file (or data: URI) the page already has.
(function () {
  "use strict";

  var SELECTOR = ".md-content img";
  var box = null;
  var opener = null;

  function zoomable(img) {
    return img.matches(SELECTOR) && !img.closest("a, .srcip-lightbox, .twemoji, .md-logo");
  }

  function close() {
    if (!box) return;
    box.remove();
    box = null;
    document.documentElement.style.overflow = "";
    if (opener) opener.focus();
  }

  function open(img) {
    close();
    opener = img;
    box = document.createElement("div");
    box.className = "srcip-lightbox";
    box.setAttribute("role", "dialog");
    box.setAttribute("aria-modal", "true");
    box.setAttribute("aria-label", "Figure at full size: " + (img.alt || ""));

    var bar = document.createElement("div");
    bar.className = "srcip-lightbox__bar";
    var fit = document.createElement("button");
    fit.type = "button";
    fit.textContent = "Fit";
    fit.addEventListener("click", function (ev) {
      ev.stopPropagation();
      box.classList.toggle("srcip-fit");
      fit.textContent = box.classList.contains("srcip-fit") ? "Full size" : "Fit";
    });
    var shut = document.createElement("button");
    shut.type = "button";
    shut.textContent = "Close";
    shut.addEventListener("click", close);
    bar.appendChild(fit);
    bar.appendChild(shut);

    var big = document.createElement("img");
    big.src = img.currentSrc || img.src;
    big.alt = img.alt;
    big.addEventListener("click", close);

    box.appendChild(big);
    box.appendChild(bar);
    box.addEventListener("click", function (ev) {
      if (ev.target === box) close();
    });
    document.body.appendChild(box);
    document.documentElement.style.overflow = "hidden";
    shut.focus();
  }

  function mark(root) {
    root.querySelectorAll(SELECTOR).forEach(function (img) {
      if (!zoomable(img) || img.classList.contains("srcip-zoomable")) return;
      img.classList.add("srcip-zoomable");
      img.tabIndex = 0;
      img.setAttribute("role", "button");
      img.title = "Open full size";
    });
  }

  document.addEventListener("click", function (ev) {
    var img = ev.target.closest && ev.target.closest("img.srcip-zoomable");
    if (img && !box) {
      ev.preventDefault();
      open(img);
    }
  });
  document.addEventListener("keydown", function (ev) {
    if (box && ev.key === "Escape") {
      close();
    } else if (!box && (ev.key === "Enter" || ev.key === " ")) {
      var img = document.activeElement;
      if (img && img.classList && img.classList.contains("srcip-zoomable")) {
        ev.preventDefault();
        open(img);
      }
    }
  });

  if (window.document$ && window.document$.subscribe) {
    // Material's instant navigation, if it is ever turned on
    window.document$.subscribe(function () { mark(document); });
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { mark(document); });
  } else {
    mark(document);
  }
})();
