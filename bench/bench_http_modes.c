/*
 * Two ways to keep P requests in flight with libcurl, on the same URLs:
 *
 *   multi      one thread, one multi handle, P easy handles reused
 *              (what the `http` fetch stage does)
 *   easy_pool  P threads, each with its own easy handle, calling
 *              curl_easy_perform on the next URL
 *
 * Bodies are received and dropped. Prints requests/s and the process's
 * CPU time per request for each.
 *
 *   bench_http_modes BASE_URL COUNT PARALLEL
 *
 * URL i is BASE_URL followed by i (1..COUNT), e.g. http://127.0.0.1:8000/page/
 * Run by bench/http.sh against bench/http_server.c.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <curl/curl.h>

static const char *base;
static long count;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds used by the process so far, all threads. */
static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static size_t drop(char *data, size_t size, size_t nmemb, void *arg)
{
    (void)data;
    (*(size_t *)arg) += size * nmemb;
    return size * nmemb;
}

static void set_url(CURL *e, long i, char *buf, size_t size)
{
    snprintf(buf, size, "%s%ld", base, i);
    curl_easy_setopt(e, CURLOPT_URL, buf);
}

/* ---------------------------------------------------------------- multi */

static long run_multi(int parallel)
{
    CURLM *m = curl_multi_init();
    CURL **h = calloc((size_t)parallel, sizeof(*h));
    char (*urls)[256] = calloc((size_t)parallel, sizeof(*urls));
    size_t bytes = 0;
    long next = 1, done = 0, failed = 0;
    int running = 0;
    for (int j = 0; j < parallel; j++) {
        h[j] = curl_easy_init();
        curl_easy_setopt(h[j], CURLOPT_WRITEFUNCTION, drop);
        curl_easy_setopt(h[j], CURLOPT_WRITEDATA, &bytes);
        curl_easy_setopt(h[j], CURLOPT_PRIVATE, (void *)(intptr_t)j);
        curl_easy_setopt(h[j], CURLOPT_NOSIGNAL, 1L);
        if (next <= count) {
            set_url(h[j], next++, urls[j], sizeof(urls[j]));
            curl_multi_add_handle(m, h[j]);
            running++;
        }
    }
    while (running > 0) {
        int still;
        curl_multi_perform(m, &still);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            CURL *e = msg->easy_handle;
            if (msg->data.result != CURLE_OK)
                failed++;
            done++;
            curl_multi_remove_handle(m, e);
            running--;
            if (next <= count) {
                char *p;
                curl_easy_getinfo(e, CURLINFO_PRIVATE, &p);
                int j = (int)(intptr_t)p;
                set_url(e, next++, urls[j], sizeof(urls[j]));
                curl_multi_add_handle(m, e);
                running++;
            }
        }
        if (running > 0)
            curl_multi_poll(m, NULL, 0, 1000, NULL);
    }
    for (int j = 0; j < parallel; j++)
        curl_easy_cleanup(h[j]);
    curl_multi_cleanup(m);
    free(h);
    free(urls);
    return failed;
}

/* ------------------------------------------------------------ easy pool */

static _Atomic long pool_next;
static _Atomic long pool_failed;

static void *pool_main(void *arg)
{
    (void)arg;
    CURL *e = curl_easy_init();
    size_t bytes = 0;
    char url[256];
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, drop);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &bytes);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    for (;;) {
        long i = atomic_fetch_add(&pool_next, 1);
        if (i > count)
            break;
        set_url(e, i, url, sizeof(url));
        if (curl_easy_perform(e) != CURLE_OK)
            atomic_fetch_add(&pool_failed, 1);
    }
    curl_easy_cleanup(e);
    return NULL;
}

static long run_pool(int parallel)
{
    pthread_t *t = calloc((size_t)parallel, sizeof(*t));
    atomic_store(&pool_next, 1);
    atomic_store(&pool_failed, 0);
    for (int j = 0; j < parallel; j++)
        pthread_create(&t[j], NULL, pool_main, NULL);
    for (int j = 0; j < parallel; j++)
        pthread_join(t[j], NULL);
    free(t);
    return atomic_load(&pool_failed);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s BASE_URL COUNT PARALLEL\n", argv[0]);
        return 2;
    }
    base = argv[1];
    count = atol(argv[2]);
    int parallel = atoi(argv[3]);
    if (count < 1 || parallel < 1)
        return 2;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    printf("mode       requests/s  cpu_us/req  failed\n");
    double t0 = now_s(), c0 = cpu_s();
    long f = run_multi(parallel);
    double t1 = now_s(), c1 = cpu_s();
    printf("multi      %10.0f  %10.1f  %ld\n", (double)count / (t1 - t0),
           (c1 - c0) * 1e6 / (double)count, f);
    t0 = now_s();
    c0 = cpu_s();
    f = run_pool(parallel);
    t1 = now_s();
    c1 = cpu_s();
    printf("easy_pool  %10.0f  %10.1f  %ld\n", (double)count / (t1 - t0),
           (c1 - c0) * 1e6 / (double)count, f);
    curl_global_cleanup();
    return 0;
}
