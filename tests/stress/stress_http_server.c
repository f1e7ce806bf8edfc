/*
 * The http_server source under concurrent clients (libcurl) and a stop in
 * the middle of their uploads: every record answered 200 is emitted, once.
 * Run under ThreadSanitizer to check the hand-over between connection
 * threads and run(). Exit 0 on success.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/harness.h"
#include "sluice/plugin.h"
#include "stages/http_server.h"

extern const sl_stage_desc sl_stage_http_server;

#define CLIENTS 4
#define PER_REQUEST 5

static atomic_int failures;
static atomic_int accepted;
static atomic_bool go_on = true;

typedef struct client {
    int port;
    int id;
    int mine;
} client;

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

static void *client_main(void *arg)
{
    client *c = arg;
    CURL *h = curl_easy_init();
    if (h == NULL) {
        atomic_fetch_add(&failures, 1);
        return NULL;
    }
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", c->port);
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/x-ndjson");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    for (int r = 0; atomic_load(&go_on); r++) {
        char body[512];
        size_t n = 0;
        for (int k = 0; k < PER_REQUEST; k++)
            n += (size_t)snprintf(body + n, sizeof(body) - n, "{\"c\":%d,\"r\":%d,\"k\":%d}\n",
                                  c->id, r, k);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)n);
        if (curl_easy_perform(h) != CURLE_OK)
            break;   /* listener closed */
        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if (status == 200) {
            c->mine += PER_REQUEST;
            atomic_fetch_add(&accepted, PER_REQUEST);
        } else if (status == 503) {
            break;   /* draining */
        } else {
            fprintf(stderr, "stress_http_server: unexpected status %ld\n", status);
            atomic_fetch_add(&failures, 1);
            break;
        }
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return NULL;
}

typedef struct server {
    sl_harness *h;
    int rc;
} server;

static void *server_main(void *arg)
{
    server *s = arg;
    s->rc = sl_harness_run(s->h);
    return NULL;
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    server s = {NULL, 0};
    if (sl_harness_create(&sl_stage_http_server,
                          "listen: 127.0.0.1:0\nqueue: 2\nclient_rate: 100000/s\nclient_burst: 1000",
                          &s.h) != 0 ||
        sl_harness_init(s.h) != 0) {
        fprintf(stderr, "stress_http_server: init: %s\n",
                s.h != NULL ? sl_harness_last_error(s.h) : "");
        return 1;
    }
    int port = sl__http_server_port(sl_harness_state(s.h));
    pthread_t st;
    pthread_create(&st, NULL, server_main, &s);
    pthread_t t[CLIENTS];
    client c[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        c[i] = (client){.port = port, .id = i, .mine = 0};
        pthread_create(&t[i], NULL, client_main, &c[i]);
    }
    while (atomic_load(&accepted) < 300 && atomic_load(&failures) == 0)
        sched_yield();
    sl_harness_stop(s.h);
    pthread_join(st, NULL);
    atomic_store(&go_on, false);
    int sum = 0;
    for (int i = 0; i < CLIENTS; i++) {
        pthread_join(t[i], NULL);
        sum += c[i].mine;
    }
    if (s.rc != 0) {
        fprintf(stderr, "stress_http_server: run: %s\n", sl_harness_last_error(s.h));
        atomic_fetch_add(&failures, 1);
    }
    size_t emitted = sl_harness_emitted_count(s.h);
    if (emitted != (size_t)sum) {
        fprintf(stderr, "stress_http_server: %zu emitted, %d answered 200\n", emitted, sum);
        atomic_fetch_add(&failures, 1);
    }
    sl_harness_destroy(s.h);
    curl_global_cleanup();
    return atomic_load(&failures) == 0 ? 0 : 1;
}
