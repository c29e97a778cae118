#!/bin/sh
# Generates ./configure from configure.ac (autoconf, automake, libtool).
set -e
cd "$(dirname "$0")"
autoreconf -fi
