/* The `csv` parse stage. */
#include "stages/stage_test.h"

extern const sl_stage_desc sl_stage_csv;

/* Feed lines as records of file `loc`, numbered from 1. */
static void feed(sl_harness *h, const char *loc, const char *const *lines, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int rc = sl_harness_process(h, st_record_at(lines[i], loc, (int64_t)i + 1));
        cr_assert_eq(rc, 0, "line %zu: %s", i + 1, sl_harness_last_error(h));
    }
}

Test(csv, header_names_the_fields_and_types_are_inferred)
{
    sl_harness *h = st_harness(&sl_stage_csv, NULL);
    const char *lines[] = {
        "id,name,score,zip,flag,empty",
        "1,Ann,22.5,01234,true,",
        "-7,\"Lee, Jr.\",1e3,0,false,\"\"",
    };
    feed(h, "users.csv", lines, 3);
    cr_assert_eq(sl_harness_emitted_count(h), 2);
    cr_expect_eq(sl_harness_dropped_count(h), 1, "the header line");
    cr_expect_str_eq(st_fields(h, 0),
                     "{\"id\":1,\"name\":\"Ann\",\"score\":22.5,\"zip\":\"01234\","
                     "\"flag\":\"true\",\"empty\":null}");
    cr_expect_str_eq(st_fields(h, 1),
                     "{\"id\":-7,\"name\":\"Lee, Jr.\",\"score\":1000.0,\"zip\":0,"
                     "\"flag\":\"false\",\"empty\":\"\"}");
    size_t len = 99;
    sl_record_payload(sl_harness_emitted(h, 0), &len);
    cr_expect_eq(len, 0, "payload cleared");
    sl_harness_destroy(h);
}

Test(csv, rfc4180_quoting)
{
    sl_harness *h = st_harness(&sl_stage_csv, "columns: [a, b, c]\nheader: false");
    const char *lines[] = {
        "\"a \"\"b\"\"\",\"x,y\",\"\"",
        "\"\"\"\",plain\"quote,\"7\"",
        ",,",
        "\"multi\r\n\",b,c\r",
    };
    feed(h, NULL, lines, 4);
    cr_assert_eq(sl_harness_emitted_count(h), 4);
    cr_expect_str_eq(st_fields(h, 0), "{\"a\":\"a \\\"b\\\"\",\"b\":\"x,y\",\"c\":\"\"}");
    cr_expect_str_eq(st_fields(h, 1), "{\"a\":\"\\\"\",\"b\":\"plain\\\"quote\",\"c\":\"7\"}",
                     "a quoted number stays a string");
    cr_expect_str_eq(st_fields(h, 2), "{\"a\":null,\"b\":null,\"c\":null}");
    cr_expect_str_eq(st_fields(h, 3), "{\"a\":\"multi\\r\\n\",\"b\":\"b\",\"c\":\"c\"}",
                     "the line's own CR goes, a quoted one stays");
    sl_harness_destroy(h);
}

Test(csv, number_inference_edges)
{
    sl_harness *h = st_harness(&sl_stage_csv, "header: false");
    const char *lines[] = {
        "0,-0,+5,007,0.5,.5,5.,1E-2,-1.5e+3,00.5,1e,e5,.,-,12a,0x1F,inf,nan",
        "9223372036854775807,9223372036854775808,-9223372036854775808, 1,1 ,1_000",
    };
    feed(h, NULL, lines, 2);
    cr_expect_str_eq(st_fields(h, 0),
                     "{\"column_1\":0,\"column_2\":0,\"column_3\":5,\"column_4\":\"007\","
                     "\"column_5\":0.5,\"column_6\":0.5,\"column_7\":5.0,\"column_8\":0.01,"
                     "\"column_9\":-1500.0,\"column_10\":\"00.5\",\"column_11\":\"1e\","
                     "\"column_12\":\"e5\",\"column_13\":\".\",\"column_14\":\"-\","
                     "\"column_15\":\"12a\",\"column_16\":\"0x1F\",\"column_17\":\"inf\","
                     "\"column_18\":\"nan\"}");
    cr_expect_str_eq(st_fields(h, 1),
                     "{\"column_1\":9223372036854775807,\"column_2\":\"9223372036854775808\","
                     "\"column_3\":-9223372036854775808,\"column_4\":\" 1\",\"column_5\":\"1 \","
                     "\"column_6\":\"1_000\"}");
    sl_harness_destroy(h);
}

Test(csv, infer_types_off_keeps_text)
{
    sl_harness *h = st_harness(&sl_stage_csv, "{header: false, columns: [a, b], infer_types: false}");
    const char *lines[] = {"1,"};
    feed(h, NULL, lines, 1);
    cr_expect_str_eq(st_fields(h, 0), "{\"a\":\"1\",\"b\":\"\"}");
    sl_harness_destroy(h);
}

Test(csv, other_delimiters)
{
    sl_harness *h = st_harness(&sl_stage_csv, "delimiter: ';'");
    const char *lines[] = {"a;b", "\"x;y\";2,5"};
    feed(h, NULL, lines, 2);
    cr_expect_str_eq(st_fields(h, 0), "{\"a\":\"x;y\",\"b\":\"2,5\"}");
    sl_harness_destroy(h);

    h = st_harness(&sl_stage_csv, "delimiter: \"\\t\"");
    const char *tsv[] = {"a\tb", "1\thello world"};
    feed(h, NULL, tsv, 2);
    cr_expect_str_eq(st_fields(h, 0), "{\"a\":1,\"b\":\"hello world\"}");
    sl_harness_destroy(h);
}

Test(csv, wrong_column_count_names_the_line)
{
    sl_harness *h = st_harness(&sl_stage_csv, NULL);
    const char *lines[] = {"a,b,c", "1,2,3"};
    feed(h, "data/in.csv", lines, 2);
    cr_assert_eq(sl_harness_process(h, st_record_at("1,2", "data/in.csv", 3)), SL_EPARSE);
    cr_expect_str_eq(sl_harness_last_error(h), "data/in.csv line 3: expected 3 columns, got 2");
    cr_assert_eq(sl_harness_process(h, st_record_at("1,2,3,\"4\"", "data/in.csv", 4)), SL_EPARSE);
    cr_expect_str_eq(sl_harness_last_error(h), "data/in.csv line 4: expected 3 columns, got 4");
    cr_expect_eq(sl_harness_failed_count(h), 2);
    sl_harness_destroy(h);
}

Test(csv, quoting_errors)
{
    sl_harness *h = st_harness(&sl_stage_csv, "header: false");
    cr_assert_eq(sl_harness_process(h, st_record_at("a,\"open", "in.csv", 9)), SL_EPARSE);
    cr_expect_str_eq(sl_harness_last_error(h),
                     "in.csv line 9: unterminated quoted field (quoted fields cannot span "
                     "lines) at column 3");
    cr_assert_eq(sl_harness_process(h, st_record_at("\"a\"b,c", "in.csv", 10)), SL_EPARSE);
    cr_expect_str_eq(sl_harness_last_error(h),
                     "in.csv line 10: unexpected character after a closing quote at column 4");
    sl_harness_destroy(h);
}

Test(csv, header_per_file)
{
    /* Records from two files, each starting with its own header. */
    sl_harness *h = st_harness(&sl_stage_csv, NULL);
    const char *one[] = {"a,b", "1,2"};
    const char *two[] = {"b,c,d", "3,4,5"};
    feed(h, "one.csv", one, 2);
    feed(h, "two.csv", two, 2);
    cr_assert_eq(sl_harness_emitted_count(h), 2);
    cr_expect_str_eq(st_fields(h, 0), "{\"a\":1,\"b\":2}");
    cr_expect_str_eq(st_fields(h, 1), "{\"b\":3,\"c\":4,\"d\":5}");
    cr_expect_eq(sl_harness_dropped_count(h), 2);
    sl_harness_destroy(h);
}

Test(csv, header_names_empty_and_duplicate)
{
    sl_harness *h = st_harness(&sl_stage_csv, NULL);
    const char *lines[] = {",name,", "1,x,2"};
    feed(h, NULL, lines, 2);
    cr_expect_str_eq(st_fields(h, 0), "{\"column_1\":1,\"name\":\"x\",\"column_3\":2}");
    sl_harness_destroy(h);

    h = st_harness(&sl_stage_csv, NULL);
    cr_assert_eq(sl_harness_process(h, st_record_at("id,name,id", "in.csv", 1)), SL_EPARSE);
    cr_expect_str_eq(sl_harness_last_error(h), "in.csv line 1: duplicate column name 'id'");
    sl_harness_destroy(h);
}

Test(csv, columns_with_header_rename)
{
    sl_harness *h = st_harness(&sl_stage_csv, "columns: [x, y]");
    const char *lines[] = {"a,b", "1,2"};
    feed(h, NULL, lines, 2);
    cr_assert_eq(sl_harness_emitted_count(h), 1);
    cr_expect_str_eq(st_fields(h, 0), "{\"x\":1,\"y\":2}");
    sl_harness_destroy(h);
}

Test(csv, bad_options)
{
    const char *bad[] = {"delimiter: ',,'", "delimiter: ''", "delimiter: '\"'",
                         "{header: false, columns: [a, a]}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sl_harness *h = NULL;
        cr_assert_eq(sl_harness_create(&sl_stage_csv, bad[i], &h), 0, "%s", bad[i]);
        cr_expect_eq(sl_harness_init(h), SL_ECONFIG, "%s", bad[i]);
        sl_harness_destroy(h);
    }
    sl_harness *h = NULL;
    cr_assert_eq(sl_harness_create(&sl_stage_csv, NULL, &h), 0);
    sl_harness_set_worker(h, 0, 2);
    cr_expect_eq(sl_harness_init(h), SL_ECONFIG, "header needs one worker");
    cr_expect_str_eq(sl_harness_last_error(h),
                     "header: true needs workers: 1 (or use header: false with columns)");
    sl_harness_destroy(h);
}

Test(csv, pipeline_sample_file)
{
    /* The example data: every line parses, quoted commas survive. */
    const char *src = getenv("SLUICE_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof(path), "%s/pipelines/data/users.csv", src != NULL ? src : "..");
    char *text = st_read(path, NULL);
    if (text == NULL)
        cr_skip_test("no %s", path);
    sl_harness *h = st_harness(&sl_stage_csv, NULL);
    int64_t seq = 0;
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        int rc = sl_harness_process(h, st_record_at(line, "users.csv", ++seq));
        cr_assert_eq(rc, 0, "%s", sl_harness_last_error(h));
    }
    cr_expect_eq(sl_harness_emitted_count(h), (size_t)seq - 1);
    sl_harness_destroy(h);
    free(text);
}

/* Numbers read without strtod (short decimals) come out bit for bit as
 * strtod reads them, and so do the long ones it still reads. */
Test(csv, doubles_match_strtod)
{
    sl_harness *h = st_harness(&sl_stage_csv, "header: false");
    static const char *const fixed[] = {
        "0.1", "-0.0", "0.000123", "123456789012345.6", "1234567890123456.7",
        "9007199254740993.0", "4.35", "1e22", "1e23", "1.5e-22", "1.5e-23",
        "2.2250738585072014e-308", "1.7976931348623157e308", "0.30000000000000004",
        ".0001e+10", "99999999999999.99",
    };
    char buf[64];
    char *lines[400];
    size_t n = 0;
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        lines[n++] = strdup(fixed[i]);
    uint64_t x = 88172645463325252u;   /* xorshift: the same strings every run */
    while (n < sizeof(lines) / sizeof(lines[0])) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int digits = (int)(x % 18) + 1, point = (int)((x >> 8) % (uint64_t)(digits + 1));
        int exp = (int)((x >> 16) % 61) - 30;
        size_t k = 0;
        uint64_t d = x >> 24;
        buf[k++] = '1' + (char)(d % 9);   /* no leading zero */
        for (int j = 1; j < digits; j++) {
            if (j == point)
                buf[k++] = '.';
            d = d * 6364136223846793005u + 1442695040888963407u;
            buf[k++] = (char)('0' + (d >> 60) % 10);
        }
        if (point == 0 || point >= digits)
            buf[k++] = '.';
        if ((x >> 40) % 2)
            k += (size_t)snprintf(buf + k, sizeof(buf) - k, "e%d", exp);
        buf[k] = '\0';
        lines[n++] = strdup(buf);
    }
    feed(h, NULL, (const char *const *)lines, n);
    cr_assert_eq(sl_harness_emitted_count(h), n);
    for (size_t i = 0; i < n; i++) {
        const sl_value *v =
            sl_object_get(sl_record_fields(sl_harness_emitted(h, i)), "column_1");
        cr_assert_eq(sl_value_type(v), SL_TYPE_DOUBLE, "%s", lines[i]);
        double want = strtod(lines[i], NULL), got = sl_value_get_double(v);
        cr_expect(memcmp(&want, &got, sizeof(got)) == 0, "%s: got %.17g, strtod %.17g",
                  lines[i], got, want);
        free(lines[i]);
    }
    sl_harness_destroy(h);
}
