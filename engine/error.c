/* Error strings and names, generated from SL_ERROR_MAP. */
#include "sluice/error.h"

const char *sl_strerror(int code)
{
    switch (code) {
    case SL_OK:
        return "success";
#define SL__ERR_MSG(name, value, msg) case SL_E##name: return msg;
        SL_ERROR_MAP(SL__ERR_MSG)
#undef SL__ERR_MSG
    }
    return "unknown error";
}

const char *sl_error_name(int code)
{
    switch (code) {
    case SL_OK:
        return "OK";
#define SL__ERR_NAME(name, value, msg) case SL_E##name: return #name;
        SL_ERROR_MAP(SL__ERR_NAME)
#undef SL__ERR_NAME
    }
    return "UNKNOWN";
}
