/* SPDX-License-Identifier: Apache-2.0 */
/* http.c -- the embedded HTTP server (libmicrohttpd, the only <microhttpd.h> user): routes,
 * bearer-token auth, TLS, request body bounds, JSON error bodies. Route content comes from the
 * embedder's hooks (http.h). */
#include "kinfer/http/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "kinfer/core/json.h"
#include "kinfer/core/log.h"
#include "kinfer/core/sha256.h"

#define TLS_FILE_MAX ((size_t)1 << 20) /* a PEM certificate chain or key file */
#define TOKEN_MAX 4096                  /* a bearer token (and its file's first line) */

struct kinfer_http_s {
        struct MHD_Daemon *d;
        struct sockaddr_storage addr;
        char listen[300];
        int port;
        int tls;
        char *cert_pem, *key_pem;
        int has_token;
        uint8_t token_sha[32]; /* sha256 of the token: compared in constant time */
        size_t max_body;
        unsigned max_conns;
        unsigned timeout_s;
        kinfer_http_metrics_fn *metrics_fn;
        void *metrics_opaque;
        kinfer_http_ready_fn *ready_fn;
        void *ready_opaque;
        kinfer_http_classify_fn *classify_fn;
        void *classify_opaque;
};

/* one request's state, from the first call of the access handler to the completion callback */
struct req {
        kinfer_buf_t body;
        int over; /* the body passed max_body: the rest is discarded, the answer is 413 */
};

/* ---- helpers -------------------------------------------------------------------------------- */

void kinfer_http_error_body(kinfer_buf_t *out, int status, const char *msg)
{
        kinfer_buf_reset(out);
        kinfer_buf_puts(out, "{\"error\": ");
        kinfer_buf_json_cstr(out, msg);
        kinfer_buf_printf(out, ", \"status\": %d}\n", status);
}

static enum MHD_Result respond(struct MHD_Connection *c, int status, const char *ctype,
                               const void *data, size_t len, const char *allow)
{
        struct MHD_Response *r =
            MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
        if (!r)
                return MHD_NO;
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        if (allow)
                MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
        if (status == MHD_HTTP_UNAUTHORIZED)
                MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                        "Bearer realm=\"kinfer\"");
        enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
        MHD_destroy_response(r);
        return ret;
}

static enum MHD_Result respond_json(struct MHD_Connection *c, int status, kinfer_buf_t *b)
{
        return respond(c, status, "application/json", b->data ? b->data : "", b->len, NULL);
}

static enum MHD_Result respond_error(struct MHD_Connection *c, int status, const char *allow,
                                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static enum MHD_Result respond_error(struct MHD_Connection *c, int status, const char *allow,
                                     const char *fmt, ...)
{
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        kinfer_buf_t b = {0};
        kinfer_http_error_body(&b, status, msg);
        enum MHD_Result ret =
            b.oom ? MHD_NO
                  : respond(c, status, "application/json", b.data, b.len, allow);
        kinfer_buf_free(&b);
        return ret;
}

/* 1 if the request carries "Authorization: Bearer <token>" with the configured token (or no
 * token is configured). Compares sha256 digests in constant time: neither the token's bytes
 * nor its length leak through timing. */
static int authorized(const kinfer_http_t *h, struct MHD_Connection *c)
{
        if (!h->has_token)
                return 1;
        const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                    MHD_HTTP_HEADER_AUTHORIZATION);
        if (!a || strncasecmp(a, "Bearer ", 7))
                return 0;
        a += 7;
        while (*a == ' ')
                a++;
        uint8_t got[32];
        if (kinfer_sha256(a, strlen(a), got))
                return 0;
        unsigned diff = 0;
        for (int i = 0; i < 32; i++)
                diff |= (unsigned)(got[i] ^ h->token_sha[i]);
        return diff == 0;
}

/* ---- routes --------------------------------------------------------------------------------- */

static enum MHD_Result route_ready(kinfer_http_t *h, struct MHD_Connection *c)
{
        char why[256] = "no readiness hook";
        int ready = h->ready_fn ? h->ready_fn(h->ready_opaque, why, sizeof(why)) : 0;
        kinfer_buf_t b = {0};
        if (ready) {
                kinfer_buf_puts(&b, "{\"status\": \"ready\"}\n");
        } else {
                kinfer_buf_puts(&b, "{\"status\": \"not_ready\", \"reason\": ");
                kinfer_buf_json_cstr(&b, why);
                kinfer_buf_puts(&b, "}\n");
        }
        enum MHD_Result ret = b.oom ? MHD_NO
                                    : respond_json(c, ready ? MHD_HTTP_OK
                                                            : MHD_HTTP_SERVICE_UNAVAILABLE,
                                                   &b);
        kinfer_buf_free(&b);
        return ret;
}

static enum MHD_Result route_metrics(kinfer_http_t *h, struct MHD_Connection *c)
{
        kinfer_buf_t b = {0};
        char errstr[512] = "";
        kinfer_err_t err = h->metrics_fn(h->metrics_opaque, &b, errstr, sizeof(errstr));
        enum MHD_Result ret;
        if (err || b.oom) {
                kinfer_log(KINFER_LOG_WARN, "HTTP", "/metrics: %s",
                           err ? errstr : "out of memory");
                ret = respond_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, "metrics: %s",
                                    err ? errstr : "out of memory");
        } else {
                ret = respond(c, MHD_HTTP_OK, KINFER_HTTP_METRICS_CONTENT_TYPE,
                              b.data ? b.data : "", b.len, NULL);
        }
        kinfer_buf_free(&b);
        return ret;
}

static enum MHD_Result route_classify(kinfer_http_t *h, struct MHD_Connection *c, struct req *r)
{
        kinfer_buf_t out = {0};
        int status = h->classify_fn(h->classify_opaque, r->body.data ? r->body.data : "",
                                    r->body.len, &out);
        enum MHD_Result ret;
        if (out.oom)
                ret = respond_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, "out of memory");
        else
                ret = respond_json(c, status, &out);
        kinfer_buf_free(&out);
        return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
        kinfer_http_t *h = cls;
        struct req *r = *con_cls;
        int is_get = !strcmp(method, MHD_HTTP_METHOD_GET) || !strcmp(method, MHD_HTTP_METHOD_HEAD);
        int is_post = !strcmp(method, MHD_HTTP_METHOD_POST);
        int classify = !strcmp(url, "/v1/classify");

        if (!r) { /* first call: headers only */
                if (classify && is_post && h->classify_fn) {
                        if (!authorized(h, c))
                                return respond_error(c, MHD_HTTP_UNAUTHORIZED, NULL,
                                                     "missing or wrong bearer token");
                        const char *cl = MHD_lookup_connection_value(
                            c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
                        if (cl && strtoull(cl, NULL, 10) > h->max_body)
                                return respond_error(c, MHD_HTTP_CONTENT_TOO_LARGE, NULL,
                                                     "request body of %s bytes is over "
                                                     "http.max.body.bytes=%zu",
                                                     cl, h->max_body);
                        if (!(r = calloc(1, sizeof(*r))))
                                return MHD_NO;
                        *con_cls = r;
                        return MHD_YES; /* the body follows */
                }
                /* every other request is answered at once (a body it may carry is discarded) */
                if (!strcmp(url, "/healthz")) {
                        if (!is_get)
                                return respond_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "GET, HEAD",
                                                     "%s /healthz: use GET", method);
                        static const char ok[] = "{\"status\": \"ok\"}\n";
                        return respond(c, MHD_HTTP_OK, "application/json", ok, sizeof(ok) - 1,
                                       NULL);
                }
                if (!strcmp(url, "/readyz")) {
                        if (!is_get)
                                return respond_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "GET, HEAD",
                                                     "%s /readyz: use GET", method);
                        return route_ready(h, c);
                }
                if (!strcmp(url, "/metrics") && h->metrics_fn) {
                        if (!is_get)
                                return respond_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "GET, HEAD",
                                                     "%s /metrics: use GET", method);
                        if (!authorized(h, c))
                                return respond_error(c, MHD_HTTP_UNAUTHORIZED, NULL,
                                                     "missing or wrong bearer token");
                        return route_metrics(h, c);
                }
                if (classify && h->classify_fn)
                        return respond_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "POST",
                                             "%s /v1/classify: use POST", method);
                return respond_error(c, MHD_HTTP_NOT_FOUND, NULL, "no route for %s %s", method,
                                     url);
        }
        /* POST /v1/classify: collect the body, bounded */
        if (*upload_data_size) {
                if (!r->over && r->body.len + *upload_data_size <= h->max_body) {
                        if (kinfer_buf_append(&r->body, upload_data, *upload_data_size))
                                return MHD_NO;
                } else {
                        r->over = 1; /* chunked or lying Content-Length: keep reading, drop */
                        kinfer_buf_free(&r->body);
                }
                *upload_data_size = 0;
                return MHD_YES;
        }
        if (r->over)
                return respond_error(c, MHD_HTTP_CONTENT_TOO_LARGE, NULL,
                                     "request body is over http.max.body.bytes=%zu",
                                     h->max_body);
        (void)version;
        return route_classify(h, c, r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
        struct req *r = *con_cls;
        if (r) {
                kinfer_buf_free(&r->body);
                free(r);
                *con_cls = NULL;
        }
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
        char line[512];
        vsnprintf(line, sizeof(line), fmt, ap);
        size_t n = strlen(line);
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                line[--n] = '\0';
        kinfer_log(KINFER_LOG_WARN, "HTTP", "libmicrohttpd: %s", line);
}

/* ---- life cycle ----------------------------------------------------------------------------- */

/* Read a whole file of at most @p max bytes as a C string (no NUL inside). */
static char *read_file(const char *what, const char *path, size_t max, char *errstr,
                       size_t errstr_size)
{
        FILE *fp = fopen(path, "rb");
        if (!fp) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__IO, "%s %s: %s", what, path,
                              strerror(errno));
                return NULL;
        }
        kinfer_buf_t b = {0};
        char chunk[8192];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
                if (b.len + n > max) {
                        fclose(fp);
                        kinfer_buf_free(&b);
                        kinfer_seterr(errstr, errstr_size, KINFER_ERR__LIMIT,
                                      "%s %s: larger than %zu bytes", what, path, max);
                        return NULL;
                }
                kinfer_buf_append(&b, chunk, n);
        }
        int bad = ferror(fp);
        fclose(fp);
        if (bad || b.oom || (b.len && memchr(b.data, '\0', b.len))) {
                kinfer_seterr(errstr, errstr_size, bad ? KINFER_ERR__IO : KINFER_ERR__BAD_FORMAT,
                              "%s %s: %s", what, path,
                              bad ? "read error" : b.oom ? "out of memory" : "a NUL byte");
                kinfer_buf_free(&b);
                return NULL;
        }
        return kinfer_buf_detach(&b);
}

/* "HOST:PORT", "[V6]:PORT" or "PORT" (loopback) into h->addr. */
static kinfer_err_t parse_listen(kinfer_http_t *h, const char *s, char *errstr,
                                 size_t errstr_size)
{
        char host[256] = "127.0.0.1";
        const char *port_s = s;
        if (*s == '[') {
                const char *e = strchr(s, ']');
                if (!e || e[1] != ':' || (size_t)(e - s - 1) >= sizeof(host))
                        goto bad;
                memcpy(host, s + 1, (size_t)(e - s - 1));
                host[e - s - 1] = '\0';
                port_s = e + 2;
        } else if (strchr(s, ':')) {
                const char *e = strrchr(s, ':');
                if ((size_t)(e - s) >= sizeof(host) || e == s)
                        goto bad;
                memcpy(host, s, (size_t)(e - s));
                host[e - s] = '\0';
                port_s = e + 1;
        }
        char *end;
        errno = 0;
        long port = strtol(port_s, &end, 10);
        if (errno || end == port_s || *end || port < 0 || port > 65535)
                goto bad;
        memset(&h->addr, 0, sizeof(h->addr));
        struct sockaddr_in *a4 = (struct sockaddr_in *)&h->addr;
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&h->addr;
        if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
                a4->sin_family = AF_INET;
                a4->sin_port = htons((uint16_t)port);
        } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
                a6->sin6_family = AF_INET6;
                a6->sin6_port = htons((uint16_t)port);
        } else {
                goto bad;
        }
        return KINFER_OK;
bad:
        return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                             "http.listen: expected HOST:PORT, [IPV6]:PORT or PORT with a numeric "
                             "address, got \"%s\"",
                             s);
}

kinfer_http_t *kinfer_http_new(const kinfer_conf_t *conf, char *errstr, size_t errstr_size)
{
        const char *listen = kinfer_conf_get(conf, "http.listen");
        if (!*listen) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                              "http.listen is empty: no HTTP server");
                return NULL;
        }
        kinfer_http_t *h = calloc(1, sizeof(*h));
        if (!h) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                return NULL;
        }
        snprintf(h->listen, sizeof(h->listen), "%s", listen);
        h->max_body = (size_t)kinfer_conf_get_int(conf, "http.max.body.bytes");
        h->max_conns = (unsigned)kinfer_conf_get_int(conf, "http.max.connections");
        h->timeout_s = (unsigned)((kinfer_conf_get_int(conf, "http.timeout.ms") + 999) / 1000);
        if (parse_listen(h, listen, errstr, errstr_size))
                goto fail;

        const char *token = kinfer_conf_get(conf, "http.auth.token");
        const char *token_file = kinfer_conf_get(conf, "http.auth.token.file");
        if (*token && *token_file) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                              "set http.auth.token or http.auth.token.file, not both");
                goto fail;
        }
        if (*token_file) {
                char *t = read_file("http.auth.token.file", token_file, TOKEN_MAX, errstr,
                                    errstr_size);
                if (!t)
                        goto fail;
                t[strcspn(t, "\r\n")] = '\0'; /* the first line */
                if (!*t) {
                        free(t);
                        kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                      "http.auth.token.file %s: the first line is empty",
                                      token_file);
                        goto fail;
                }
                kinfer_sha256(t, strlen(t), h->token_sha);
                memset(t, 0, strlen(t));
                free(t);
                h->has_token = 1;
        } else if (*token) {
                if (strlen(token) > TOKEN_MAX) {
                        kinfer_seterr(errstr, errstr_size, KINFER_ERR__LIMIT,
                                      "http.auth.token: longer than %d bytes", TOKEN_MAX);
                        goto fail;
                }
                kinfer_sha256(token, strlen(token), h->token_sha);
                h->has_token = 1;
        }

        const char *cert = kinfer_conf_get(conf, "http.tls.cert.file");
        const char *key = kinfer_conf_get(conf, "http.tls.key.file");
        if (!*cert != !*key) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                              "TLS needs both http.tls.cert.file and http.tls.key.file");
                goto fail;
        }
        if (*cert) {
                if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
                        kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                      "http.tls.cert.file: this libmicrohttpd has no TLS");
                        goto fail;
                }
                if (!(h->cert_pem = read_file("http.tls.cert.file", cert, TLS_FILE_MAX, errstr,
                                              errstr_size)) ||
                    !(h->key_pem = read_file("http.tls.key.file", key, TLS_FILE_MAX, errstr,
                                             errstr_size)))
                        goto fail;
                h->tls = 1;
        }
        return h;
fail:
        kinfer_http_destroy(h);
        return NULL;
}

void kinfer_http_set_metrics(kinfer_http_t *h, kinfer_http_metrics_fn *fn, void *opaque)
{
        h->metrics_fn = fn;
        h->metrics_opaque = opaque;
}

void kinfer_http_set_ready(kinfer_http_t *h, kinfer_http_ready_fn *fn, void *opaque)
{
        h->ready_fn = fn;
        h->ready_opaque = opaque;
}

void kinfer_http_set_classify(kinfer_http_t *h, kinfer_http_classify_fn *fn, void *opaque)
{
        h->classify_fn = fn;
        h->classify_opaque = opaque;
}

kinfer_err_t kinfer_http_start(kinfer_http_t *h, char *errstr, size_t errstr_size)
{
        if (h->d)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__STATE,
                                     "the HTTP server is already started");
        unsigned flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD |
                         MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
        if (h->addr.ss_family == AF_INET6)
                flags |= MHD_USE_IPv6;
        if (h->tls)
                flags |= MHD_USE_TLS;
        struct MHD_OptionItem tls_opts[] = {
            {MHD_OPTION_HTTPS_MEM_CERT, 0, h->cert_pem},
            {MHD_OPTION_HTTPS_MEM_KEY, 0, h->key_pem},
            {MHD_OPTION_END, 0, NULL},
        };
        struct MHD_OptionItem no_opts[] = {{MHD_OPTION_END, 0, NULL}};
        errno = 0;
        h->d = MHD_start_daemon(
            flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&h->addr, MHD_OPTION_CONNECTION_LIMIT,
            h->max_conns, MHD_OPTION_CONNECTION_TIMEOUT, h->timeout_s,
            MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_ARRAY,
            h->tls ? tls_opts : no_opts, MHD_OPTION_END);
        if (!h->d)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__IO,
                                     "http.listen=%s: cannot serve%s%s (address in use or not "
                                     "permitted, or a TLS certificate/key libmicrohttpd "
                                     "refused: see the log)",
                                     h->listen, errno ? ": " : "", errno ? strerror(errno) : "");
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
        h->port = info ? info->port : 0;
        char host[INET6_ADDRSTRLEN] = "?";
        if (h->addr.ss_family == AF_INET6)
                inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&h->addr)->sin6_addr, host,
                          sizeof(host));
        else
                inet_ntop(AF_INET, &((struct sockaddr_in *)&h->addr)->sin_addr, host,
                          sizeof(host));
        kinfer_log(KINFER_LOG_NOTICE, "HTTP", "serving %s on %s%s%s:%d (http.listen=%s)%s",
                   h->tls ? "https" : "http", h->addr.ss_family == AF_INET6 ? "[" : "", host,
                   h->addr.ss_family == AF_INET6 ? "]" : "", h->port, h->listen,
                   h->has_token ? ", bearer token required for /metrics and /v1/classify" : "");
        return KINFER_OK;
}

int kinfer_http_port(const kinfer_http_t *h)
{
        return h->port;
}

const char *kinfer_http_scheme(const kinfer_http_t *h)
{
        return h->tls ? "https" : "http";
}

void kinfer_http_destroy(kinfer_http_t *h)
{
        if (!h)
                return;
        if (h->d)
                MHD_stop_daemon(h->d);
        free(h->cert_pem);
        if (h->key_pem) {
                memset(h->key_pem, 0, strlen(h->key_pem));
                free(h->key_pem);
        }
        free(h);
}
