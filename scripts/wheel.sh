#!/usr/bin/env bash
# Source this: fetch_wheel DIST VERSION CACHE prints the path of DIST==VERSION's wheel in CACHE,
# downloading it (no dependencies, not installed) when it is not there yet.
fetch_wheel() {
  local dist=$1 version=$2 cache=$3 stem wheel
  stem=$(echo "$dist" | tr - _)
  mkdir -p "$cache"
  wheel=$(ls "$cache"/"$dist"-"$version"-*.whl "$cache"/"$stem"-"$version"-*.whl 2>/dev/null | head -1 || true)
  if [ -z "$wheel" ]; then
    python3 -m pip download --disable-pip-version-check --no-deps -q -d "$cache" "$dist==$version" >&2
    wheel=$(ls "$cache"/"$dist"-"$version"-*.whl "$cache"/"$stem"-"$version"-*.whl 2>/dev/null | head -1)
  fi
  echo "$wheel"
}
