// The admin's maps (Leaflet, served from our static files): a report's location on its
// page, and the reports of the list's current filter on the list. Tiles come from the
// URL in data-tiles (ADMIN_MAP_TILES_URL); without it, or without network, the points are
// still drawn and the coordinates stay written beside the map.
"use strict";
(function () {
  function data(id) {
    var element = document.getElementById(id);
    return element ? JSON.parse(element.textContent) : null;
  }

  function baseMap(element) {
    var map = L.map(element, { scrollWheelZoom: false });
    var tiles = element.dataset.tiles;
    if (tiles) {
      L.tileLayer(tiles, { maxZoom: 19, attribution: element.dataset.attribution || "" }).addTo(map);
    }
    return map;
  }

  function reportMap() {
    var element = document.getElementById("report-map");
    var location = data("report-location");
    if (!element || !location) return;
    var map = baseMap(element);
    map.setView([location.lat, location.lng], 17);
    // A circle, not Leaflet's default pin: the pin's image path is guessed from the
    // stylesheet's URL, which the static files' hashed names break.
    L.circleMarker([location.lat, location.lng], {
      radius: 9, weight: 2, color: "#fff", fillColor: "#c0392b", fillOpacity: 1,
    }).addTo(map);
    element.dataset.ready = "1";
  }

  function listMap() {
    var element = document.getElementById("changelist-map");
    var points = data("changelist-points");
    if (!element || !points) return;
    var map = baseMap(element);
    var bounds = [];
    points.forEach(function (point) {
      var marker = L.circleMarker([point.lat, point.lng], {
        radius: 6, weight: 1, color: "#222", fillOpacity: 0.85,
        fillColor: { new: "#c0392b", acknowledged: "#d68910", in_progress: "#2471a3",
                     resolved: "#1e8449", rejected: "#616a6b" }[point.status] || "#777",
      }).addTo(map);
      var link = document.createElement("a");
      link.href = point.url;
      link.textContent = point.reference + " — " + point.title;
      marker.bindPopup(link);
      bounds.push([point.lat, point.lng]);
    });
    if (bounds.length) map.fitBounds(bounds, { padding: [20, 20], maxZoom: 17 });
    else map.setView([46.6, 2.4], 5);
    element.dataset.ready = "1";
  }

  function start() {
    if (typeof L === "undefined") return;
    reportMap();
    var panel = document.getElementById("changelist-map-panel");
    if (panel && panel.open) listMap();
    else if (panel) panel.addEventListener("toggle", function once() {
      panel.removeEventListener("toggle", once);
      listMap();
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
