/* SPDX-License-Identifier: Apache-2.0 */
/* sr.c -- the Confluent Schema Registry client: the only file that includes curl/curl.h.
 *
 * Two calls of the Confluent REST API (Confluent's own registry, Apicurio's /apis/ccompat/v7,
 * Karapace, Redpanda all serve it):
 *   GET  {url}/schemas/ids/{id}             -> {"schema": "<Avro schema as a JSON string>", ...}
 *   POST {url}/subjects/{subject}/versions  {"schema": "..."} -> {"id": N}
 * with HTTP basic auth (user info "user:password", or the first line of a file) and TLS (a CA
 * file, an optional client certificate and key), one blocking request at a time on the
 * caller's thread, each bounded by sr_timeout_ms (connect included). No redirects are
 * followed and only http and https are spoken.
 *
 * A response is input: at most KINFER_CODEC_SR_MAX_RESPONSE bytes (the transfer is cut when
 * it passes that), parsed by core's strict JSON reader (kinfer/core/json.h).
 *
 * Failures are of two kinds. "Not now" (KINFER_ERR__TIMEOUT: no connection, a timeout, 5xx,
 * 401/403, 429, an answer that is not JSON, as a proxy's error page would be): the caller keeps
 * its record and tries again; after such a
 * failure the registry is not asked again before a backoff (200 ms, doubling up to
 * sr_backoff_max_ms), and calls meanwhile fail at once without I/O. "Never" (KINFER_ERR__NOENT:
 * 404, the id does not exist; KINFER_ERR__BAD_FORMAT: an answer over the size bound, JSON
 * without a "schema" string, a schema type other than AVRO; other 4xx on registration): the
 * caller dead-letters or stops. */
#include "codec/codec_int.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kinfer/core/json.h"
#include "kinfer/core/log.h"

#define SR_BACKOFF_MIN_MS 200
#define SR_USER_INFO_MAX 4096 /* bytes of the basic-auth file's first line */

struct kinfer_sr_s {
        CURL *curl;
        char *url;       /* without a trailing '/' */
        char *shown;     /* url for messages: user:password@ in it replaced by ***@ */
        char *user_info; /* "user:password" or NULL */
        char *ca, *cert, *key;
        long timeout_ms;
        int64_t backoff_max_ms, backoff_ms;
        int64_t next_try_ms; /* monotonic; 0 = any time */
        char last_error[256];
        kinfer_buf_t resp;
        int resp_over;
};

static int64_t mono_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;
static void curl_init(void)
{
        curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); /* not thread-safe: once */
}

static char *dup_or_null(const char *s)
{
        return s && *s ? strdup(s) : NULL;
}

/* The first line of @p path (basic-auth user info), without its line end. */
static char *read_first_line(const char *path, char *errstr, size_t errstr_size)
{
        FILE *fp = fopen(path, "rb");
        if (!fp) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__IO,
                              "schema.registry.basic.auth.user.info.file %s: %s", path,
                              strerror(errno));
                return NULL;
        }
        char *line = malloc(SR_USER_INFO_MAX + 2);
        if (!line) {
                fclose(fp);
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                return NULL;
        }
        size_t n = fread(line, 1, SR_USER_INFO_MAX + 1, fp);
        fclose(fp);
        line[n] = '\0';
        size_t len = strcspn(line, "\r\n");
        if (len > SR_USER_INFO_MAX || memchr(line, '\0', len) || !memchr(line, ':', len)) {
                free(line);
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                              "schema.registry.basic.auth.user.info.file %s: the first line must "
                              "be user:password (at most %d bytes)", path, SR_USER_INFO_MAX);
                return NULL;
        }
        line[len] = '\0';
        return line;
}

void kinfer_sr_destroy(kinfer_sr_t *sr)
{
        if (!sr)
                return;
        if (sr->curl)
                curl_easy_cleanup(sr->curl);
        free(sr->url);
        free(sr->shown);
        if (sr->user_info) {
                volatile char *p = sr->user_info; /* a secret: do not leave it in freed memory */
                while (*p)
                        *p++ = 0;
                free(sr->user_info);
        }
        free(sr->ca);
        free(sr->cert);
        free(sr->key);
        kinfer_buf_free(&sr->resp);
        free(sr);
}

kinfer_sr_t *kinfer_sr_new(const kinfer_codec_conf_t *cc, char *errstr, size_t errstr_size)
{
        pthread_once(&curl_once, curl_init);
        if (curl_init_rc != CURLE_OK) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__STATE, "libcurl: %s",
                              curl_easy_strerror(curl_init_rc));
                return NULL;
        }
        kinfer_sr_t *sr = calloc(1, sizeof(*sr));
        if (!sr) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                return NULL;
        }
        size_t ulen = strlen(cc->sr_url);
        while (ulen > 0 && cc->sr_url[ulen - 1] == '/')
                ulen--;
        if (strncmp(cc->sr_url, "http://", 7) && strncmp(cc->sr_url, "https://", 8)) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                              "schema.registry.url must start with http:// or https://");
                kinfer_sr_destroy(sr);
                return NULL;
        }
        sr->url = strndup(cc->sr_url, ulen);
        if (sr->url) { /* credentials in the URL (curl uses them) stay out of messages */
                const char *host = strstr(sr->url, "://") + 3;
                const char *at = strchr(host, '@');
                const char *slash = strchr(host, '/');
                if (at && (!slash || at < slash)) {
                        size_t n = strlen(sr->url) + 4;
                        if ((sr->shown = malloc(n)))
                                snprintf(sr->shown, n, "%.*s***%s", (int)(host - sr->url),
                                         sr->url, at);
                } else {
                        sr->shown = strdup(sr->url);
                }
        }
        sr->ca = dup_or_null(cc->sr_ca_file);
        sr->cert = dup_or_null(cc->sr_cert_file);
        sr->key = dup_or_null(cc->sr_key_file);
        if (cc->sr_user_info && *cc->sr_user_info)
                sr->user_info = strdup(cc->sr_user_info);
        else if (cc->sr_user_info_file && *cc->sr_user_info_file &&
                 !(sr->user_info = read_first_line(cc->sr_user_info_file, errstr, errstr_size))) {
                kinfer_sr_destroy(sr);
                return NULL;
        }
        sr->timeout_ms = cc->sr_timeout_ms > 0 ? cc->sr_timeout_ms : 5000;
        sr->backoff_max_ms = cc->sr_backoff_max_ms > 0 ? cc->sr_backoff_max_ms : 10000;
        if (!sr->url || !sr->shown || (cc->sr_ca_file && *cc->sr_ca_file && !sr->ca) ||
            (cc->sr_cert_file && *cc->sr_cert_file && !sr->cert) ||
            (cc->sr_key_file && *cc->sr_key_file && !sr->key) ||
            (cc->sr_user_info && *cc->sr_user_info && !sr->user_info) ||
            !(sr->curl = curl_easy_init())) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory (libcurl)");
                kinfer_sr_destroy(sr);
                return NULL;
        }
        return sr;
}

/* ---- one request ---------------------------------------------------------------------------- */

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *opaque)
{
        kinfer_sr_t *sr = opaque;
        size_t n = size * nmemb;
        if (sr->resp.len + n > KINFER_CODEC_SR_MAX_RESPONSE) {
                sr->resp_over = 1;
                return 0; /* cuts the transfer: CURLE_WRITE_ERROR */
        }
        if (kinfer_buf_append(&sr->resp, ptr, n))
                return 0;
        return n;
}

/* Run one request; the body is in sr->resp. @returns the HTTP status, or -1 with errstr
 * (no answer, or an answer over the size bound). */
static long request(kinfer_sr_t *sr, const char *url, const char *shown, const char *post,
                    size_t post_len, char *errstr, size_t errstr_size)
{
        CURL *c = sr->curl;
        curl_easy_reset(c);
        kinfer_buf_reset(&sr->resp);
        sr->resp_over = 0;
        char cerr[CURL_ERROR_SIZE] = "";
        struct curl_slist *hdrs = NULL;
        hdrs = curl_slist_append(hdrs, "Accept: application/vnd.schemaregistry.v1+json, "
                                       "application/json");
        if (post && hdrs)
                hdrs = curl_slist_append(hdrs, "Content-Type: application/vnd.schemaregistry.v1+json");
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, sr->timeout_ms);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, sr->timeout_ms);
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
#if CURL_AT_LEAST_VERSION(7, 85, 0)
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
        curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, sr);
        curl_easy_setopt(c, CURLOPT_USERAGENT, "kinfer");
        if (sr->user_info) {
                curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
                curl_easy_setopt(c, CURLOPT_USERPWD, sr->user_info);
        }
        if (sr->ca)
                curl_easy_setopt(c, CURLOPT_CAINFO, sr->ca);
        if (sr->cert)
                curl_easy_setopt(c, CURLOPT_SSLCERT, sr->cert);
        if (sr->key)
                curl_easy_setopt(c, CURLOPT_SSLKEY, sr->key);
        if (post) {
                curl_easy_setopt(c, CURLOPT_POST, 1L);
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
                curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)post_len);
        }
        CURLcode rc = hdrs ? curl_easy_perform(c) : CURLE_OUT_OF_MEMORY;
        curl_slist_free_all(hdrs);
        if (sr->resp_over) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__LIMIT,
                              "%s: response over %zu bytes", shown, KINFER_CODEC_SR_MAX_RESPONSE);
                return -1;
        }
        if (rc != CURLE_OK) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__TIMEOUT, "%s: %s", shown,
                              *cerr ? cerr : curl_easy_strerror(rc));
                return -1;
        }
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        return status;
}

/* The registry's error body, {"error_code": N, "message": "..."}, for messages. */
static void error_text(kinfer_sr_t *sr, char *out, size_t out_size)
{
        kinfer_json_doc_t *doc = NULL;
        char e[64];
        out[0] = '\0';
        if (sr->resp.len == 0 || kinfer_json_parse(sr->resp.data, sr->resp.len, &doc, e, sizeof(e)))
                return;
        const kinfer_json_t *root = kinfer_json_root(doc);
        int64_t code = 0;
        kinfer_json_int(kinfer_json_get(root, "error_code"), &code);
        const char *msg = kinfer_json_str(kinfer_json_get(root, "message"), NULL);
        snprintf(out, out_size, " (error_code %" PRId64 ": %.160s)", code, msg ? msg : "");
        kinfer_json_free(doc);
}

/* A "not now" failure: note it and start (or lengthen) the backoff. */
static kinfer_err_t not_now(kinfer_sr_t *sr, char *errstr, size_t errstr_size, const char *why)
{
        sr->backoff_ms = sr->backoff_ms ? sr->backoff_ms * 2 : SR_BACKOFF_MIN_MS;
        if (sr->backoff_ms > sr->backoff_max_ms)
                sr->backoff_ms = sr->backoff_max_ms;
        sr->next_try_ms = mono_ms() + sr->backoff_ms;
        snprintf(sr->last_error, sizeof(sr->last_error), "%s", why);
        kinfer_log(KINFER_LOG_WARN, "SREG", "registry unavailable: %s; next try in %" PRId64 " ms",
                   why, sr->backoff_ms);
        return kinfer_seterr(errstr, errstr_size, KINFER_ERR__TIMEOUT,
                             "schema registry unavailable: %s", why);
}

static kinfer_err_t in_backoff(kinfer_sr_t *sr, char *errstr, size_t errstr_size)
{
        int64_t now = mono_ms();
        if (sr->next_try_ms && now < sr->next_try_ms)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__TIMEOUT,
                                     "schema registry unavailable (next try in %" PRId64
                                     " ms): %s", sr->next_try_ms - now, sr->last_error);
        return KINFER_OK;
}

static void reachable(kinfer_sr_t *sr)
{
        if (sr->next_try_ms)
                kinfer_log(KINFER_LOG_NOTICE, "SREG", "registry reachable again: %s", sr->shown);
        sr->backoff_ms = 0;
        sr->next_try_ms = 0;
}

int kinfer_sr_retry_ms(const kinfer_sr_t *sr)
{
        if (!sr || !sr->next_try_ms)
                return 0;
        int64_t left = sr->next_try_ms - mono_ms();
        return left > 0 ? (int)left : 0;
}

/* ---- the two calls -------------------------------------------------------------------------- */

kinfer_err_t kinfer_sr_get_schema(kinfer_sr_t *sr, int32_t id, char **schema, size_t *len,
                                  char *errstr, size_t errstr_size)
{
        char url[4200], shown[4200], e[512], why[600];
        *schema = NULL;
        if (in_backoff(sr, errstr, errstr_size))
                return KINFER_ERR__TIMEOUT;
        snprintf(url, sizeof(url), "%s/schemas/ids/%" PRId32, sr->url, id);
        snprintf(shown, sizeof(shown), "%s/schemas/ids/%" PRId32, sr->shown, id);
        long status = request(sr, url, shown, NULL, 0, e, sizeof(e));
        if (status < 0 && sr->resp_over) { /* the registry answered: that id's schema is too big */
                reachable(sr);
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                                     "schema id %" PRId32 ": the registry's answer is over %zu "
                                     "bytes", id, KINFER_CODEC_SR_MAX_RESPONSE);
        }
        if (status < 0)
                return not_now(sr, errstr, errstr_size, e);
        char etext[200];
        error_text(sr, etext, sizeof(etext));
        if (status == 404) {
                reachable(sr);
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOENT,
                                     "schema id %" PRId32 " not found in the schema registry "
                                     "(HTTP 404%s)", id, etext);
        }
        if (status != 200) {
                snprintf(why, sizeof(why), "GET %.300s: HTTP %ld%s", shown, status, etext);
                return not_now(sr, errstr, errstr_size, why);
        }
        kinfer_json_doc_t *doc = NULL;
        if (kinfer_json_parse(sr->resp.data, sr->resp.len, &doc, e, sizeof(e))) {
                snprintf(why, sizeof(why), "GET %.300s: the answer is not JSON: %.200s", shown, e);
                return not_now(sr, errstr, errstr_size, why);
        }
        reachable(sr);
        const kinfer_json_t *root = kinfer_json_root(doc);
        const char *type = kinfer_json_str(kinfer_json_get(root, "schemaType"), NULL);
        size_t n = 0;
        const char *s = kinfer_json_str(kinfer_json_get(root, "schema"), &n);
        kinfer_err_t err = KINFER_OK;
        if (type && strcmp(type, "AVRO"))
                err = kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                                    "schema id %" PRId32 " is a %.32s schema, not Avro", id, type);
        else if (!s)
                err = kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                                    "schema id %" PRId32 ": the registry's answer has no "
                                    "\"schema\" string", id);
        else if (!(*schema = strndup(s, n)))
                err = kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
        else
                *len = n;
        kinfer_json_free(doc);
        return err;
}

kinfer_err_t kinfer_sr_register(kinfer_sr_t *sr, const char *subject, const char *schema,
                                int32_t *id, char *errstr, size_t errstr_size)
{
        char url[4400], shown[4400], e[512], why[800];
        if (in_backoff(sr, errstr, errstr_size))
                return KINFER_ERR__TIMEOUT;
        char *esc = curl_easy_escape(sr->curl, subject, 0);
        if (!esc)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
        snprintf(url, sizeof(url), "%s/subjects/%s/versions", sr->url, esc);
        snprintf(shown, sizeof(shown), "%s/subjects/%s/versions", sr->shown, esc);
        curl_free(esc);
        kinfer_buf_t body = {0};
        kinfer_buf_puts(&body, "{\"schema\": ");
        kinfer_buf_json_cstr(&body, schema);
        kinfer_buf_puts(&body, ", \"schemaType\": \"AVRO\"}");
        if (body.oom) {
                kinfer_buf_free(&body);
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
        }
        long status = request(sr, url, shown, body.data, body.len, e, sizeof(e));
        kinfer_buf_free(&body);
        if (status < 0)
                return not_now(sr, errstr, errstr_size, e);
        char etext[200];
        error_text(sr, etext, sizeof(etext));
        if (status >= 500 || status == 401 || status == 403 || status == 408 || status == 429) {
                snprintf(why, sizeof(why), "POST %.300s: HTTP %ld%s", shown, status, etext);
                return not_now(sr, errstr, errstr_size, why);
        }
        reachable(sr);
        if (status != 200)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                                     "registering subject %s: POST %.300s: HTTP %ld%s", subject, shown,
                                     status, etext);
        kinfer_json_doc_t *doc = NULL;
        if (kinfer_json_parse(sr->resp.data, sr->resp.len, &doc, e, sizeof(e)))
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                                     "registering subject %s: the answer is not JSON: %s", subject, e);
        int64_t v = -1;
        kinfer_json_int(kinfer_json_get(kinfer_json_root(doc), "id"), &v);
        kinfer_json_free(doc);
        if (v < 0 || v > INT32_MAX)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                                     "registering subject %s: the answer has no id in 0..%d",
                                     subject, INT32_MAX);
        *id = (int32_t)v;
        return KINFER_OK;
}
