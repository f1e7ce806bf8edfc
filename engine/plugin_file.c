/*
 * Plugin files: finding a plugin by name and checking the file before
 * dlopen(). See plugin_file.h.
 */
#include "engine/plugin_file.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sluice/error.h"

/* errno as lower-case text ("no such file or directory"). */
static void errno_text(int e, char *buf, size_t n)
{
    char tmp[128];
    const char *s = tmp;
#if (_POSIX_C_SOURCE >= 200112L) && !defined(_GNU_SOURCE)
    if (strerror_r(e, tmp, sizeof(tmp)) != 0)
        snprintf(tmp, sizeof(tmp), "error %d", e);
#else
    s = strerror_r(e, tmp, sizeof(tmp));
#endif
    snprintf(buf, n, "%s", s);
    if (buf[0] >= 'A' && buf[0] <= 'Z')
        buf[0] = (char)(buf[0] - 'A' + 'a');
}

/*
 * Is path an ELF shared object? 0, or SL_ENOTFOUND / SL_EINVAL with the
 * reason in why.
 */
static int check_file(const char *path, char *why, size_t n)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        int e = errno;
        if (e == ENOENT || e == ENOTDIR) {
            snprintf(why, n, "no such file");
        } else {
            errno_text(e, why, n);
        }
        return SL_ENOTFOUND;
    }
    if (S_ISDIR(st.st_mode)) {
        snprintf(why, n, "is a directory, not a shared object");
        return SL_EINVAL;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, n, "not a regular file");
        return SL_EINVAL;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        errno_text(errno, why, n);
        return SL_ENOTFOUND;
    }
    unsigned char head[EI_NIDENT + 2];
    ssize_t got = 0;
    while ((size_t)got < sizeof(head)) {
        ssize_t r = read(fd, head + got, sizeof(head) - (size_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += r;
    }
    close(fd);
    if ((size_t)got < sizeof(head) || memcmp(head, ELFMAG, SELFMAG) != 0) {
        snprintf(why, n, "not a shared object (no ELF header)");
        return SL_EINVAL;
    }
    /* e_type follows e_ident in both ELF classes, in the file's byte order. */
    unsigned type = head[EI_DATA] == ELFDATA2MSB
                        ? (unsigned)head[EI_NIDENT] << 8 | head[EI_NIDENT + 1]
                        : (unsigned)head[EI_NIDENT + 1] << 8 | head[EI_NIDENT];
    if (type != ET_DYN) {
        snprintf(why, n, "an ELF %s, not a shared object (build it with "
                         "-shared -fPIC)",
                 type == ET_REL ? "object file" : type == ET_EXEC
                                                      ? "executable"
                                                      : "file");
        return SL_EINVAL;
    }
    return 0;
}

/* dir + "/" + prefix + name + suffix, malloc'd; dir "" is ".". */
static char *join(const char *dir, size_t dir_len, const char *prefix,
                  const char *name, const char *suffix)
{
    if (dir_len == 0) {
        dir = ".";
        dir_len = 1;
    }
    size_t n = dir_len + 1 + strlen(prefix) + strlen(name) + strlen(suffix) + 1;
    char *p = malloc(n);
    if (p == NULL)
        return NULL;
    snprintf(p, n, "%.*s/%s%s%s", (int)dir_len, dir, prefix, name, suffix);
    return p;
}

/* Is path a regular file (following links)? */
static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/*
 * Look a bare name up along the search path. 0 with *out, SL_ENOTFOUND
 * with why filled, or SL_ENOMEM.
 */
static int search(const char *name, char **out, char *why, size_t n)
{
    const char *env = getenv(SL__PLUGIN_PATH_ENV);
    const char *dirs = env != NULL && *env != '\0' ? env : "";
    bool short_name = strstr(name, ".so") == NULL;
    static const char *const forms[][2] = {{"", ""}, {"lib", ".so"}, {"", ".so"}};
    size_t n_forms = short_name ? 3 : 1;

    const char *d = dirs;
    for (;;) {
        const char *end = strchr(d, ':');
        size_t len = end != NULL ? (size_t)(end - d) : strlen(d);
        for (size_t f = 0; f < n_forms; f++) {
            char *p = join(d, len, forms[f][0], name, forms[f][1]);
            if (p == NULL)
                return SL_ENOMEM;
            if (is_file(p)) {
                *out = p;
                return 0;
            }
            free(p);
        }
        if (end == NULL)
            break;
        d = end + 1;
    }
    const char *tried = short_name ? " (as NAME, libNAME.so and NAME.so)" : "";
    if (*dirs == '\0')
        snprintf(why, n, "no such file in the current directory%s; set %s "
                         "to search other directories", tried,
                 SL__PLUGIN_PATH_ENV);
    else
        snprintf(why, n, "not found in %s=%s%s", SL__PLUGIN_PATH_ENV, dirs,
                 tried);
    return SL_ENOTFOUND;
}

int sl__plugin_locate(const char *name, char **path, char *why, size_t n)
{
    char *p = NULL;
    if (strchr(name, '/') != NULL) {
        p = strdup(name);
        if (p == NULL)
            return SL_ENOMEM;
    } else {
        int rc = search(name, &p, why, n);
        if (rc != 0)
            return rc;
    }
    int rc = check_file(p, why, n);
    if (rc != 0) {
        free(p);
        return rc;
    }
    *path = p;
    return 0;
}

void sl__plugin_dlerror_text(const char *path, const char *err, char *buf,
                             size_t n)
{
    if (err == NULL || *err == '\0') {
        snprintf(buf, n, "cannot load: unknown error");
        return;
    }
    size_t lp = strlen(path);
    if (strncmp(err, path, lp) == 0 && strncmp(err + lp, ": ", 2) == 0)
        err += lp + 2;
    const char *undef = strstr(err, "undefined symbol: ");
    if (undef != NULL &&
        strncmp(undef + strlen("undefined symbol: "), "sl_", 3) == 0)
        snprintf(buf, n, "cannot load: %s (it uses a sluice function this "
                         "version lacks: built against newer headers?)", err);
    else
        snprintf(buf, n, "cannot load: %s", err);
}
