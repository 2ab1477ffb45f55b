#!/usr/bin/env bash
# Installs the real masterless@0.4.1 (pinned with its dependencies by
# package.json and package-lock.json beside this script) into interop/.node,
# a folder git ignores and Go skips. The interop tests and the driver scripts
# in testdata/interop load it from there.
#
# Idempotent: when the installed tree matches the lock file it does nothing.
# Without node or npm it prints a SKIP line and exits 0, except under
# CI=true, where a missing tool is a failure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dest="$here/.node"
stamp="$dest/.installed"

missing=()
command -v node >/dev/null 2>&1 || missing+=(node)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if ((${#missing[@]})); then
	if [[ "${CI:-}" == true ]]; then
		echo "FAIL: interop: ${missing[*]} not found; CI must run the interop tests against masterless@0.4.1" >&2
		exit 1
	fi
	echo "SKIP: interop: ${missing[*]} not found; masterless@0.4.1 not installed, interop tests will be skipped"
	exit 0
fi

want=$(cat "$here/package.json" "$here/package-lock.json" | cksum)
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -f "$dest/node_modules/masterless/lib/masterless.js" ]]; then
	echo "interop: masterless@0.4.1 already installed in $dest"
	exit 0
fi

mkdir -p "$dest"
cp "$here/package.json" "$here/package-lock.json" "$dest/"
# npm ci installs exactly what the lock file says and checks every integrity
# hash. The lock file carries no "resolved" URLs: npm takes the registry from
# its own configuration.
(cd "$dest" && npm ci --no-audit --no-fund --loglevel=error)
version=$(node -p 'require(process.argv[1]).version' "$dest/node_modules/masterless/package.json")
if [[ "$version" != 0.4.1 ]]; then
	echo "FAIL: interop: installed masterless is $version, want 0.4.1" >&2
	exit 1
fi
echo "$want" >"$stamp"
echo "interop: installed masterless@$version in $dest (node $(node --version))"
