#!/usr/bin/env bash
# Writes tests/data/upgrade-0.1/data again: a data directory of the release whose cluster
# metadata is cluster-metadata.json (commit 225a09e, before the metadata log), for the upgrade
# test (tests/upgrade.rs). The broker runs with server.properties and 2 shards; the test
# `write_fixture` in tests/upgrade.rs says what goes in.
#
#   tests/data/upgrade-0.1/regenerate.sh
#
# Environment (optional):
#   SLUICE_UPGRADE_BIN  the release's `sluice` binary; default: check out RELEASE in a
#                       temporary git worktree and build it there (its own target dir, several
#                       minutes on 2 cores)
#   RELEASE             the commit to build (default 225a09e)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
RELEASE=${RELEASE:-225a09e}
WORK=$(mktemp -d /tmp/sluice-upgrade-fixture.XXXXXX)
cleanup() {
  if [ -d "$WORK/src" ]; then git -C "$REPO" worktree remove --force "$WORK/src"; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

BIN=${SLUICE_UPGRADE_BIN:-}
if [ -z "$BIN" ]; then
  git -C "$REPO" worktree add --detach "$WORK/src" "$RELEASE"
  (cd "$WORK/src" && cargo build --profile ci --bin sluice)
  BIN=$WORK/src/target/ci/sluice
fi

cd "$REPO"
SLUICE_UPGRADE_BIN=$BIN SLUICE_UPGRADE_OUT=$WORK/data \
  cargo test --profile ci --test upgrade -- --ignored --exact write_fixture
rm -rf "$HERE/data"
cp -a "$WORK/data" "$HERE/data"
du -sh "$HERE/data"
