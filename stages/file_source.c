/*
 * `file` as a source: read files line by line, one record per line.
 *
 * `path` or `paths` name the files; each is a glob(3) pattern (with {a,b}
 * braces), expanded and sorted when the stage starts, in the order the
 * patterns are given, a file named twice read once. A pattern matching
 * nothing is an error naming it. With `workers: N` the files are shared out
 * among the workers (file i to worker i mod N).
 *
 * Each non-blank line becomes a record whose payload is the line (without
 * "\n" or "\r\n") and whose position is (stage name, file path, byte offset
 * after the line, line number from 1). Blank lines are skipped but counted
 * in line numbers and offsets.
 *
 * With settings.state the stage resumes after the saved position: the
 * files before it in this worker's share are skipped and its file is read
 * from the saved offset. A saved file that is no longer the same file (a
 * different inode, or shorter than the offset: replaced or truncated) is
 * reported and read from its start.
 */
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sluice/plugin.h"

#include "io_errors.h"
#include "line_reader.h"

#define FILE_STOP_EVERY 64   /* lines between checks of sl_stage_stopping */

typedef struct file_source {
    char *path;             /* option: one file or glob */
    sl_strlist paths;       /* option: several files or globs */
    int64_t max_line;       /* option: longest line in bytes */
    char **files;           /* expanded, deduplicated file list */
    size_t n_files;         /* entries in files */
    sl__line_reader lr;     /* shared by every file of this worker */
} file_source;

static bool has_glob_chars(const char *s)
{
    return strpbrk(s, "*?[{") != NULL;
}

/* Append path to the file list unless it is already there. */
static int add_file(file_source *fs, const char *path)
{
    for (size_t i = 0; i < fs->n_files; i++)
        if (strcmp(fs->files[i], path) == 0)
            return 0;
    char **nf = realloc(fs->files, (fs->n_files + 1) * sizeof(*nf));
    if (nf == NULL)
        return SL_ENOMEM;
    fs->files = nf;
    fs->files[fs->n_files] = strdup(path);
    if (fs->files[fs->n_files] == NULL)
        return SL_ENOMEM;
    fs->n_files++;
    return 0;
}

/* Expand one pattern into the file list; an error names the pattern. */
static int expand_pattern(file_source *fs, sl_stage_ctx *sc, const char *pattern)
{
    glob_t g;
    int flags = 0;
#ifdef GLOB_BRACE
    flags |= GLOB_BRACE;
#endif
    int rc = glob(pattern, flags, NULL, &g);
    if (rc == GLOB_NOMATCH) {
        globfree(&g);
        if (has_glob_chars(pattern))
            return sl_stage_error(sc, SL_ENOTFOUND, "no file matches '%s'", pattern);
        return sl_stage_error(sc, SL_ENOTFOUND, "%s: no such file or directory", pattern);
    }
    if (rc == GLOB_NOSPACE) {
        globfree(&g);
        return sl_stage_error(sc, SL_ENOMEM, "expanding '%s': out of memory", pattern);
    }
    if (rc != 0) {
        globfree(&g);
        return sl_stage_error(sc, SL_EIO, "expanding '%s': read error", pattern);
    }
    for (size_t i = 0; i < g.gl_pathc; i++) {
        if (add_file(fs, g.gl_pathv[i]) < 0) {
            globfree(&g);
            return sl_stage_error(sc, SL_ENOMEM, "expanding '%s': out of memory", pattern);
        }
    }
    globfree(&g);
    return 0;
}

/* Check the options and expand the patterns, so a missing file fails the
 * run before anything is read. */
static int file_source_init(void *state, sl_stage_ctx *sc)
{
    file_source *fs = state;
    if (fs->max_line < 1)
        return sl_stage_error(sc, SL_ECONFIG, "max_line must be at least 1 byte");
    sl__line_reader_init(&fs->lr, (size_t)fs->max_line, -1);
    bool have_path = fs->path != NULL && fs->path[0] != '\0';
    if (have_path && fs->paths.n > 0)
        return sl_stage_error(sc, SL_ECONFIG, "give either 'path' or 'paths', not both");
    if (!have_path && fs->paths.n == 0)
        return sl_stage_error(sc, SL_ECONFIG, "one of 'path' or 'paths' is required");
    if (have_path)
        return expand_pattern(fs, sc, fs->path);
    for (size_t i = 0; i < fs->paths.n; i++) {
        int rc = expand_pattern(fs, sc, fs->paths.items[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/*
 * Read one file to its end from byte offset `from` (line number
 * `from_line` there), emitting its lines. Returns 0 when done, 1 when asked to stop,
 * or an error described with sl_stage_error.
 */
static int read_file(file_source *fs, sl_stage_ctx *sc, const char *path,
                     int64_t from, int64_t from_line)
{
    char ebuf[128];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return sl_stage_error(sc, sl__errno_code(e), "%s: %s", path,
                              sl__errno_text(e, ebuf, sizeof(ebuf)));
    }
#ifdef POSIX_FADV_SEQUENTIAL
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
    struct stat sb;
    if (fstat(fd, &sb) == 0 &&
        sl_stage_source_file(sc, path, (uint64_t)sb.st_dev,
                             (uint64_t)sb.st_ino) < 0) {
        close(fd);
        return sl_stage_error(sc, SL_ENOMEM, "%s: out of memory", path);
    }
    if (from > 0 && lseek(fd, (off_t)from, SEEK_SET) < 0) {
        int e = errno;
        close(fd);
        return sl_stage_error(sc, sl__errno_code(e), "%s: seeking to %lld: %s",
                              path, (long long)from,
                              sl__errno_text(e, ebuf, sizeof(ebuf)));
    }
    const char *name = sl_stage_name(sc);
    sl__line_reader *lr = &fs->lr;
    sl__line_reader_reset(lr, fd);
    lr->consumed = lr->bytes_read = from;
    lr->line_no = from_line;
    int64_t counted = from;   /* bytes already reported as bytes_in */
    unsigned since_check = 0;
    int rc;
    for (;;) {
        if (++since_check >= FILE_STOP_EVERY) {
            since_check = 0;
            sl_stage_count_bytes_in(sc, (uint64_t)(lr->consumed - counted));
            counted = lr->consumed;
            if (sl_stage_stopping(sc)) {
                rc = 1;
                break;
            }
        }
        const char *line;
        size_t len;
        rc = sl__line_reader_next(lr, &line, &len);
        if (rc <= 0)
            break;
        if (len == 0)
            continue;
        sl_record *rec = sl_record_new_payload(line, len);
        if (rec == NULL) {
            rc = sl_stage_error(sc, SL_ENOMEM, "%s:%lld: out of memory", path,
                                (long long)lr->line_no);
            break;
        }
        if (sl_record_set_position(rec, name, path, lr->consumed, lr->line_no) < 0) {
            sl_record_free(rec);
            rc = sl_stage_error(sc, SL_ENOMEM, "%s:%lld: out of memory", path,
                                (long long)lr->line_no);
            break;
        }
        if (sl_emit(sc, rec) < 0) {
            rc = 1;   /* the run is being torn down */
            break;
        }
    }
    if (rc == SL_ELIMIT)
        rc = sl_stage_error(sc, SL_ELIMIT, "%s:%lld: line longer than max_line (%lld bytes)",
                            path, (long long)lr->line_no, (long long)fs->max_line);
    else if (rc == SL_EIO)
        rc = sl_stage_error(sc, sl__errno_code(lr->sys_errno), "%s: %s", path,
                            sl__errno_text(lr->sys_errno, ebuf, sizeof(ebuf)));
    else if (rc == SL_ENOMEM)
        rc = sl_stage_error(sc, SL_ENOMEM, "%s:%lld: out of memory", path,
                            (long long)lr->line_no + 1);
    if (lr->consumed > counted)
        sl_stage_count_bytes_in(sc, (uint64_t)(lr->consumed - counted));
    close(fd);
    return rc;
}

/*
 * Where to start in this worker's share (first, step) of the files: after
 * the saved position, when there is one and its file is still the same.
 * Sets *file, *from and *line. Thread: worker.
 */
static void resume_from(file_source *fs, sl_stage_ctx *sc, size_t first,
                        size_t step, size_t *file, int64_t *from, int64_t *line)
{
    *file = first;
    *from = 0;
    *line = 0;
    sl_resume rp;
    if (sl_stage_resume_point(sc, &rp) != 0 || rp.locator == NULL)
        return;
    size_t i;
    for (i = first; i < fs->n_files; i += step)
        if (strcmp(fs->files[i], rp.locator) == 0)
            break;
    if (i >= fs->n_files) {
        sl_stage_log(sc, SL_LOG_WARN, "the saved position is in %s, which "
                     "this stage no longer reads: reading every file from "
                     "the start", rp.locator);
        sl_stage_resume_reset(sc);
        return;
    }
    *file = i;
    struct stat sb;
    const char *why = NULL;
    if (stat(rp.locator, &sb) != 0)
        why = "cannot be read";
    else if (rp.file_ino != 0 && ((uint64_t)sb.st_ino != rp.file_ino ||
                                  (uint64_t)sb.st_dev != rp.file_dev))
        why = "was replaced (another inode)";
    else if ((int64_t)sb.st_size < rp.offset)
        why = "was truncated (shorter than the saved offset)";
    if (why != NULL) {
        sl_stage_log(sc, SL_LOG_WARN, "%s %s since its position was saved "
                     "(line %lld, byte %lld): reading it from the start",
                     rp.locator, why, (long long)rp.seq, (long long)rp.offset);
        sl_stage_resume_reset(sc);
        return;
    }
    *from = rp.offset > 0 ? rp.offset : 0;
    *line = rp.seq > 0 ? rp.seq : 0;
    sl_stage_log(sc, SL_LOG_INFO, "resuming %s after line %lld (byte %lld)",
                 rp.locator, (long long)*line, (long long)*from);
}

/* Read this worker's share of the files in order. */
static int file_source_run(void *state, sl_stage_ctx *sc)
{
    file_source *fs = state;
    size_t step = (size_t)(sl_stage_worker_count(sc) > 0 ? sl_stage_worker_count(sc) : 1);
    size_t first = (size_t)(sl_stage_worker_index(sc) > 0 ? sl_stage_worker_index(sc) : 0);
    size_t start;
    int64_t from, line;
    resume_from(fs, sc, first, step, &start, &from, &line);
    for (size_t i = start; i < fs->n_files; i += step) {
        if (sl_stage_stopping(sc))
            return 0;
        int rc = read_file(fs, sc, fs->files[i], i == start ? from : 0,
                           i == start ? line : 0);
        if (rc < 0)
            return rc;
        if (rc == 1)
            return 0;
    }
    return 0;
}

static void file_source_destroy(void *state)
{
    file_source *fs = state;
    for (size_t i = 0; i < fs->n_files; i++)
        free(fs->files[i]);
    free(fs->files);
    sl__line_reader_fini(&fs->lr);
}

static const sl_option file_source_options[] = {
    {SL_OPT_STRING, "path", NULL, 0, offsetof(file_source, path), 0, 0, NULL,
     "file to read; a glob pattern (* ? [..] {a,b}) reads every match in sorted order"},
    {SL_OPT_STRING_LIST, "paths", NULL, 0, offsetof(file_source, paths), 0, 0, NULL,
     "several files or glob patterns, read in the order given (instead of path)"},
    {SL_OPT_SIZE, "max_line", "16MiB", 0, offsetof(file_source, max_line), 0, 0, NULL,
     "longest line accepted; a longer one fails with file:line"},
    SL_OPTIONS_END,
};

const sl_stage_desc sl_stage_file_source = {
    SL_STAGE_DESC_HEADER,
    .name = "file",
    .kind = SL_STAGE_SOURCE,
    .summary = "read files (paths or globs) line by line, one record per non-blank line",
    .options = file_source_options,
    .state_size = sizeof(file_source),
    .init = file_source_init,
    .run = file_source_run,
    .destroy = file_source_destroy,
};
