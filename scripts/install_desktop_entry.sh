#!/usr/bin/env bash
# Adds a built Classifier Studio (scripts/build_app.sh) to the Linux desktop's application menu, for this user:
#   scripts/install_desktop_entry.sh [dist/ClassifierStudio]
# Remove it again with: scripts/install_desktop_entry.sh --uninstall
set -euo pipefail
cd "$(dirname "$0")/.."
data_home=${XDG_DATA_HOME:-$HOME/.local/share}
entry="$data_home/applications/classifier-studio.desktop"
icon="$data_home/icons/hicolor/256x256/apps/classifier-studio.png"

if [ "${1:-}" = "--uninstall" ]; then
  rm -f "$entry" "$icon"
  echo "Removed $entry and $icon"
  exit 0
fi

app_dir=$(cd "${1:-dist/ClassifierStudio}" && pwd)
if [ ! -x "$app_dir/ClassifierStudio" ]; then
  echo "No built app in $app_dir: run scripts/build_app.sh first" >&2
  exit 2
fi
resources="$app_dir/_internal/resources"  # the build's own copy; a checkout's resources/ otherwise
[ -d "$resources" ] || resources=resources
mkdir -p "$(dirname "$entry")" "$(dirname "$icon")"
cp "$resources/icon.png" "$icon"
# The entry as shipped, pointing at this build; quoted because the path may hold spaces.
sed "s|^Exec=ClassifierStudio|Exec=\"$app_dir/ClassifierStudio\"|" "$resources/classifier-studio.desktop" > "$entry.tmp"
mv "$entry.tmp" "$entry"
command -v update-desktop-database >/dev/null && update-desktop-database "$data_home/applications" || true
echo "Classifier Studio is in the application menu: $entry"
