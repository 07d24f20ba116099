/* SPDX-License-Identifier: Apache-2.0 */
/* test_conf.c -- configuration: defaults, file/-X/env precedence, kafka.* pass-through,
 * unknown keys and bad values named in the error, secret masking in dumps. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kinfer/core/conf.h"
#include "test.h"

static char path[256];

static void write_file(const char *text)
{
        FILE *fp = fopen(path, "w");
        fputs(text, fp);
        fclose(fp);
}

static void test_defaults_and_precedence(void)
{
        char errstr[512];
        kinfer_conf_t *conf = kinfer_conf_new(errstr, sizeof(errstr));
        TEST_ASSERT(conf, "kinfer_conf_new: %s", errstr);
        if (!conf)
                return;
        TEST_ASSERT(kinfer_conf_get_int(conf, "metrics.interval.ms") == 10000, "metrics default");
        TEST_ASSERT(!strcmp(kinfer_conf_get(conf, "input.format"), "json"), "format default");
        write_file("# comment\n\n input.topic = a,b \nbatch.max.records=64\nkafka.sasl.password=hunter2\n"
                   "kafka.consumer.fetch.wait.max.ms=10\noutput.topic=out\n");
        TEST_ASSERT(!kinfer_conf_load_file(conf, path, errstr, sizeof(errstr)), "%s", errstr);
        TEST_ASSERT(!strcmp(kinfer_conf_get(conf, "input.topic"), "a,b"), "trimmed list");
        TEST_ASSERT(!kinfer_conf_set_kv(conf, "batch.max.records=128", "-X", errstr, sizeof(errstr)), "%s", errstr);
        TEST_ASSERT(kinfer_conf_get_int(conf, "batch.max.records") == 128, "-X overrides file");
        char *envp[] = {"KINFER_BATCH_MAX_RECORDS=512", "KINFER_BIN=/x", "KINFER_KAFKA_SASL_USERNAME=bob",
                        "PATH=/bin", NULL};
        TEST_ASSERT(!kinfer_conf_load_env(conf, envp, errstr, sizeof(errstr)), "%s", errstr);
        TEST_ASSERT(kinfer_conf_get_int(conf, "batch.max.records") == 512, "env overrides -X");
        size_t n = kinfer_conf_kafka_count(conf);
        int seen_user = 0, seen_fetch = 0;
        for (size_t i = 0; i < n; i++) {
                const char *scope, *name, *value;
                kinfer_conf_kafka_get(conf, i, &scope, &name, &value);
                if (!strcmp(name, "sasl.username") && !strcmp(value, "bob") && !*scope)
                        seen_user = 1;
                if (!strcmp(name, "fetch.wait.max.ms") && !strcmp(scope, "consumer"))
                        seen_fetch = 1;
        }
        TEST_ASSERT(seen_user && seen_fetch, "kafka pass-through user=%d fetch=%d", seen_user, seen_fetch);
        char env[64];
        TEST_ASSERT(!strcmp(kinfer_conf_env_name("input.topic", env, sizeof(env)), "KINFER_INPUT_TOPIC"), "%s", env);

        /* dump masks secrets */
        kinfer_conf_set(conf, "pg.conninfo", "host=db password='s3 cret' user=k", "-X", NULL, 0);
        char *dump = NULL;
        size_t dlen = 0;
        FILE *fp = open_memstream(&dump, &dlen);
        kinfer_conf_dump(conf, fp);
        fclose(fp);
        TEST_ASSERT(!strstr(dump, "hunter2") && strstr(dump, "kafka.sasl.password=******"), "sasl masked");
        TEST_ASSERT(!strstr(dump, "s3 cret") && strstr(dump, "host=db password=****** user=k"), "conninfo masked");
        TEST_ASSERT(strstr(dump, "kafka.sasl.username=******"), "sasl.* masked");
        TEST_ASSERT(strstr(dump, "batch.max.records=512") && strstr(dump, "env KINFER_BATCH_MAX_RECORDS"), "source shown");
        free(dump);
        kinfer_conf_t *dup = kinfer_conf_dup(conf, errstr, sizeof(errstr));
        TEST_ASSERT(dup, "kinfer_conf_dup: %s", errstr);
        TEST_ASSERT(dup && kinfer_conf_kafka_count(dup) == n && kinfer_conf_get_int(dup, "batch.max.records") == 512, "dup");
        kinfer_conf_destroy(dup);
        kinfer_conf_destroy(conf);
}

static void test_errors(void)
{
        char errstr[512];
        kinfer_conf_t *conf = kinfer_conf_new(errstr, sizeof(errstr));
        TEST_ASSERT(conf, "kinfer_conf_new: %s", errstr);
        if (!conf)
                return;
        write_file("input.topic=a\n\nno.such.key=1\n");
        TEST_ASSERT(kinfer_conf_load_file(conf, path, errstr, sizeof(errstr)) == KINFER_ERR__INVALID_ARG &&
                        strstr(errstr, ":3:") && strstr(errstr, "no.such.key"), "unknown key: %s", errstr);
        write_file("batch.max.records=0\n");
        TEST_ASSERT(kinfer_conf_load_file(conf, path, errstr, sizeof(errstr)) && strstr(errstr, "batch.max.records"),
                    "range: %s", errstr);
        write_file("just a line\n");
        TEST_ASSERT(kinfer_conf_load_file(conf, path, errstr, sizeof(errstr)) && strstr(errstr, "key=value"), "%s", errstr);
        TEST_ASSERT(kinfer_conf_set(conf, "input.format", "xml", "-X", errstr, sizeof(errstr)) &&
                        strstr(errstr, "avro-confluent|avro|json|text"), "enum: %s", errstr);
        TEST_ASSERT(kinfer_conf_set(conf, "kafka.", "x", "-X", errstr, sizeof(errstr)), "empty kafka prop");
        char *envp[] = {"KINFER_BATCH_MAX_WAIT_MS=soon", NULL};
        TEST_ASSERT(kinfer_conf_load_env(conf, envp, errstr, sizeof(errstr)) && strstr(errstr, "batch.max.wait.ms"), "%s", errstr);
        TEST_ASSERT(kinfer_conf_check(conf, errstr, sizeof(errstr)) && strstr(errstr, "required"), "check: %s", errstr);
        TEST_ASSERT(kinfer_conf_load_file(conf, "/nonexistent/k.conf", errstr, sizeof(errstr)) == KINFER_ERR__IO, "io");
        kinfer_conf_destroy(conf);
}

/* A NUL byte or invalid UTF-8 in a config file is an error naming file:line (a NUL used to
 * cut the value silently: batch.max.records=5<NUL>junk was 5). */
static void test_nul_and_utf8(void)
{
        char errstr[512];
        kinfer_conf_t *conf = kinfer_conf_new(errstr, sizeof(errstr));
        TEST_ASSERT(conf, "kinfer_conf_new: %s", errstr);
        if (!conf)
                return;
        static const char nul[] = "input.topic=a\nbatch.max.records=5\0junk\n";
        FILE *fp = fopen(path, "w");
        fwrite(nul, 1, sizeof(nul) - 1, fp);
        fclose(fp);
        TEST_ASSERT(kinfer_conf_load_file(conf, path, errstr, sizeof(errstr)) == KINFER_ERR__INVALID_ARG &&
                        strstr(errstr, ":2:") && strstr(errstr, "NUL"), "NUL: %s", errstr);
        TEST_ASSERT(kinfer_conf_get_int(conf, "batch.max.records") == 256, "NUL line not applied");
        write_file("input.topic=a\n# ok\nworker.id=w\xff\xfe\n");
        TEST_ASSERT(kinfer_conf_load_file(conf, path, errstr, sizeof(errstr)) == KINFER_ERR__INVALID_ARG &&
                        strstr(errstr, ":3:") && strstr(errstr, "UTF-8"), "UTF-8: %s", errstr);
        write_file("# \xc3\xa9t\xc3\xa9\nworker.id=w\xc3\xa9\n");
        TEST_ASSERT(!kinfer_conf_load_file(conf, path, errstr, sizeof(errstr)), "valid UTF-8: %s", errstr);
        kinfer_conf_destroy(conf);
}

/* Every integer key of the table (read from the generated doc, so a new key is covered by
 * itself): its documented min and max and random values between are accepted and read back,
 * min - 1 and max + 1 are refused naming the key. */
static void test_int_ranges(void)
{
        char errstr[512];
        kinfer_conf_t *conf = kinfer_conf_new(errstr, sizeof(errstr));
        TEST_ASSERT(conf, "kinfer_conf_new: %s", errstr);
        if (!conf)
                return;
        FILE *fp = tmpfile();
        kinfer_conf_dump_doc(fp);
        rewind(fp);
        char line[4096];
        int n_keys = 0;
        uint64_t seed = 42;
        while (fgets(line, sizeof(line), fp)) {
                char key[128];
                long long lo, hi;
                if (sscanf(line, "| `%127[^`]` | integer | %lld .. %lld |", key, &lo, &hi) != 3)
                        continue;
                n_keys++;
                /* ranges may reach the ends of long long (drift.min.records: 1 .. 2^63 - 1):
                 * the arithmetic is unsigned, and a bound at an end is tested below as the
                 * decimal one past it, which must not parse */
                long long vals[8] = {lo, hi, lo < hi ? lo + 1 : lo, lo < hi ? hi - 1 : hi, 0, 0, 0, 0};
                uint64_t span = (uint64_t)hi - (uint64_t)lo; /* hi - lo, exact */
                for (int i = 4; i < 8; i++) {
                        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
                        uint64_t r = seed >> 20;
                        vals[i] = (long long)((uint64_t)lo + (span == UINT64_MAX ? r : r % (span + 1)));
                }
                for (int i = 0; i < 8; i++) {
                        char v[32];
                        snprintf(v, sizeof(v), "%lld", vals[i]);
                        TEST_ASSERT(!kinfer_conf_set(conf, key, v, "-X", errstr, sizeof(errstr)) &&
                                        kinfer_conf_get_int(conf, key) == vals[i],
                                    "%s=%s: %s", key, v, errstr);
                }
                for (int i = 0; i < 2; i++) {
                        char v[32];
                        if (i == 0 && lo == LLONG_MIN)
                                snprintf(v, sizeof(v), "-9223372036854775809");
                        else if (i == 1 && hi == LLONG_MAX)
                                snprintf(v, sizeof(v), "9223372036854775808");
                        else
                                snprintf(v, sizeof(v), "%lld", i == 0 ? lo - 1 : hi + 1);
                        TEST_ASSERT(kinfer_conf_set(conf, key, v, "-X", errstr, sizeof(errstr)) == KINFER_ERR__INVALID_ARG &&
                                        strstr(errstr, key),
                                    "%s=%s accepted", key, v);
                }
        }
        fclose(fp);
        TEST_ASSERT(n_keys >= 14, "only %d integer keys in the doc", n_keys);
        kinfer_conf_destroy(conf);
}

/* Every form of a PostgreSQL secret is masked: URI passwords (both schemes, query parameters),
 * password= and sslpassword= in key=value form, quoted (with escapes) or not; the rest stays. */
static void test_mask_conninfo(void)
{
        static const char *cases[][2] = {
            {"host=db password=s3cret user=k", "host=db password=****** user=k"},
            {"host=db sslpassword=s3cret sslmode=verify-full",
             "host=db sslpassword=****** sslmode=verify-full"},
            {"password = 'a \\' b\\\\' host=db", "password = ****** host=db"},
            {"sslpassword='s3 cret' password=x\\ y dbname=k",
             "sslpassword=****** password=****** dbname=k"},
            {"postgres://alice:s3cret@db:5432/kinfer", "postgres://alice:******@db:5432/kinfer"},
            {"postgresql://alice:s3cret@db1,db2/kinfer?sslmode=require&sslpassword=s3cret",
             "postgresql://alice:******@db1,db2/kinfer?sslmode=require&sslpassword=******"},
            {"postgresql://db/kinfer?password=s3cret&user=alice",
             "postgresql://db/kinfer?password=******&user=alice"},
            {"postgresql://alice@db/kinfer", "postgresql://alice@db/kinfer"},
            {"postgresql://a%40b:s3c%3Aret@db", "postgresql://a%40b:******@db"},
            {"host=db dbname=kinfer", "host=db dbname=kinfer"},
            {"service=kinfer", "service=kinfer"},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char out[256];
                kinfer_conf_mask_conninfo(cases[i][0], out, sizeof(out));
                TEST_ASSERT(!strcmp(out, cases[i][1]) && !strstr(out, "s3c") && !strstr(out, " b"),
                            "%s -> %s (want %s)", cases[i][0], out, cases[i][1]);
        }
        char tiny[8];
        kinfer_conf_mask_conninfo("password=s3cret", tiny, sizeof(tiny));
        TEST_ASSERT(strlen(tiny) == 7 && !strstr(tiny, "s3c"), "truncated: %s", tiny);

        /* and in --dump-config, URI form and sslpassword */
        char errstr[256];
        kinfer_conf_t *conf = kinfer_conf_new(errstr, sizeof(errstr));
        TEST_ASSERT(conf, "kinfer_conf_new: %s", errstr);
        if (!conf)
                return;
        TEST_ASSERT(kinfer_conf_set(conf, "pg.conninfo",
                                    "postgresql://alice:s3cret@db/kinfer?sslpassword=s3cret", "-X",
                                    errstr, sizeof(errstr)) == KINFER_OK,
                    "set: %s", errstr);
        TEST_ASSERT(kinfer_conf_set(conf, "kafka.ssl.key.password", "s3cret", "-X", errstr,
                                    sizeof(errstr)) == KINFER_OK &&
                        kinfer_conf_set(conf, "kafka.producer.sasl.oauthbearer.config", "s3cret",
                                        "-X", errstr, sizeof(errstr)) == KINFER_OK &&
                        kinfer_conf_set(conf, "kafka.ssl.key.pem", "s3cret", "-X", errstr,
                                        sizeof(errstr)) == KINFER_OK,
                    "set kafka: %s", errstr);
        char *dump = NULL;
        size_t dlen = 0;
        FILE *fp = open_memstream(&dump, &dlen);
        kinfer_conf_dump(conf, fp);
        fclose(fp);
        TEST_ASSERT(dump && !strstr(dump, "s3cret") &&
                        strstr(dump, "postgresql://alice:******@db/kinfer?sslpassword=******"),
                    "dump: %s", dump ? dump : "(null)");
        free(dump);
        kinfer_conf_destroy(conf);
}

int main(void)
{
        snprintf(path, sizeof(path), "/tmp/kinfer-test-conf.%d", (int)getpid());
        TEST_RUN(test_mask_conninfo);
        TEST_RUN(test_defaults_and_precedence);
        TEST_RUN(test_errors);
        TEST_RUN(test_nul_and_utf8);
        TEST_RUN(test_int_ranges);
        unlink(path);
        return TEST_DONE();
}
