#!/usr/bin/env bash
# Third-party front-end libraries of the dispatcher's console (docs/console.md), fetched at build time from the
# npm registry at pinned versions and copied with their licences into service/static/vendor/ (not committed).
# The service runs without them: the map then falls back to a plain drawing.
set -euo pipefail
cd "$(dirname "$0")/.."
LEAFLET_VERSION=1.9.4
DEST=service/static/vendor/leaflet
STAMP="$DEST/.version"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "leaflet@$LEAFLET_VERSION" && -f "$DEST/leaflet.js" ]]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "vendor: npm not found; the console's map falls back to a plain drawing (apt-get install npm)" >&2
  exit 0
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
(cd "$WORK" && npm pack --silent "leaflet@$LEAFLET_VERSION" >/dev/null && tar -xzf "leaflet-$LEAFLET_VERSION.tgz")
rm -rf "$DEST"
mkdir -p "$DEST"
cp "$WORK/package/dist/leaflet.js" "$WORK/package/dist/leaflet.js.map" "$WORK/package/dist/leaflet.css" "$DEST/"
cp -r "$WORK/package/dist/images" "$DEST/"
cp "$WORK/package/LICENSE" "$DEST/LICENSE"
echo "leaflet@$LEAFLET_VERSION" > "$STAMP"
echo "vendor: leaflet $LEAFLET_VERSION in $DEST"
