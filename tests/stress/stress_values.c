/*
 * Copy-on-write stress: what a tee does with records, on real threads.
 *
 * Each round parses one event into a record and hands a copy to each of
 * BRANCHES threads (all copies share one fields object). At once, every
 * branch reads the shared fields (serialises them and checks the text),
 * half of the branches then write (which unshares), read their own change
 * and check the untouched fields, and every branch frees its copy — so the
 * last reference to the shared object is dropped by whichever thread comes
 * last. Under ThreadSanitizer this checks the reference counting and the
 * sharing test in sl_value_unshare; under ASan, that nothing leaks or is
 * freed twice.
 *
 * A second phase splits: one parsed array, each element handed to its own
 * thread as the fields of a new record (a reference, not a copy), while
 * the main thread drops the array. Whichever thread comes last frees each
 * element, so the release of a child still held by someone else is checked
 * too.
 *
 * Exit 0 on success; prints the failure and exits 1 otherwise.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/error.h"
#include "sluice/record.h"
#include "sluice/value.h"

#define BRANCHES 4
#define ROUNDS 300
#define READS 5

#define FAIL(...)                                                           \
    do {                                                                    \
        fprintf(stderr, "stress_values: FAIL: " __VA_ARGS__);               \
        fprintf(stderr, "\n");                                              \
        exit(1);                                                            \
    } while (0)

static const char event[] =
    "{\"id\":7,\"ts\":\"2026-01-01T00:00:00.027Z\",\"user\":\"u42\",\"status\":503,"
    "\"path\":\"/api/v1/items/17\",\"tags\":[\"a\",\"b\"],\"latency_ms\":12.5}";

struct branch {
    pthread_t thread;
    int index;
    sl_record *rec;              /* owned by the branch thread once started */
    pthread_barrier_t *start;
};

static void expect_original(const sl_record *r, const char *who)
{
    sl_buf b;
    sl_buf_init(&b);
    if (sl_json_dump(sl_record_fields(r), &b) != 0)
        FAIL("%s: dump failed", who);
    if (b.len != sizeof(event) - 1 || memcmp(b.data, event, b.len) != 0)
        FAIL("%s: fields changed under a reader: %s", who, b.data);
    sl_buf_fini(&b);
}

static void *branch_main(void *arg)
{
    struct branch *br = arg;
    pthread_barrier_wait(br->start);
    for (int i = 0; i < READS; i++)
        expect_original(br->rec, "reader");
    if (br->index % 2 == 0) {
        if (sl_record_set(br->rec, "branch", sl_value_int(br->index)) != 0)
            FAIL("set failed");
        sl_value *tags = sl_object_get_mut(sl_record_fields_mut(br->rec), "tags");
        if (tags == NULL || sl_array_append(tags, sl_value_int(br->index)) != 0)
            FAIL("nested write failed");
        if (sl_value_get_int(sl_record_get(br->rec, "branch")) != br->index)
            FAIL("own write not seen");
        if (sl_array_len(sl_record_get(br->rec, "tags")) != 3)
            FAIL("own nested write not seen");
        if (sl_value_get_int(sl_record_get(br->rec, "status")) != 503)
            FAIL("copy lost a field");
    } else {
        for (int i = 0; i < READS; i++)
            expect_original(br->rec, "late reader");
    }
    sl_record_free(br->rec);
    return NULL;
}

static const char batch[] =
    "[{\"n\":0,\"tags\":[\"x\"]},{\"n\":1,\"tags\":[\"x\"]},"
    "{\"n\":2,\"tags\":[\"x\"]},{\"n\":3,\"tags\":[\"x\"]}]";

struct part {
    pthread_t thread;
    int index;
    sl_record *rec;              /* fields: one element of the batch, shared */
    pthread_barrier_t *start;
};

static void *part_main(void *arg)
{
    struct part *p = arg;
    pthread_barrier_wait(p->start);
    for (int i = 0; i < READS; i++) {
        if (sl_value_get_int(sl_record_get(p->rec, "n")) != p->index)
            FAIL("split element changed");
        if (sl_array_len(sl_record_get(p->rec, "tags")) != 1)
            FAIL("split element lost its tags");
    }
    if (p->index % 2 == 0 && sl_record_set(p->rec, "mine", sl_value_bool(true)) != 0)
        FAIL("set on split record failed");
    sl_record_free(p->rec);
    return NULL;
}

static void split_round(void)
{
    sl_value *arr = NULL;
    if (sl_json_parse(batch, sizeof(batch) - 1, NULL, &arr, NULL) != 0 ||
        sl_array_len(arr) != BRANCHES)
        FAIL("split setup failed");
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, BRANCHES + 1);
    struct part parts[BRANCHES];
    for (int t = 0; t < BRANCHES; t++) {
        parts[t].index = t;
        parts[t].start = &start;
        parts[t].rec = sl_record_new();
        if (parts[t].rec == NULL ||
            sl_record_set_fields(parts[t].rec, sl_value_ref(sl_array_get(arr, (size_t)t))) != 0)
            FAIL("split record failed");
        if (pthread_create(&parts[t].thread, NULL, part_main, &parts[t]) != 0)
            FAIL("pthread_create failed");
    }
    pthread_barrier_wait(&start);
    sl_value_unref(arr);   /* races with the parts reading and freeing */
    for (int t = 0; t < BRANCHES; t++)
        pthread_join(parts[t].thread, NULL);
    pthread_barrier_destroy(&start);
}

int main(void)
{
    pthread_barrier_t start;
    for (int round = 0; round < ROUNDS; round++) {
        sl_record *orig = sl_record_new_payload(event, sizeof(event) - 1);
        sl_value *fields = NULL;
        if (orig == NULL || sl_json_parse(event, sizeof(event) - 1, NULL, &fields, NULL) != 0 ||
            sl_record_set_fields(orig, fields) != 0)
            FAIL("setup failed");
        if (sl_record_set_position(orig, "events", "/data/events.jsonl", 130, round + 1) != 0)
            FAIL("position failed");

        struct branch br[BRANCHES];
        pthread_barrier_init(&start, NULL, BRANCHES);
        for (int t = 0; t < BRANCHES; t++) {
            br[t].index = t;
            br[t].start = &start;
            br[t].rec = t == BRANCHES - 1 ? orig : sl_record_copy(orig);
            if (br[t].rec == NULL)
                FAIL("copy failed");
        }
        for (int t = 0; t < BRANCHES; t++)
            if (pthread_create(&br[t].thread, NULL, branch_main, &br[t]) != 0)
                FAIL("pthread_create failed");
        for (int t = 0; t < BRANCHES; t++)
            pthread_join(br[t].thread, NULL);
        pthread_barrier_destroy(&start);
    }
    for (int round = 0; round < ROUNDS; round++)
        split_round();
    return 0;
}
