/*
 * Resources are released on every exit path of `sluice run`: the command is
 * run in this process (sl__cli_run, as main() calls it) on real files,
 * sockets and databases, and afterwards the process holds exactly the file
 * descriptors and threads it held before — for a success, a failing stage,
 * a missing input, an unwritable output, a database that fills up, the
 * deadline, config errors, a dead-letter file that cannot be opened, a bad
 * metrics address, a graceful stop and a forced stop. Memory is checked by
 * LeakSanitizer in the address build (every test process exits through it).
 *
 * The counts are taken before the first run in the (fresh) test process,
 * so even a descriptor kept once per process would show.
 *
 * Signals are sent from a helper thread once the run is seen writing (an
 * inotify watch on its output file), never after a sleep.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/cli.h"
#include "engine/signals.h"

static char dir[PATH_MAX];

static void make_dir(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/sluice-res.XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(resources, .init = make_dir, .fini = remove_dir, .timeout = 120);

/* Entries of a /proc directory, without . and .. */
static int count_entries(const char *path)
{
    DIR *d = opendir(path);
    cr_assert_not_null(d, "cannot open %s", path);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static int open_fds(void)
{
    return count_entries("/proc/self/fd");
}

static int threads(void)
{
    return count_entries("/proc/self/task");
}

/* The open descriptors as text, for a failure message. */
static void list_fds(char *buf, size_t size)
{
    buf[0] = '\0';
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return;
    struct dirent *e;
    size_t len = 0;
    while ((e = readdir(d)) != NULL && len + 1 < size) {
        if (e->d_name[0] == '.')
            continue;
        char target[PATH_MAX];
        ssize_t n = readlinkat(dirfd(d), e->d_name, target,
                               sizeof(target) - 1);
        target[n > 0 ? n : 0] = '\0';
        int w = snprintf(buf + len, size - len, " %s->%s", e->d_name, target);
        if (w < 0 || (size_t)w >= size - len)
            break;
        len += (size_t)w;
    }
    closedir(d);
}

/* dir/name with printf-style text, written whole. Returns the path. */
static const char *write_file(const char *name, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static const char *write_file(const char *name, const char *fmt, ...)
{
    static char path[PATH_MAX];
    int w = snprintf(path, sizeof(path), "%s/%s", dir, name);
    cr_assert(w > 0 && (size_t)w < sizeof(path));
    FILE *fp = fopen(path, "w");
    cr_assert_not_null(fp, "%s", path);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(fp, fmt, ap);
    va_end(ap);
    cr_assert_eq(fclose(fp), 0);
    return path;
}

/* `sluice run dir/p.yaml --quiet` with the pipeline text; its exit code. */
static int run_pipeline(const char *yaml)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s", write_file("p.yaml", "%s", yaml));
    char *argv[] = {path, (char *)"--quiet", NULL};
    return sl__cli_run(2, argv);
}

/* Run yaml, check the exit code and that descriptors and threads are back
 * to what they were before. */
static void expect_released(const char *what, const char *yaml, int want)
{
    int fd0 = open_fds(), th0 = threads();
    cr_assert_eq(run_pipeline(yaml), want, "%s: exit code", what);
    int fd1 = open_fds(), th1 = threads();
    char fds[2048];
    list_fds(fds, sizeof(fds));
    cr_expect_eq(fd1, fd0, "%s: %d descriptors open before, %d after:%s",
                 what, fd0, fd1, fds);
    cr_expect_eq(th1, th0, "%s: %d threads before, %d after", what, th0, th1);
}

/* A pipeline text with dir substituted for every %1$s. */
static char *pipeline(const char *fmt)
{
    char *text = NULL;
    cr_assert_neq(asprintf(&text, fmt, dir), -1);
    return text;
}

static void write_input(void)
{
    write_file("in.jsonl",
               "{\"id\":1,\"status\":200}\n{\"id\":2,\"status\":500}\n"
               "not json\n{\"id\":3,\"status\":503}\n{\"id\":4}\n");
}

Test(resources, success_with_every_kind_of_output)
{
    write_input();
    char *y = pipeline(
        "name: ok\n"
        "dead_letter: {path: '%1$s/rejects.jsonl'}\n"
        "metrics: {file: '%1$s/m.json', history: '%1$s/h.jsonl', "
        "interval: 10ms, listen: '127.0.0.1:0'}\n"
        "stages:\n"
        "  - {name: read, type: file, path: '%1$s/in.jsonl'}\n"
        "  - {name: parse, type: json, on_error: dead_letter}\n"
        "  - {name: keep, type: filter, where: 'status >= 0'}\n"
        "  - {name: copy, type: file, path: '%1$s/copy.jsonl', inputs: [keep]}\n"
        "  - {name: csv, type: file, format: csv, path: '%1$s/copy.csv', "
        "inputs: [parse]}\n"
        "  - {name: db, type: sqlite, path: '%1$s/o.db', table: t, "
        "batch_size: 2, inputs: [parse]}\n");
    expect_released("success", y, SL__EXIT_OK);
    free(y);
}

Test(resources, failing_stage)
{
    write_input();
    char *y = pipeline(
        "name: fail\n"
        "stages:\n"
        "  - {name: read, type: file, path: '%1$s/in.jsonl'}\n"
        "  - {name: parse, type: json}\n"
        "  - {name: db, type: sqlite, path: '%1$s/o.db', table: t, "
        "batch_size: 1}\n");
    expect_released("failing stage", y, SL__EXIT_FAILED);
    free(y);
}

Test(resources, missing_input)
{
    char *y = pipeline(
        "name: missing\n"
        "stages:\n"
        "  - {name: read, type: file, path: '%1$s/nothing-here.jsonl'}\n"
        "  - {name: parse, type: json}\n"
        "  - {name: db, type: sqlite, path: '%1$s/o.db', table: t}\n");
    expect_released("missing input", y, SL__EXIT_FAILED);
    free(y);
}

Test(resources, unwritable_outputs)
{
    write_input();
    char *y = pipeline(
        "name: unwritable\n"
        "stages:\n"
        "  - {name: read, type: file, path: '%1$s/in.jsonl'}\n"
        "  - {name: out, type: file, path: '%1$s/no-dir/out.jsonl'}\n");
    expect_released("unwritable file", y, SL__EXIT_FAILED);
    free(y);
    y = pipeline(
        "name: unwritable\n"
        "stages:\n"
        "  - {name: read, type: file, path: '%1$s/in.jsonl'}\n"
        "  - {name: parse, type: json, on_error: skip}\n"
        "  - {name: db, type: sqlite, path: '%1$s/no-dir/o.db', table: t}\n");
    expect_released("unwritable database", y, SL__EXIT_FAILED);
    free(y);
}

Test(resources, database_fills_up)
{
    /* max_size fails the store the way a full disk does */
    char *y = pipeline(
        "name: full\n"
        "stages:\n"
        "  - {name: gen, type: generate, fields: {id: seq(), pad: "
        "'\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"'}}\n"
        "  - {name: db, type: sqlite, path: '%1$s/full.db', table: t, "
        "max_size: 64KiB, batch_size: 50}\n");
    expect_released("database full", y, SL__EXIT_FAILED);
    free(y);
}

Test(resources, deadline)
{
    char *y = pipeline(
        "name: deadline\n"
        "settings: {deadline: 100ms}\n"
        "stages:\n"
        "  - {name: gen, type: generate}\n"
        "  - {name: slow, type: rate_limit, rate: 100/s}\n"
        "  - {name: db, type: sqlite, path: '%1$s/d.db', table: t}\n");
    expect_released("deadline", y, SL__EXIT_FAILED);
    free(y);
}

Test(resources, config_errors)
{
    expect_released("unknown key",
                    "name: bad\nstages:\n  - {name: g, type: generate, "
                    "cuont: 1}\n  - {name: o, type: null}\n",
                    SL__EXIT_USAGE);
    expect_released("not YAML", "name: [unclosed\n", SL__EXIT_USAGE);
    char *y = pipeline(
        "name: dl\n"
        "dead_letter: {path: '%1$s/no-dir/rejects.jsonl'}\n"
        "stages:\n"
        "  - {name: g, type: generate, count: 1}\n"
        "  - {name: o, type: null, on_error: dead_letter}\n");
    expect_released("dead-letter file cannot be opened", y, SL__EXIT_FAILED);
    free(y);
    expect_released("bad metrics address",
                    "name: m\nmetrics: {listen: '127.0.0.1:99999'}\n"
                    "stages:\n  - {name: g, type: generate, count: 1}\n"
                    "  - {name: o, type: null}\n", SL__EXIT_USAGE);
}

/* ------------------------------------------------------------------ */
/* Stops by signal                                                     */
/* ------------------------------------------------------------------ */

typedef struct signaller {
    int inotify_fd;     /* watches the run's output file */
    int sigs[2];        /* sent in order once the file is written; 0: none */
} signaller;

static void *signal_when_written(void *arg)
{
    signaller *s = arg;
    char ev[sizeof(struct inotify_event) + NAME_MAX + 1];
    /* Blocks until the run writes. On an error the signals go at once:
     * the run still ends, and the exit code tells. */
    ssize_t n = read(s->inotify_fd, ev, sizeof(ev));
    (void)n;
    for (int i = 0; i < 2 && s->sigs[i] != 0; i++)
        kill(getpid(), s->sigs[i]);
    return NULL;
}

/*
 * Run yaml, which writes to dir/out.jsonl (created empty here, appended by
 * the run), and send sigs once it has written there. Returns the exit
 * code. The helper thread and the watch are gone before it returns.
 */
static int run_and_signal(const char *yaml, int sig1, int sig2)
{
    const char *out = write_file("out.jsonl", "%s", "");
    signaller s = {.sigs = {sig1, sig2}};
    s.inotify_fd = inotify_init1(IN_CLOEXEC);
    cr_assert_geq(s.inotify_fd, 0);
    cr_assert_geq(inotify_add_watch(s.inotify_fd, out, IN_MODIFY), 0);
    /* The helper inherits the blocked mask: only sluice's signal thread
     * takes the signals. */
    cr_assert_eq(sl__signals_block(), 0);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, signal_when_written, &s), 0);
    int rc = run_pipeline(yaml);
    pthread_join(t, NULL);
    close(s.inotify_fd);
    return rc;
}

static void expect_released_by_signal(const char *what, const char *yaml,
                                      int sig1, int sig2, int want)
{
    int fd0 = open_fds(), th0 = threads();
    cr_assert_eq(run_and_signal(yaml, sig1, sig2), want, "%s: exit code",
                 what);
    int fd1 = open_fds(), th1 = threads();
    char fds[2048];
    list_fds(fds, sizeof(fds));
    cr_expect_eq(fd1, fd0, "%s: %d descriptors open before, %d after:%s",
                 what, fd0, fd1, fds);
    cr_expect_eq(th1, th0, "%s: %d threads before, %d after", what, th0, th1);
}

Test(resources, graceful_stop)
{
    /* endless sources, one of them an HTTP server with its own threads and
     * socket, and a metrics endpoint: only the signal ends the run */
    char *y = pipeline(
        "name: graceful\n"
        "dead_letter: {path: '%1$s/rejects.jsonl'}\n"
        "metrics: {listen: '127.0.0.1:0', file: '%1$s/m.json'}\n"
        "stages:\n"
        "  - {name: gen, type: generate, rate: 1000/s}\n"
        "  - {name: web, type: http_server, listen: '127.0.0.1:0'}\n"
        "  - {name: out, type: file, path: '%1$s/out.jsonl', "
        "inputs: [gen, web]}\n"
        "  - {name: db, type: sqlite, path: '%1$s/g.db', table: t, "
        "inputs: [gen], on_error: dead_letter}\n");
    expect_released_by_signal("graceful stop", y, SIGINT, 0, SL__EXIT_OK);
    free(y);
}

Test(resources, forced_stop)
{
    /* the rate limit holds a full queue that would take minutes to drain:
     * the second signal cancels it */
    char *y = pipeline(
        "name: forced\n"
        "stages:\n"
        "  - {name: gen, type: generate}\n"
        "  - {name: slow, type: rate_limit, rate: 10/s, burst: 1}\n"
        "  - {name: out, type: file, path: '%1$s/out.jsonl'}\n"
        "  - {name: db, type: sqlite, path: '%1$s/f.db', table: t, "
        "inputs: [slow]}\n");
    expect_released_by_signal("forced stop", y, SIGINT, SIGTERM,
                              SL__EXIT_FORCED);
    free(y);
}
