#!/usr/bin/env bash
# What the review console's browser test needs beyond pip: Debian's Chromium and its WebDriver (Selenium from
# PyPI drives them; no browser is downloaded), and a CJK font so Chinese labels render in screenshots.
# Idempotent: installs nothing when everything is already there. Output goes to stderr.
set -euo pipefail

packages=(
    chromium         # the browser
    chromium-driver  # chromedriver, matching the browser's version
    fonts-wqy-zenhei # a Chinese font for the console's zh labels
)

missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
{
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
} >&2
chromium --version >&2
chromedriver --version >&2
