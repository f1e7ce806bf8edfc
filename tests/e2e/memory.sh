# Memory stays flat however large the input: 3 M generated records through
# generate -> map -> filter -> null in under 100 MB peak RSS.
. "$(dirname "$0")/lib.bash"

if [ -n "${SLUICE_SANITIZE:-}" ]; then
    echo "skipped: RSS is not meaningful under sanitizers (SLUICE_SANITIZE=$SLUICE_SANITIZE)"
    exit 0
fi
cat > out/big.yaml <<'YAML'
name: big
stages:
  - name: gen
    type: generate
    count: 3000000
    fields: {id: seq(), user: '"u" + to_string(seq() % 1000)', status: 'seq() % 5 == 0 ? 503 : 200'}
  - {name: shape, type: map, set: {even: id % 2 == 0}}
  - {name: keep, type: filter, where: status >= 500}
  - {name: sink, type: null}
YAML
/usr/bin/time -f '%M' -o out/rss "$SLUICE_BIN" run out/big.yaml --quiet --metrics-file out/big.json
rss_kb=$(tail -1 out/rss)
echo "peak RSS: $rss_kb KiB"
[ "$rss_kb" -lt 102400 ] || fail "peak RSS $rss_kb KiB >= 100 MiB"
expect_eq "records through the filter" "600000" "$(metric out/big.json keep records_out)"
finish
