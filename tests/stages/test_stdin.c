/*
 * The `stdin` source: fd 0 is replaced by a file or a pipe in the test's own
 * process (Criterion runs each test in a process of its own).
 */
#include <pthread.h>

#include "stages/stage_test.h"

extern const sl_stage_desc sl_stage_stdin;

TestSuite(stdin_source, .init = st_setup, .fini = st_teardown);

static void stdin_from_file(const char *name)
{
    int fd = open(st_path(name), O_RDONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(dup2(fd, STDIN_FILENO), STDIN_FILENO);
    close(fd);
}

Test(stdin_source, lines_from_standard_input)
{
    st_write_str("in.txt", "one\r\n\ntwo\nthree");
    stdin_from_file("in.txt");
    sl_harness *h = st_harness(&sl_stage_stdin, NULL);
    cr_assert_eq(sl_harness_run(h), 0, "%s", sl_harness_last_error(h));
    cr_assert_eq(sl_harness_emitted_count(h), 3);
    cr_expect_str_eq(st_payload(h, 0), "one");
    cr_expect_str_eq(st_payload(h, 1), "two");
    cr_expect_str_eq(st_payload(h, 2), "three");
    const sl_position *p = sl_record_position(sl_harness_emitted(h, 1));
    cr_expect_str_eq(p->locator, "<stdin>");
    cr_expect_eq(p->seq, 3);
    cr_expect_eq(p->offset, 10);
    cr_expect_eq(sl_harness_bytes_in(h), 15);
    sl_harness_destroy(h);
}

Test(stdin_source, long_line_is_an_error)
{
    st_write_str("in.txt", "abc\nabcdefgh\n");
    stdin_from_file("in.txt");
    sl_harness *h = st_harness(&sl_stage_stdin, "max_line: 5");
    cr_assert_eq(sl_harness_run(h), SL_ELIMIT);
    cr_expect_str_eq(sl_harness_last_error(h), "<stdin>:2: line longer than max_line (5 bytes)");
    sl_harness_destroy(h);
}

Test(stdin_source, one_worker_only)
{
    sl_harness *h = NULL;
    cr_assert_eq(sl_harness_create(&sl_stage_stdin, NULL, &h), 0);
    sl_harness_set_worker(h, 0, 2);
    cr_expect_eq(sl_harness_init(h), SL_ECONFIG);
    sl_harness_destroy(h);
}

static void *stop_thread(void *arg)
{
    sl_harness_stop(arg);
    return NULL;
}

Test(stdin_source, stop_wakes_a_reader_waiting_on_an_idle_pipe)
{
    /* The pipe's write end stays open and silent: without the stop, run()
     * would wait for input forever. Whether the stop comes before or while
     * run() waits, it must return 0 with what it had. */
    int p[2];
    cr_assert_eq(pipe(p), 0);
    cr_assert_eq(write(p[1], "first\npart", 10), 10);
    cr_assert_eq(dup2(p[0], STDIN_FILENO), STDIN_FILENO);
    close(p[0]);
    sl_harness *h = st_harness(&sl_stage_stdin, NULL);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, stop_thread, h), 0);
    cr_expect_eq(sl_harness_run(h), 0);
    pthread_join(t, NULL);
    cr_expect_leq(sl_harness_emitted_count(h), 1);
    if (sl_harness_emitted_count(h) == 1)
        cr_expect_str_eq(st_payload(h, 0), "first");
    sl_harness_destroy(h);
    close(p[1]);
}

Test(stdin_source, stop_before_run)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    cr_assert_eq(dup2(p[0], STDIN_FILENO), STDIN_FILENO);
    close(p[0]);
    sl_harness *h = st_harness(&sl_stage_stdin, NULL);
    sl_harness_stop(h);
    cr_expect_eq(sl_harness_run(h), 0);
    cr_expect_eq(sl_harness_emitted_count(h), 0);
    sl_harness_destroy(h);
    close(p[1]);
}
