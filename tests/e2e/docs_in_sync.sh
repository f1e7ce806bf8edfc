# docs/stages/*.md are generated from the stages' option tables; this fails
# when a table changed and the pages were not regenerated with
#   ./build/sluice stages --markdown docs/stages
. "$(dirname "$0")/lib.bash"

"$SLUICE_BIN" stages --markdown out/stages
if ! diff -ru "$SLUICE_SOURCE_DIR/docs/stages" out/stages >out/docs.diff; then
    fail "docs/stages is out of date; regenerate with: sluice stages --markdown docs/stages"
    head -40 out/docs.diff >&2
fi
finish
