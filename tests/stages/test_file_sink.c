/* The `file` sink and the `stdout` sink. */
#include <signal.h>
#include <sys/resource.h>

#include "stages/stage_test.h"

extern const sl_stage_desc sl_stage_file_sink;
extern const sl_stage_desc sl_stage_stdout;

TestSuite(file_sink, .init = st_setup, .fini = st_teardown);
TestSuite(stdout_sink, .init = st_setup, .fini = st_teardown);

static void put(sl_harness *h, const char *json)
{
    int rc = sl_harness_process(h, st_record_json(json));
    cr_assert_eq(rc, 0, "%s: %s", json, sl_harness_last_error(h));
}

Test(file_sink, jsonl_lines_stored_on_flush)
{
    const char *out = st_path("out.jsonl");
    sl_harness *h = st_harness(&sl_stage_file_sink, st_fmt("path: %s", out));
    put(h, "{\"a\":1,\"s\":\"x\\ny\"}");
    put(h, "{\"b\":[1,{\"c\":null}]}");
    cr_expect_eq(sl_harness_stored_count(h), 0, "not stored before the write");
    char *text = st_read(out, NULL);
    cr_expect_str_eq(text, "", "nothing written before the flush");
    free(text);
    cr_assert_eq(sl_harness_flush(h), 0);
    cr_expect_eq(sl_harness_stored_count(h), 2);
    text = st_read(out, NULL);
    cr_expect_str_eq(text, "{\"a\":1,\"s\":\"x\\ny\"}\n{\"b\":[1,{\"c\":null}]}\n");
    free(text);
    sl_harness_destroy(h);
}

Test(file_sink, large_output_is_written_in_whole_lines_as_it_goes)
{
    const char *out = st_path("big.jsonl");
    sl_harness *h = st_harness(&sl_stage_file_sink, st_fmt("{path: %s, mode: truncate}", out));
    for (int i = 0; i < 5000; i++)
        put(h, st_fmt("{\"i\":%d,\"pad\":\"%040d\"}", i, i));
    uint64_t before = sl_harness_stored_count(h);
    cr_expect_gt(before, 0, "full buffers are written without waiting for flush");
    size_t len = 0;
    char *text = st_read(out, &len);
    cr_expect_gt(len, 0);
    cr_expect_eq(text[len - 1], '\n', "only whole lines reach the file");
    size_t lines = 0;
    for (size_t k = 0; k < len; k++)
        lines += text[k] == '\n';
    cr_expect_eq(lines, before, "stored = lines in the file");
    free(text);
    cr_assert_eq(sl_harness_flush(h), 0);
    cr_expect_eq(sl_harness_stored_count(h), 5000);
    sl_harness_destroy(h);
}

Test(file_sink, append_and_truncate)
{
    const char *out = st_path("out.jsonl");
    st_write_str("out.jsonl", "{\"old\":true}\n");
    sl_harness *h = st_harness(&sl_stage_file_sink, st_fmt("path: %s", out));
    put(h, "{\"n\":1}");
    cr_assert_eq(sl_harness_flush(h), 0);
    sl_harness_destroy(h);
    char *text = st_read(out, NULL);
    cr_expect_str_eq(text, "{\"old\":true}\n{\"n\":1}\n");
    free(text);

    h = st_harness(&sl_stage_file_sink, st_fmt("{path: %s, mode: truncate, fsync: true}", out));
    put(h, "{\"n\":2}");
    cr_assert_eq(sl_harness_flush(h), 0);
    sl_harness_destroy(h);
    text = st_read(out, NULL);
    cr_expect_str_eq(text, "{\"n\":2}\n");
    free(text);
}

Test(file_sink, csv_header_and_quoting)
{
    const char *out = st_path("out.csv");
    sl_harness *h = st_harness(&sl_stage_file_sink, st_fmt("{path: %s, format: csv}", out));
    put(h, "{\"id\":1,\"name\":\"Lee, Jr.\",\"note\":\"say \\\"hi\\\"\",\"ok\":true,\"x\":1.5}");
    put(h, "{\"name\":\"two\\nlines\",\"id\":2,\"x\":null,\"note\":[1,\"a\"]}");
    cr_assert_eq(sl_harness_flush(h), 0);
    cr_expect_eq(sl_harness_stored_count(h), 2);
    char *text = st_read(out, NULL);
    cr_expect_str_eq(text,
                     "id,name,note,ok,x\r\n"
                     "1,\"Lee, Jr.\",\"say \"\"hi\"\"\",true,1.5\r\n"
                     "2,\"two\nlines\",\"[1,\"\"a\"\"]\",,\r\n");
    free(text);
    sl_harness_destroy(h);

    /* Appending to the file again: no second header. */
    h = st_harness(&sl_stage_file_sink, st_fmt("{path: %s, format: csv}", out));
    put(h, "{\"id\":3,\"name\":\"c\",\"note\":\"\",\"ok\":false,\"x\":0}");
    cr_assert_eq(sl_harness_flush(h), 0);
    sl_harness_destroy(h);
    text = st_read(out, NULL);
    cr_expect(strstr(text, "\r\n3,c,,false,0\r\n") != NULL, "%s", text);
    cr_expect(strstr(text + 1, "id,name") == NULL, "header written once: %s", text);
    free(text);
}

Test(file_sink, csv_field_outside_the_columns)
{
    const char *out = st_path("out.csv");
    sl_harness *h = st_harness(&sl_stage_file_sink, st_fmt("{path: %s, format: csv}", out));
    put(h, "{\"a\":1}");
    cr_assert_eq(sl_harness_process(h, st_record_json("{\"a\":2,\"b\":3}")), SL_EINVAL);
    cr_expect_str_eq(sl_harness_last_error(h),
                     st_fmt("%s: field 'b' is not one of the CSV columns (taken from the first "
                            "record; list them in 'columns')", out));
    cr_expect_eq(sl_harness_failed_count(h), 1);
    put(h, "{\"a\":4}");
    cr_assert_eq(sl_harness_flush(h), 0);
    char *text = st_read(out, NULL);
    cr_expect_str_eq(text, "a\r\n1\r\n4\r\n");
    free(text);
    sl_harness_destroy(h);
}

Test(file_sink, csv_columns_option)
{
    const char *out = st_path("out.csv");
    sl_harness *h = st_harness(&sl_stage_file_sink,
                               st_fmt("{path: %s, format: csv, columns: [b, 'a,z']}", out));
    put(h, "{\"a,z\":1,\"b\":2,\"c\":3}");
    put(h, "{\"c\":4}");
    cr_assert_eq(sl_harness_flush(h), 0);
    char *text = st_read(out, NULL);
    cr_expect_str_eq(text, "b,\"a,z\"\r\n2,1\r\n,\r\n");
    free(text);
    sl_harness_destroy(h);
}

Test(file_sink, bad_options)
{
    sl_harness *h = NULL;
    cr_assert_eq(sl_harness_create(&sl_stage_file_sink, st_fmt("{path: %s, format: csv}",
                                                                st_path("x.csv")), &h), 0);
    sl_harness_set_worker(h, 0, 3);
    cr_expect_eq(sl_harness_init(h), SL_ECONFIG);
    cr_expect_str_eq(sl_harness_last_error(h), "format: csv needs workers: 1");
    sl_harness_destroy(h);
    cr_assert_eq(sl_harness_create(&sl_stage_file_sink, st_fmt("{path: %s, columns: [a]}",
                                                                st_path("x.jsonl")), &h), 0);
    cr_expect_eq(sl_harness_init(h), SL_ECONFIG);
    sl_harness_destroy(h);
    cr_expect_eq(sl_harness_create(&sl_stage_file_sink, "format: jsonl", &h), SL_ECONFIG,
                 "path is required");
    sl_harness_destroy(h);
}

Test(file_sink, missing_directory_is_an_error_naming_the_path)
{
    const char *out = st_path("no-such-dir/x.jsonl");
    sl_harness *h = NULL;
    cr_assert_eq(sl_harness_create(&sl_stage_file_sink, st_fmt("path: %s", out), &h), 0);
    cr_assert_eq(sl_harness_init(h), SL_ENOTFOUND);
    cr_expect_str_eq(sl_harness_last_error(h), st_fmt("%s: no such file or directory", out));
    sl_harness_destroy(h);
}

Test(file_sink, read_only_directory_is_an_error)
{
    mkdir(st_path("ro"), 0555);
    chmod(st_path("ro"), 0555);
    const char *out = st_path("ro/x.jsonl");
    bool dropped = st_drop_root();
    sl_harness *h = NULL;
    cr_assert_eq(sl_harness_create(&sl_stage_file_sink, st_fmt("path: %s", out), &h), 0);
    cr_assert_eq(sl_harness_init(h), SL_EIO);
    cr_expect_str_eq(sl_harness_last_error(h), st_fmt("%s: permission denied", out));
    sl_harness_destroy(h);
    st_regain_root(dropped);
}

Test(file_sink, disk_full_is_reported_and_nothing_counts_as_stored)
{
    sl_harness *h = st_harness(&sl_stage_file_sink, "path: /dev/full");
    put(h, "{\"a\":1}");
    put(h, "{\"a\":2}");
    cr_assert_eq(sl_harness_flush(h), SL_ENOSPC);
    cr_expect_str_eq(sl_harness_last_error(h), "/dev/full: no space left on device");
    cr_expect_eq(sl_harness_stored_count(h), 0);
    /* The batch is over: both records met on_error (fail: the run fails). */
    cr_expect_eq(sl_harness_rejected_count(h), 2);
    cr_expect_eq(sl_harness_error_count(h), 2);
    cr_expect_eq(sl_harness_flush(h), 0, "nothing is held any more");
    sl_harness_destroy(h);
}

Test(file_sink, failed_batch_goes_to_dead_letter_record_by_record)
{
    /* Under on_error: dead_letter a failed write costs the run nothing:
     * every record of the batch is dead-lettered with the reason, whether
     * it was held (flush) or in hand (a full buffer's write). */
    sl_harness *h = st_harness(&sl_stage_file_sink, "path: /dev/full");
    cr_assert_eq(sl_harness_set_on_error(h, "dead_letter"), 0);
    cr_assert_eq(sl_harness_set_on_error(h, "sometimes"), SL_EINVAL);
    const int n = 3000;
    int failed = 0;
    for (int i = 0; i < n; i++) {
        int rc = sl_harness_process(h, st_record_json(st_fmt("{\"i\":%d,\"pad\":\"%0100d\"}", i, i)));
        cr_assert(rc == 0 || rc == SL_ENOSPC, "%s", sl_error_name(rc));
        failed += rc != 0;
    }
    cr_assert_gt(failed, 0, "full buffers were written on the way");
    cr_assert_eq(sl_harness_flush(h), 0, "%s", sl_harness_last_error(h));
    cr_expect_eq(sl_harness_stored_count(h), 0);
    cr_expect_eq(sl_harness_failed_count(h), (size_t)failed);
    cr_expect_eq(sl_harness_rejected_count(h), (size_t)(n - failed));
    cr_expect_eq(sl_harness_error_count(h), (uint64_t)n);
    static char seen[3000];
    for (size_t k = 0; k < sl_harness_rejected_count(h); k++) {
        cr_assert_str_eq(sl_harness_rejected_reason(h, k),
                         "/dev/full: no space left on device");
        seen[sl_value_get_int(sl_record_get(sl_harness_rejected(h, k), "i"))]++;
    }
    for (size_t k = 0; k < sl_harness_failed_count(h); k++)
        seen[sl_value_get_int(sl_record_get(sl_harness_failed(h, k), "i"))]++;
    for (int i = 0; i < n; i++)
        cr_assert_eq(seen[i], 1, "record %d met on_error %d times", i, seen[i]);
    sl_harness_destroy(h);
}

Test(file_sink, failed_fsync_under_dead_letter_rejects_and_goes_on)
{
    const char *fifo = st_path("fifo");
    cr_assert_eq(mkfifo(fifo, 0644), 0);
    int rd = open(fifo, O_RDONLY | O_NONBLOCK);
    cr_assert_geq(rd, 0);
    sl_harness *h = st_harness(&sl_stage_file_sink, st_fmt("{path: %s, fsync: true}", fifo));
    cr_assert_eq(sl_harness_set_on_error(h, "dead_letter"), 0);
    put(h, "{\"a\":1}");
    put(h, "{\"a\":2}");
    cr_assert_eq(sl_harness_flush(h), 0);
    cr_expect_eq(sl_harness_rejected_count(h), 2);
    cr_expect_str_eq(sl_harness_rejected_reason(h, 1), st_fmt("%s: invalid argument", fifo));
    cr_expect_eq(sl_harness_error_count(h), 2);
    cr_expect_eq(sl_harness_stored_count(h), 0);
    sl_harness_destroy(h);
    close(rd);
}

Test(file_sink, failed_write_leaves_no_partial_line)
{
    /* A file size limit makes write(2) stop part-way through a buffer: the
     * file is cut back to where it was, and the records stay unstored. */
    const char *out = st_path("limited.jsonl");
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {.rlim_cur = 100, .rlim_max = RLIM_INFINITY};
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
    sl_harness *h = st_harness(&sl_stage_file_sink, st_fmt("path: %s", out));
    put(h, "{\"first\":\"0123456789\"}");
    cr_assert_eq(sl_harness_flush(h), 0);
    for (int i = 0; i < 10; i++)
        put(h, st_fmt("{\"i\":%d,\"pad\":\"0123456789\"}", i));
    cr_assert_eq(sl_harness_flush(h), SL_EIO);
    cr_expect_str_eq(sl_harness_last_error(h), st_fmt("%s: file too large", out));
    cr_expect_eq(sl_harness_stored_count(h), 1);
    char *text = st_read(out, NULL);
    cr_expect_str_eq(text, "{\"first\":\"0123456789\"}\n");
    free(text);
    sl_harness_destroy(h);
}

Test(file_sink, failed_write_in_process_returns_the_record)
{
    /* The write that a full buffer triggers fails: the record that
     * triggered it goes back to the engine, the others stay held. */
    sl_harness *h = st_harness(&sl_stage_file_sink, "path: /dev/full");
    int rc = 0;
    int n = 0;
    while (rc == 0 && n < 100000) {
        rc = sl_harness_process(h, st_record_json(st_fmt("{\"i\":%d,\"pad\":\"%0100d\"}", n, n)));
        n++;
    }
    cr_assert_eq(rc, SL_ENOSPC);
    cr_expect_eq(sl_harness_failed_count(h), 1);
    cr_expect_eq(sl_harness_stored_count(h), 0);
    sl_harness_destroy(h);
}

Test(file_sink, failed_fsync_counts_the_records_as_errors)
{
    /* A FIFO takes the write but cannot be fsync'ed (EINVAL): the lines
     * may not be durable, so the records are errors, not stored. */
    const char *fifo = st_path("fifo");
    cr_assert_eq(mkfifo(fifo, 0644), 0);
    int rd = open(fifo, O_RDONLY | O_NONBLOCK);
    cr_assert_geq(rd, 0);
    sl_harness *h = st_harness(&sl_stage_file_sink, st_fmt("{path: %s, fsync: true}", fifo));
    put(h, "{\"a\":1}");
    put(h, "{\"a\":2}");
    cr_assert_eq(sl_harness_flush(h), SL_EIO);
    cr_expect_str_eq(sl_harness_last_error(h), st_fmt("%s: invalid argument", fifo));
    cr_expect_eq(sl_harness_stored_count(h), 0);
    cr_expect_eq(sl_harness_error_count(h), 2);
    cr_expect_eq(sl_harness_flush(h), 0, "nothing left to write");
    char buf[64];
    cr_expect_eq(read(rd, buf, sizeof(buf)), 16, "the lines did reach the FIFO");
    sl_harness_destroy(h);
    close(rd);
}

Test(stdout_sink, json_lines_on_standard_output)
{
    int saved = dup(STDOUT_FILENO);
    int fd = open(st_path("stdout.txt"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(fd, 0);
    cr_assert_eq(dup2(fd, STDOUT_FILENO), STDOUT_FILENO);
    close(fd);
    sl_harness *h = st_harness(&sl_stage_stdout, NULL);
    put(h, "{\"a\":1}");
    put(h, "{\"b\":\"é\"}");
    cr_expect_eq(sl_harness_stored_count(h), 0);
    int rc = sl_harness_flush(h);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    cr_assert_eq(rc, 0);
    cr_expect_eq(sl_harness_stored_count(h), 2);
    char *text = st_read(st_path("stdout.txt"), NULL);
    cr_expect_str_eq(text, "{\"a\":1}\n{\"b\":\"é\"}\n");
    free(text);
    sl_harness_destroy(h);
}

Test(stdout_sink, closed_pipe_is_an_error)
{
    signal(SIGPIPE, SIG_IGN);
    int saved = dup(STDOUT_FILENO);
    int p[2];
    cr_assert_eq(pipe(p), 0);
    close(p[0]);
    cr_assert_eq(dup2(p[1], STDOUT_FILENO), STDOUT_FILENO);
    close(p[1]);
    sl_harness *h = st_harness(&sl_stage_stdout, NULL);
    put(h, "{\"a\":1}");
    int rc = sl_harness_flush(h);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    cr_expect_eq(rc, SL_EIO);
    cr_expect_str_eq(sl_harness_last_error(h), "stdout: broken pipe");
    sl_harness_destroy(h);
}
