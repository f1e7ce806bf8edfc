/*
 * The metrics HTTP endpoint on libmicrohttpd (see metrics/endpoint.h).
 * The listening socket is made here, so that a busy port or a bad address
 * is reported plainly; libmicrohttpd serves on it from its own thread and
 * closes it when stopped.
 */
#include "metrics/endpoint.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sluice/error.h"

struct sl__metrics_server {
    struct MHD_Daemon *daemon;  /* owner */
    sl__snapshot_fn fn;         /* immutable */
    sl__text_fn debug_fn;       /* immutable; NULL = no /debug/stages */
    void *arg;                  /* immutable */
    int port;                   /* immutable after start */
    char address[96];           /* immutable after start */
};

static const char index_text[] =
    "sluice metrics endpoint\n"
    "\n"
    "  /metrics    Prometheus text format\n"
    "  /health     200 while the pipeline runs; JSON stage states\n"
    "  /snapshot   the JSON metrics snapshot\n"
    "  /debug/stages  every stage and worker now (what SIGUSR1 prints)\n";

/* ------------------------------------------------------------------ */
/* Requests                                                            */
/* ------------------------------------------------------------------ */

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status,
                               const char *type, const char *body, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result respond_text(struct MHD_Connection *conn,
                                    unsigned status, const char *text)
{
    return respond(conn, status, "text/plain; charset=utf-8", text,
                   strlen(text));
}

enum route { ROUTE_INDEX, ROUTE_METRICS, ROUTE_HEALTH, ROUTE_SNAPSHOT,
             ROUTE_DEBUG_STAGES };

/* /debug/stages: the text function's answer, uncached. */
static enum MHD_Result serve_debug(struct MHD_Connection *conn,
                                   sl__metrics_server *srv)
{
    sl_buf b;
    sl_buf_init(&b);
    enum MHD_Result res;
    if (srv->debug_fn(srv->arg, &b) != 0)
        res = respond_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                           "cannot describe the stages\n");
    else
        res = respond(conn, MHD_HTTP_OK, "text/plain; charset=utf-8",
                      b.data != NULL ? b.data : "", b.len);
    sl_buf_fini(&b);
    return res;
}

static enum MHD_Result serve(struct MHD_Connection *conn,
                             sl__metrics_server *srv, enum route route)
{
    if (route == ROUTE_INDEX)
        return respond_text(conn, MHD_HTTP_OK, index_text);
    if (route == ROUTE_DEBUG_STAGES)
        return serve_debug(conn, srv);
    sl__run_snapshot snap;
    memset(&snap, 0, sizeof(snap));
    if (srv->fn(srv->arg, &snap) != 0)
        return respond_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                            "cannot take a snapshot\n");
    sl_buf b;
    sl_buf_init(&b);
    int rc = 0;
    int status = MHD_HTTP_OK;
    const char *type = "application/json";
    switch (route) {
    case ROUTE_METRICS:
        rc = sl__metrics_prometheus(&snap, &b);
        type = "text/plain; version=0.0.4; charset=utf-8";
        break;
    case ROUTE_HEALTH:
        rc = sl__metrics_health_json(&snap, &b, &status);
        if (rc == 0 && sl_buf_putc(&b, '\n') != 0)
            rc = SL_ENOMEM;
        break;
    case ROUTE_SNAPSHOT:
        rc = sl__run_snapshot_json(&snap, &b);
        if (rc == 0 && sl_buf_putc(&b, '\n') != 0)
            rc = SL_ENOMEM;
        break;
    case ROUTE_INDEX:
    case ROUTE_DEBUG_STAGES:
        break;
    }
    enum MHD_Result res;
    if (rc != 0)
        res = respond_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                           "out of memory\n");
    else
        res = respond(conn, (unsigned)status, type, b.data != NULL ? b.data : "",
                      b.len);
    sl_buf_fini(&b);
    sl__run_snapshot_fini(&snap);
    return res;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    sl__metrics_server *srv = cls;
    (void)version;
    (void)upload_data;
    if (*upload_data_size != 0) {   /* a body we do not want: swallow it */
        *upload_data_size = 0;
        return MHD_YES;
    }
    (void)con_cls;
    enum route route;
    if (strcmp(url, "/metrics") == 0)
        route = ROUTE_METRICS;
    else if (strcmp(url, "/health") == 0)
        route = ROUTE_HEALTH;
    else if (strcmp(url, "/snapshot") == 0)
        route = ROUTE_SNAPSHOT;
    else if (strcmp(url, "/") == 0)
        route = ROUTE_INDEX;
    else if (strcmp(url, "/debug/stages") == 0 && srv->debug_fn != NULL)
        route = ROUTE_DEBUG_STAGES;
    else
        return respond_text(conn, MHD_HTTP_NOT_FOUND,
                            "not found: try /metrics, /health or /snapshot\n");
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
        strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return respond_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                            "only GET\n");
    return serve(conn, srv, route);
}

/* ------------------------------------------------------------------ */
/* The listening socket                                                */
/* ------------------------------------------------------------------ */

/* Split "HOST:PORT" / "[V6]:PORT" into host (default 127.0.0.1) and port. */
static int split_address(const char *addr, char *host, size_t host_size,
                         char *port, size_t port_size)
{
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || colon[1] == '\0')
        return SL_EINVAL;
    for (const char *p = colon + 1; *p; p++)
        if (*p < '0' || *p > '9')
            return SL_EINVAL;
    if (strlen(colon + 1) >= port_size || atol(colon + 1) > 65535)
        return SL_EINVAL;
    strcpy(port, colon + 1);
    const char *h = addr;
    size_t hlen = (size_t)(colon - addr);
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    } else if (memchr(h, ':', hlen) != NULL) {
        return SL_EINVAL;   /* a bare IPv6 address needs brackets */
    }
    if (hlen == 0) {
        snprintf(host, host_size, "127.0.0.1");
        return 0;
    }
    if (hlen >= host_size)
        return SL_EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    return 0;
}

/* Resolve, bind and listen. Returns the socket, or -1 with *rc and err
 * set. */
static int open_listener(const char *addr, char *err, size_t err_size,
                         int *rc)
{
    char host[256], port[8];
    if (split_address(addr, host, sizeof(host), port, sizeof(port)) != 0) {
        snprintf(err, err_size, "'%s' is not HOST:PORT (e.g. 127.0.0.1:9464)",
                 addr);
        *rc = SL_EINVAL;
        return -1;
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0) {
        snprintf(err, err_size, "cannot resolve '%s': %s", host,
                 gai_strerror(gai));
        *rc = gai == EAI_MEMORY ? SL_ENOMEM : SL_EIO;
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto out_fail;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 64) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        goto out_fail;
    }
    freeaddrinfo(res);
    return fd;
out_fail:
    snprintf(err, err_size, "cannot listen on %s: %s", addr, strerror(errno));
    freeaddrinfo(res);
    *rc = SL_EIO;
    return -1;
}

/* "127.0.0.1:9464" / "[::1]:9464" of what fd is bound to. */
static int bound_address(int fd, char *buf, size_t size, int *port)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return SL_EIO;
    char ip[INET6_ADDRSTRLEN];
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
        *port = ntohs(a->sin6_port);
        snprintf(buf, size, "[%s]:%d", ip, *port);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
        *port = ntohs(a->sin_port);
        snprintf(buf, size, "%s:%d", ip, *port);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Start and stop                                                      */
/* ------------------------------------------------------------------ */

int sl__metrics_server_start(const char *listen_addr, sl__snapshot_fn fn,
                             void *arg, char *err, size_t err_size,
                             sl__metrics_server **out)
{
    return sl__metrics_server_start_debug(listen_addr, fn, NULL, arg, err,
                                          err_size, out);
}

int sl__metrics_server_start_debug(const char *listen_addr, sl__snapshot_fn fn,
                                   sl__text_fn debug_fn, void *arg, char *err,
                                   size_t err_size, sl__metrics_server **out)
{
    sl__metrics_server *srv = calloc(1, sizeof(*srv));
    if (srv == NULL)
        return SL_ENOMEM;
    srv->fn = fn;
    srv->debug_fn = debug_fn;
    srv->arg = arg;
    int rc = 0;
    int fd = open_listener(listen_addr, err, err_size, &rc);
    if (fd < 0)
        goto out_free_srv;
    if (bound_address(fd, srv->address, sizeof(srv->address), &srv->port) !=
        0) {
        snprintf(err, err_size, "cannot listen on %s: %s", listen_addr,
                 strerror(errno));
        rc = SL_EIO;
        goto out_close_fd;
    }
    srv->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, on_request, srv,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)64,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10,
        MHD_OPTION_END);
    if (srv->daemon == NULL) {
        snprintf(err, err_size, "cannot start the HTTP server on %s",
                 srv->address);
        rc = SL_EIO;
        goto out_close_fd;
    }
    *out = srv;
    return 0;
out_close_fd:
    close(fd);
out_free_srv:
    free(srv);
    return rc;
}

const char *sl__metrics_server_address(const sl__metrics_server *s)
{
    return s->address;
}

int sl__metrics_server_port(const sl__metrics_server *s)
{
    return s->port;
}

void sl__metrics_server_stop(sl__metrics_server *s)
{
    if (s == NULL)
        return;
    MHD_stop_daemon(s->daemon);   /* closes the listening socket */
    free(s);
}
