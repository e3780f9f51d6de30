#!/usr/bin/env bash
# tests/librdkafka-admin.sh - the non-ACL subtests of librdkafka's 0081_admin against a broker.
#
#   tests/librdkafka-admin.sh [BOOTSTRAP]      (default 127.0.0.1:9192)
#
# 0081_admin is one test main whose subtests run in sequence and stop at the first failure;
# its ACL subtests (CreateAcls, DescribeAcls, DeleteAcls) need an authorizer, which Sluice does
# not have. librdkafka's test-runner selects subtests by one substring (SUBTESTS), so this runs
# the main once per non-ACL subtest function, each a separate pass/fail, and checks that the
# function's subtests really ran. The broker must have one node (`sluice start --cores 1`):
# 0081 creates topics with as many replicas as there are nodes.
#
# Uses the librdkafka tree ../shared/tools/librdkafka-suite.sh builds (LIBRDKAFKA_DIR, default
# ~/.cache/librdkafka-suite/librdkafka); run that script once first if it is missing.
# Prints one PASS/FAIL line per subtest function and ends with "N passed, M failed".
# Environment: LIBRDKAFKA_DIR, TEST_KAFKA_VERSION (3.9.0), TIMEOUT_MULTIPLIER (2),
# PER_TEST_TIMEOUT (600 s), RESULTS_DIR (default: a new /tmp directory).
set -uo pipefail

BOOTSTRAP=${1:-127.0.0.1:9192}
L=${LIBRDKAFKA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/librdkafka-suite/librdkafka}
RESULTS_DIR=${RESULTS_DIR:-$(mktemp -d /tmp/librdkafka-admin.XXXXXX)}
# The non-ACL subtest functions of 0081-admin.c, in the order the test main runs them.
SUBTEST_FUNCTIONS=(
  do_test_unclean_destroy
  do_test_CreateTopics
  do_test_DeleteTopics
  do_test_CreatePartitions
  do_test_AlterConfigs
  do_test_IncrementalAlterConfigs
  do_test_DescribeConfigs
  do_test_DeleteRecords
  do_test_ListConsumerGroups
  do_test_DescribeConsumerGroups
  do_test_DescribeTopics
  do_test_DescribeCluster
  do_test_DeleteGroups
  do_test_DeleteConsumerGroupOffsets
  do_test_ListOffsets
  do_test_AlterConsumerGroupOffsets
  do_test_ListConsumerGroupOffsets
  do_test_UserScramCredentials
)

if [ ! -x "$L/tests/test-runner" ]; then
  echo "no librdkafka test-runner in $L/tests: run ../shared/tools/librdkafka-suite.sh first" >&2
  exit 2
fi
export LD_LIBRARY_PATH="$L/src:$L/src-cpp${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
mkdir -p "$RESULTS_DIR"
CONF="$RESULTS_DIR/test.conf"
printf 'bootstrap.servers=%s\ntest.timeout.multiplier=%s\ntest.topic.random=true\n' \
  "$BOOTSTRAP" "${TIMEOUT_MULTIPLIER:-2}" > "$CONF"

passed=0
failed=0
for fn in "${SUBTEST_FUNCTIONS[@]}"; do
  log="$RESULTS_DIR/$fn.log"
  start=$(date +%s)
  (cd "$L/tests" &&
   RDKAFKA_TEST_CONF="$CONF" TEST_KAFKA_VERSION=${TEST_KAFKA_VERSION:-3.9.0} \
   TESTS=0081 SUBTESTS="$fn" \
   timeout -k 20 "${PER_TEST_TIMEOUT:-600}" ./test-runner -p1 -L) > "$log" 2>&1
  rc=$?
  secs=$(($(date +%s) - start))
  # A subtest that ran logs "[ <function>:<line>: ...: PASS (...) ]".
  ran=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -c "\[ $fn:[0-9]*.*: PASS (")
  if [ "$rc" -eq 0 ] && [ "$ran" -gt 0 ]; then
    echo "PASS  0081_admin $fn ($ran subtests, ${secs}s)"
    passed=$((passed + 1))
  else
    echo "FAIL  0081_admin $fn (exit $rc, $ran subtests passed, ${secs}s); log: $log"
    sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -A3 "TEST FAILURE" | head -n 12
    failed=$((failed + 1))
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
