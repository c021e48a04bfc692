// The area's page in the admin: its shape on a Leaflet map, drawn from the geometry's
// GeoJSON text and redrawn as the text is edited; the other areas of the same kind in
// grey behind it (data-neighbours), so that an overlap or a gap shows. Tiles come from
// data-tiles (ADMIN_MAP_TILES_URL); without them the shapes are drawn on a blank
// background. The text stays the reference: what cannot be drawn is said under the map,
// and the server checks the shape on save.
"use strict";
(function () {
  var SHAPE = { color: "#2471a3", weight: 2, fillOpacity: 0.25 };
  var NEIGHBOUR = { color: "#7f8c8d", weight: 1, fillOpacity: 0.08, dashArray: "4 3" };

  function start() {
    var element = document.getElementById("area-map");
    var text = document.getElementById("id_geometry");
    var status = document.getElementById("area-map-status");
    if (!element || typeof L === "undefined") return;
    var map = L.map(element, { scrollWheelZoom: false });
    if (element.dataset.tiles) {
      L.tileLayer(element.dataset.tiles, {
        maxZoom: 19, attribution: element.dataset.attribution || "",
      }).addTo(map);
    }

    var neighbours = L.featureGroup().addTo(map);
    JSON.parse(element.dataset.neighbours || "[]").forEach(function (area) {
      try {
        L.geoJSON(area.geometry, { style: NEIGHBOUR, interactive: true })
          .bindTooltip(area.name, { sticky: true })
          .addTo(neighbours);
      } catch (error) { /* a neighbour that cannot be drawn is left out */ }
    });

    var shape = null;
    function draw(fit) {
      var source = text ? text.value : "";
      var layer = null;
      try {
        layer = L.geoJSON(JSON.parse(source), { style: SHAPE });
        if (!layer.getLayers().length || !layer.getBounds().isValid()) layer = null;
      } catch (error) {
        layer = null;
      }
      if (status) status.textContent = layer || !source.trim() ? "" : element.dataset.unreadable;
      if (!layer) return;
      if (shape) map.removeLayer(shape);
      shape = layer.addTo(map);
      if (fit) map.fitBounds(shape.getBounds(), { padding: [20, 20], maxZoom: 17 });
    }

    draw(true);
    if (!shape) {
      if (neighbours.getLayers().length) map.fitBounds(neighbours.getBounds(), { padding: [20, 20] });
      else map.setView([46.6, 2.4], 5);
    }
    if (text) {
      var timer = null;
      text.addEventListener("input", function () {
        clearTimeout(timer);
        timer = setTimeout(function () { draw(!shape); }, 300);
      });
    }
    element.dataset.ready = "1";
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
