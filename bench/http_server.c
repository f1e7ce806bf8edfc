/*
 * A fast loopback HTTP server for the HTTP fetch benchmark (bench/http.sh):
 * libmicrohttpd on epoll with a small thread pool, answering every GET
 * with the same small JSON page from one shared response object, so that
 * the server costs as little as possible and the clients are what is
 * measured.
 *
 *   http_server PORTFILE [THREADS]
 *
 * Listens on 127.0.0.1 on an ephemeral port, writes the port to PORTFILE
 * once ready (via a rename, so a reader never sees half of it), and serves
 * until SIGINT or SIGTERM.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char page[] =
    "{\"id\":1,\"ts\":\"2026-11-01T10:00:01Z\",\"user\":\"u2\",\"status\":200,"
    "\"path\":\"/api/v1/users/50\",\"bytes\":17659,\"latency_ms\":85.2}\n";

static struct MHD_Response *response;

static enum MHD_Result handler(void *cls, struct MHD_Connection *c,
                               const char *url, const char *method,
                               const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
    (void)cls;
    (void)url;
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)con_cls;
    if (strcmp(method, "GET") != 0)
        return MHD_NO;
    return MHD_queue_response(c, MHD_HTTP_OK, response);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PORTFILE [THREADS]\n", argv[0]);
        return 2;
    }
    unsigned threads = argc > 2 ? (unsigned)atoi(argv[2]) : 2;
    if (threads < 1)
        threads = 1;

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);   /* the daemon's threads too */

    response = MHD_create_response_from_buffer(sizeof(page) - 1, (void *)page,
                                               MHD_RESPMEM_PERSISTENT);
    if (response == NULL)
        return 1;
    MHD_add_response_header(response, "Content-Type", "application/json");

    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD, 0, NULL, NULL, handler, NULL,
        MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "http_server: cannot start\n");
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", argv[1]);
    FILE *f = fopen(tmp, "w");
    if (f == NULL || info == NULL)
        return 1;
    fprintf(f, "%u\n", (unsigned)info->port);
    fclose(f);
    if (rename(tmp, argv[1]) != 0)
        return 1;

    int sig = 0;
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    MHD_destroy_response(response);
    return 0;
}
