/*
 * The `file` source: real files in a temporary directory, read through the
 * stage harness.
 */
#include "stages/stage_test.h"

extern const sl_stage_desc sl_stage_file_source;

TestSuite(file_source, .init = st_setup, .fini = st_teardown);

static sl_harness *run_file(const char *yaml)
{
    sl_harness *h = st_harness(&sl_stage_file_source, yaml);
    int rc = sl_harness_run(h);
    cr_assert_eq(rc, 0, "run: %s (%s)", sl_error_name(rc), sl_harness_last_error(h));
    return h;
}

Test(file_source, lines_positions_and_bytes)
{
    /* A blank line, a CRLF line and a last line without a newline. */
    const char *text = "alpha\nbeta\r\n\ngamma";
    st_write_str("in.log", text);
    sl_harness *h = run_file(st_fmt("path: %s", st_path("in.log")));
    cr_assert_eq(sl_harness_emitted_count(h), 3);
    cr_expect_str_eq(st_payload(h, 0), "alpha");
    cr_expect_str_eq(st_payload(h, 1), "beta");
    cr_expect_str_eq(st_payload(h, 2), "gamma");

    const sl_position *p0 = sl_record_position(sl_harness_emitted(h, 0));
    cr_expect_str_eq(p0->source, "test");
    cr_expect_str_eq(p0->locator, st_path("in.log"));
    cr_expect_eq(p0->offset, 6);
    cr_expect_eq(p0->seq, 1);
    const sl_position *p1 = sl_record_position(sl_harness_emitted(h, 1));
    cr_expect_eq(p1->offset, 12);
    cr_expect_eq(p1->seq, 2);
    const sl_position *p2 = sl_record_position(sl_harness_emitted(h, 2));
    cr_expect_eq(p2->offset, (int64_t)strlen(text));
    cr_expect_eq(p2->seq, 4, "blank lines count in line numbers");
    cr_expect_eq(sl_harness_bytes_in(h), strlen(text));
    sl_harness_destroy(h);
}

Test(file_source, empty_file_and_only_blank_lines)
{
    st_write_str("empty.log", "");
    st_write_str("blank.log", "\n\r\n\n");
    sl_harness *h = run_file(st_fmt("paths: [%s, %s]", st_path("empty.log"), st_path("blank.log")));
    cr_expect_eq(sl_harness_emitted_count(h), 0);
    cr_expect_eq(sl_harness_bytes_in(h), 4);
    sl_harness_destroy(h);
}

Test(file_source, byte_order_mark_is_skipped)
{
    st_write_str("bom.csv", "\xEF\xBB\xBFid,name\n1,a\n");
    sl_harness *h = run_file(st_fmt("path: %s", st_path("bom.csv")));
    cr_assert_eq(sl_harness_emitted_count(h), 2);
    cr_expect_str_eq(st_payload(h, 0), "id,name");
    sl_harness_destroy(h);
}

Test(file_source, many_lines_across_buffer_refills)
{
    /* ~2.3 MB with lines of varying length: every buffer boundary case. */
    FILE *f = fopen(st_path("big.log"), "w");
    cr_assert_not_null(f);
    const int n = 60000;
    for (int i = 1; i <= n; i++) {
        fprintf(f, "line-%d-", i);
        for (int k = 0; k < i % 57; k++)
            fputc('a' + k % 26, f);
        fputs(i % 3 == 0 ? "\r\n" : "\n", f);
    }
    fclose(f);
    sl_harness *h = run_file(st_fmt("path: %s", st_path("big.log")));
    cr_assert_eq(sl_harness_emitted_count(h), (size_t)n);
    for (int i = 1; i <= n; i++) {
        char want[128];
        int len = snprintf(want, sizeof(want), "line-%d-", i);
        for (int k = 0; k < i % 57; k++)
            want[len++] = (char)('a' + k % 26);
        want[len] = '\0';
        cr_assert_str_eq(st_payload(h, (size_t)i - 1), want, "line %d", i);
        cr_assert_eq(sl_record_position(sl_harness_emitted(h, (size_t)i - 1))->seq, i);
    }
    struct stat sb;
    stat(st_path("big.log"), &sb);
    cr_expect_eq(sl_harness_bytes_in(h), (uint64_t)sb.st_size);
    cr_expect_eq(sl_record_position(sl_harness_emitted(h, (size_t)n - 1))->offset, sb.st_size);
    sl_harness_destroy(h);
}

Test(file_source, glob_is_sorted_and_paths_are_deduplicated)
{
    st_write_str("b.log", "b1\nb2\n");
    st_write_str("a.log", "a1\n");
    st_write_str("c.txt", "c1\n");
    sl_harness *h = run_file(st_fmt("paths: ['%s/*.log', '%s', '%s']", st_dir,
                                    st_path("c.txt"), st_path("a.log")));
    cr_assert_eq(sl_harness_emitted_count(h), 4);
    cr_expect_str_eq(st_payload(h, 0), "a1");
    cr_expect_str_eq(st_payload(h, 1), "b1");
    cr_expect_str_eq(st_payload(h, 2), "b2");
    cr_expect_str_eq(st_payload(h, 3), "c1");
    cr_expect_str_eq(sl_record_position(sl_harness_emitted(h, 1))->locator, st_path("b.log"));
    sl_harness_destroy(h);
}

Test(file_source, brace_pattern)
{
    st_write_str("x.log", "x\n");
    st_write_str("y.log", "y\n");
    st_write_str("z.log", "z\n");
    sl_harness *h = run_file(st_fmt("path: '%s/{z,x}.log'", st_dir));
    cr_assert_eq(sl_harness_emitted_count(h), 2);
    cr_expect_str_eq(st_payload(h, 0), "z", "braces keep their order");
    cr_expect_str_eq(st_payload(h, 1), "x");
    sl_harness_destroy(h);
}

Test(file_source, workers_share_the_files)
{
    st_write_str("1.log", "one\n");
    st_write_str("2.log", "two\n");
    st_write_str("3.log", "three\n");
    sl_harness *h = NULL;
    cr_assert_eq(sl_harness_create(&sl_stage_file_source, st_fmt("path: '%s/*.log'", st_dir), &h), 0);
    sl_harness_set_worker(h, 1, 2);
    cr_assert_eq(sl_harness_init(h), 0);
    cr_assert_eq(sl_harness_run(h), 0);
    cr_assert_eq(sl_harness_emitted_count(h), 1);
    cr_expect_str_eq(st_payload(h, 0), "two");
    sl_harness_destroy(h);
}

Test(file_source, missing_file_is_an_error_naming_it)
{
    sl_harness *h = NULL;
    cr_assert_eq(sl_harness_create(&sl_stage_file_source,
                                   st_fmt("path: %s", st_path("does-not-exist.jsonl")), &h), 0);
    cr_assert_eq(sl_harness_init(h), SL_ENOTFOUND);
    cr_expect_str_eq(sl_harness_last_error(h),
                     st_fmt("%s: no such file or directory", st_path("does-not-exist.jsonl")));
    sl_harness_destroy(h);
}

Test(file_source, glob_matching_nothing_is_an_error_naming_the_pattern)
{
    st_write_str("a.log", "a\n");
    sl_harness *h = NULL;
    cr_assert_eq(sl_harness_create(&sl_stage_file_source,
                                   st_fmt("paths: ['%s/*.log', '%s/*.csv']", st_dir, st_dir), &h), 0);
    cr_assert_eq(sl_harness_init(h), SL_ENOTFOUND);
    cr_expect_str_eq(sl_harness_last_error(h), st_fmt("no file matches '%s/*.csv'", st_dir));
    sl_harness_destroy(h);
}

Test(file_source, path_and_paths_are_exclusive)
{
    sl_harness *h = NULL;
    cr_assert_eq(sl_harness_create(&sl_stage_file_source, "{path: a, paths: [b]}", &h), 0);
    cr_expect_eq(sl_harness_init(h), SL_ECONFIG);
    cr_expect_str_eq(sl_harness_last_error(h), "give either 'path' or 'paths', not both");
    sl_harness_destroy(h);
    cr_assert_eq(sl_harness_create(&sl_stage_file_source, NULL, &h), 0);
    cr_expect_eq(sl_harness_init(h), SL_ECONFIG);
    cr_expect_str_eq(sl_harness_last_error(h), "one of 'path' or 'paths' is required");
    sl_harness_destroy(h);
}

Test(file_source, long_line_is_an_error_naming_file_and_line)
{
    /* Line 2 has 11 bytes; max_line is 10. Exactly 10 (+ CRLF) is fine. */
    st_write_str("long.log", "0123456789\r\n0123456789X\nok\n");
    sl_harness *h = st_harness(&sl_stage_file_source,
                               st_fmt("{path: %s, max_line: 10}", st_path("long.log")));
    cr_assert_eq(sl_harness_run(h), SL_ELIMIT);
    cr_expect_str_eq(sl_harness_last_error(h),
                     st_fmt("%s:2: line longer than max_line (10 bytes)", st_path("long.log")));
    cr_expect_eq(sl_harness_emitted_count(h), 1);
    sl_harness_destroy(h);
}

Test(file_source, long_line_beyond_the_buffer)
{
    /* 600 KiB without a newline against max_line 300KiB: caught while the
     * buffer grows, before the line ends. */
    size_t n = 600 * 1024;
    char *big = malloc(n + 8);
    memcpy(big, "short\n", 6);
    memset(big + 6, 'x', n);
    st_write("huge.log", big, n + 6);
    free(big);
    sl_harness *h = st_harness(&sl_stage_file_source,
                               st_fmt("{path: %s, max_line: 300KiB}", st_path("huge.log")));
    cr_assert_eq(sl_harness_run(h), SL_ELIMIT);
    cr_expect_str_eq(sl_harness_last_error(h),
                     st_fmt("%s:2: line longer than max_line (307200 bytes)", st_path("huge.log")));
    cr_expect_eq(sl_harness_emitted_count(h), 1);
    sl_harness_destroy(h);
}

Test(file_source, long_last_line_without_newline)
{
    st_write_str("tail.log", "ok\n0123456789ABC");
    sl_harness *h = st_harness(&sl_stage_file_source,
                               st_fmt("{path: %s, max_line: 10}", st_path("tail.log")));
    cr_assert_eq(sl_harness_run(h), SL_ELIMIT);
    cr_expect_str_eq(sl_harness_last_error(h),
                     st_fmt("%s:2: line longer than max_line (10 bytes)", st_path("tail.log")));
    sl_harness_destroy(h);
}

Test(file_source, a_directory_is_an_error)
{
    mkdir(st_path("sub"), 0755);
    sl_harness *h = st_harness(&sl_stage_file_source, st_fmt("path: %s", st_path("sub")));
    cr_assert_eq(sl_harness_run(h), SL_EIO);
    cr_expect_str_eq(sl_harness_last_error(h), st_fmt("%s: is a directory", st_path("sub")));
    sl_harness_destroy(h);
}

Test(file_source, unreadable_file_is_an_error)
{
    st_write_str("secret.log", "x\n");
    chmod(st_path("secret.log"), 0);
    bool dropped = st_drop_root();
    sl_harness *h = st_harness(&sl_stage_file_source, st_fmt("path: %s", st_path("secret.log")));
    cr_assert_eq(sl_harness_run(h), SL_EIO);
    cr_expect_str_eq(sl_harness_last_error(h),
                     st_fmt("%s: permission denied", st_path("secret.log")));
    sl_harness_destroy(h);
    st_regain_root(dropped);
}

Test(file_source, stop_before_reading_emits_nothing)
{
    st_write_str("in.log", "a\nb\n");
    sl_harness *h = st_harness(&sl_stage_file_source, st_fmt("path: %s", st_path("in.log")));
    sl_harness_stop(h);
    cr_assert_eq(sl_harness_run(h), 0);
    cr_expect_eq(sl_harness_emitted_count(h), 0);
    sl_harness_destroy(h);
}

Test(file_source, stop_while_reading_returns_promptly)
{
    /* Cancelling the run makes the next emit fail: the source stops after
     * that line instead of reading the rest. */
    FILE *f = fopen(st_path("many.log"), "w");
    for (int i = 0; i < 10000; i++)
        fprintf(f, "%d\n", i);
    fclose(f);
    sl_harness *h = st_harness(&sl_stage_file_source, st_fmt("path: %s", st_path("many.log")));
    sl_harness_cancel(h, "test");
    cr_assert_eq(sl_harness_run(h), 0);
    cr_expect_eq(sl_harness_emitted_count(h), 0);
    cr_expect_lt(sl_harness_bytes_in(h), 1000, "stopped early");
    sl_harness_destroy(h);
}

Test(file_source, max_line_must_be_positive)
{
    sl_harness *h = NULL;
    cr_assert_eq(sl_harness_create(&sl_stage_file_source, "{path: x, max_line: 0}", &h), 0);
    cr_expect_eq(sl_harness_init(h), SL_ECONFIG);
    cr_expect_str_eq(sl_harness_last_error(h), "max_line must be at least 1 byte");
    sl_harness_destroy(h);
}
