// Starts Redoc on the documentation page (templates/signalements/api/redoc.html) with
// the schema's URL and drf-spectacular's Redoc settings, read from its container: a
// file, as the Content-Security-Policy allows no inline script.
"use strict";
(function () {
  // Redoc's footer shows the Redocly logo from their CDN: the policy keeps the page on
  // this server and would refuse it (a violation reported on each visit), so the image
  // is not asked for at all (Redoc sets an image's `src` property; its attribute too,
  // in case another version does).
  const CDN = "https://cdn.redoc.ly/";
  const source = Object.getOwnPropertyDescriptor(HTMLImageElement.prototype, "src");
  Object.defineProperty(HTMLImageElement.prototype, "src", {
    ...source,
    set(value) {
      if (!String(value).startsWith(CDN)) source.set.call(this, value);
    },
  });
  const setAttribute = Element.prototype.setAttribute;
  Element.prototype.setAttribute = function (name, value) {
    const elsewhere = name === "src" && String(value).startsWith(CDN);
    if (!(this instanceof HTMLImageElement && elsewhere)) setAttribute.call(this, name, value);
  };

  const container = document.getElementById("redoc-container");
  const settings = JSON.parse(container.dataset.settings);
  Redoc.init(container.dataset.specUrl, settings, container);
})();
