#!/usr/bin/env bash
# Leaflet, the admin's maps, is served from our own static files (the back office works
# without reaching a CDN). This fetches its built files from the npm registry, at the
# version pinned here, into signalements/static/signalements/vendor/leaflet/ (committed).
# Run it again after changing the version.
set -euo pipefail
VERSION=1.9.4
cd "$(dirname "$0")/.."
target=signalements/static/signalements/vendor/leaflet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "leaflet@$VERSION" >/dev/null && tar xzf "leaflet-$VERSION.tgz")
rm -rf "$target"
mkdir -p "$target/images"
cp "$work/package/dist/leaflet.js" "$work/package/dist/leaflet.js.map" "$work/package/dist/leaflet.css" "$work/package/LICENSE" "$target/"
cp "$work/package/dist/images/"*.png "$target/images/"
echo "leaflet@$VERSION from the npm registry (npm pack), dist/ files unchanged." > "$target/SOURCE"
echo "Leaflet $VERSION in $target"
