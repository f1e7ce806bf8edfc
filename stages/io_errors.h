/*
 * errno -> SL_E* codes and messages, shared by the stages that touch files
 * and descriptors (file, stdin, stdout, sqlite).
 *
 * Thread: any.
 */
#ifndef SLUICE_STAGES_IO_ERRORS_H
#define SLUICE_STAGES_IO_ERRORS_H

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "sluice/error.h"

/* The sluice code for an errno value: ENOSPC/EDQUOT are SL_ENOSPC, ENOENT is
 * SL_ENOTFOUND, ENOMEM is SL_ENOMEM, everything else SL_EIO. */
static inline int sl__errno_code(int e)
{
    switch (e) {
    case ENOSPC:
#ifdef EDQUOT
    case EDQUOT:
#endif
        return SL_ENOSPC;
    case ENOENT:
        return SL_ENOTFOUND;
    case ENOMEM:
        return SL_ENOMEM;
    default:
        return SL_EIO;
    }
}

/*
 * The system's text for e with a lower-case first letter, as sluice writes
 * its messages ("no space left on device"), copied into buf (size n, at
 * least 2). Returns buf.
 */
static inline const char *sl__errno_text(int e, char *buf, size_t n)
{
    char tmp[128];
    const char *s = tmp;
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
    s = strerror_r(e, tmp, sizeof(tmp));
#else
    if (strerror_r(e, tmp, sizeof(tmp)) != 0)
        s = "unknown error";
#endif
    size_t len = strlen(s);
    if (len >= n)
        len = n - 1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z'))
        buf[0] = (char)(buf[0] - 'A' + 'a');
    return buf;
}

#endif
