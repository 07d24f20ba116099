/* SPDX-License-Identifier: Apache-2.0 */
/* avro_int.h -- the compiled writer schema that avro.c (decoding, output) and input.c (input
 * encoding for `kinfer produce`) share. Includes avro.h: for src/codec only. */
#ifndef KINFER_AVRO_INT_H
#define KINFER_AVRO_INT_H

#include <avro.h>
#include <stdint.h>

#include "codec/codec_int.h"

enum { N_NULL, N_BOOL, N_INT, N_LONG, N_FLOAT, N_DOUBLE, N_BYTES, N_STRING, N_RECORD, N_ENUM,
       N_ARRAY, N_MAP, N_UNION, N_FIXED };

struct anode {
        int type;
        int n;        /* children: record fields, union branches, 1 for array/map, enum symbols */
        int *kids;    /* node indexes */
        int64_t size; /* fixed size */
};

struct aprog {
        int32_t schema_id; /* avro-confluent id; -1 for the configured schema */
        avro_schema_t schema;
        struct anode *nodes;
        int n_nodes, cap_nodes;
        avro_schema_t *seen; /* schema pointer of each node, for recursive schemas */
        int id_field, text_field; /* top-level field index, -1 if absent */
        int64_t failed_at;        /* avro-confluent: last failed load (monotonic ms), 0 = loaded */
        char error[400];
        /* input encoding (kinfer produce) */
        avro_value_iface_t *iface;
        avro_value_t value;
        int has_value;
};

/** The compiled schema for Confluent schema id @p id: loads <schemas_dir>/<id>.avsc (or, when
 *  that file is absent and a registry is configured, the registry's schema) on first use and
 *  retries a failed load at most once a second. @returns NULL (see @p errstr); *@p retry
 *  (may be NULL) is set to 1 when the registry could not answer now (try again later). */
struct aprog *kinfer_codec_avro_schema_by_id(kinfer_codec_t *codec, int32_t id, int *retry,
                                             char *errstr, size_t errstr_size);
/** Append the 5-byte Confluent header (magic 0, big-endian @p id). */
kinfer_err_t kinfer_codec_avro_confluent_header(kinfer_buf_t *b, int32_t id);

#endif
