/* SPDX-License-Identifier: Apache-2.0 */
/* header.h -- a record header as a view (key, value): what the Kafka adapter reads from a
 * consumed message and attaches to a produced one, and what the codec writes into a dead
 * letter. A plain type in core so that neither module includes the other. */
#ifndef KINFER_HEADER_H
#define KINFER_HEADER_H

#include <stddef.h>

typedef struct kinfer_header_view_s {
        const char *key;
        const void *value; /* NULL = null value */
        size_t value_len;
} kinfer_header_view_t;

#endif
