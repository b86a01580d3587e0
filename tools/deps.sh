#!/usr/bin/env bash
# Build dependency check, run by the Makefile before anything is compiled.
# The only system package the build needs besides gcc is stb (libstb-dev): data/calvin uses
# stb_image's zlib decoder to inflate npz members and stb_image_write's deflate to write them.
# As root with apt-get, a missing package is installed; otherwise this says what to install.
hdr=/usr/include/stb/stb_image.h
[ -f "$hdr" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing build dependency: apt-get install -y libstb-dev"
    apt-get install -y libstb-dev >/dev/null 2>&1 || \
        (apt-get update >/dev/null 2>&1 && apt-get install -y libstb-dev >/dev/null 2>&1)
fi
[ -f "$hdr" ] && exit 0
echo "error: $hdr not found. dualvla needs the stb headers: run (as root) 'apt-get install -y libstb-dev'" >&2
exit 1
