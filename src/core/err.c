/* SPDX-License-Identifier: Apache-2.0 */
/* err.c -- error code names and errstr formatting. */
#include "kinfer/core/err.h"

#include <stdarg.h>
#include <stdio.h>

const char *kinfer_err2str(kinfer_err_t err)
{
        switch (err) {
        case KINFER_OK: return "Success";
        case KINFER_ERR__NOMEM: return "Local: Out of memory";
        case KINFER_ERR__BAD_FORMAT: return "Local: Bad format";
        case KINFER_ERR__IO: return "Local: I/O error";
        case KINFER_ERR__INVALID_ARG: return "Local: Invalid argument";
        case KINFER_ERR__TIMEOUT: return "Local: Timed out";
        case KINFER_ERR__KAFKA: return "Local: Kafka error";
        case KINFER_ERR__DB: return "Local: Database error";
        case KINFER_ERR__NOENT: return "Local: No such object";
        case KINFER_ERR__STATE: return "Local: Invalid state";
        case KINFER_ERR__CRYPTO: return "Local: Crypto library error";
        case KINFER_ERR__LIMIT: return "Local: Over a configured limit";
        default: return "Local: Unknown error";
        }
}

kinfer_err_t kinfer_seterr(char *errstr, size_t errstr_size, kinfer_err_t err, const char *fmt, ...)
{
        if (errstr && errstr_size > 0) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(errstr, errstr_size, fmt, ap);
                va_end(ap);
        }
        return err;
}
