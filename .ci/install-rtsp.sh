#!/usr/bin/env bash
# What the RTSP source test needs beyond pip: GStreamer's RTSP server, driven from Debian's own Python
# (tests/pipelines/rtsp_server.py). Idempotent: installs nothing when everything is already there.
# Output goes to stderr, so that callers may keep stdout for themselves.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
    python3-gi                  # PyGObject for /usr/bin/python3
    gir1.2-gst-rtsp-server-1.0  # gst-rtsp-server and its typelib (pulls in GStreamer and its typelib)
    gstreamer1.0-plugins-base   # filesrc (via core), typefinding
    gstreamer1.0-plugins-good   # qtdemux, rtpmp4vpay, rtph264pay, rtph265pay
    gstreamer1.0-plugins-bad    # h264parse, h265parse (videoparsersbad)
)

if /usr/bin/python3 tests/pipelines/rtsp_server.py --check 2>/dev/null; then
    exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
{
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}"
} >&2
/usr/bin/python3 tests/pipelines/rtsp_server.py --check
