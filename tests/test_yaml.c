/* tests/test_yaml.c — the YAML subset on a statistics.yaml in CALVIN's layout, compared with
 * what PyYAML reads from the same file (tests/reference/gen_npy.py writes the file and the
 * numbers PyYAML found into statistics_expected.npz), the same data in PyYAML's block style,
 * and the errors bad files must give (file:line and what).
 */
#include "data/calvin/npy.h"
#include "data/calvin/yaml.h"
#include "tests/test.h"

#include <stdlib.h>
#include <string.h>

#define REF "tests/reference/npy/"

static void check_against_pyyaml(const char *file) {
    char err[256];
    dv_yaml_doc *doc;
    CHECK_MSG(dv_yaml_load(file, &doc, err, sizeof err) == 0, "%s", err);
    if (!doc) return;
    dv_npz *z;
    CHECK_MSG(dv_npz_open(REF "statistics_expected.npz", &z, err, sizeof err) == 0, "%s", err);
    if (!z) {
        dv_yaml_free(doc);
        return;
    }
    CHECK(dv_npz_count(z) == 8);
    for (int k = 0; k < dv_npz_count(z); k++) {
        const char *key = dv_npz_key(z, k);
        dv_npy want;
        CHECK(dv_npz_get(z, key, &want, err, sizeof err) == 0);
        float got[64];
        int n = (int)want.count;
        CHECK_MSG(dv_yaml_floats(doc, key, got, n, err, sizeof err) == 0, "%s", err);
        for (int i = 0; i < n; i++)
            CHECK_MSG(got[i] == (float)dv_npy_get_f64(&want, i), "%s %s[%d]: %g vs %g", file, key, i, got[i],
                      dv_npy_get_f64(&want, i));
        dv_npy_free(&want);
    }
    dv_npz_close(z);

    const dv_yaml *r = dv_yaml_root(doc);
    const dv_yaml *nv = dv_yaml_find_item(r, "robot_obs", "_target_", "calvin_agent.utils.transforms.NormalizeVector");
    CHECK(nv && dv_yaml_get(nv, "mean") && dv_yaml_get(nv, "mean")->n == 15);
    nv = dv_yaml_find_item(r, "scene_obs", "_target_", "calvin_agent.utils.transforms.NormalizeVector");
    CHECK(nv && dv_yaml_get(nv, "std") && dv_yaml_get(nv, "std")->n == 24);
    CHECK(dv_yaml_find_item(r, "robot_obs", "_target_", "Other") == NULL);

    const dv_yaml *y;
    double v;
    CHECK((y = dv_yaml_path(r, "extra.flow_map.a")) && dv_yaml_number(y, &v) && v == 1);
    CHECK((y = dv_yaml_path(r, "extra.flow_map.c d")) && y->type == DV_YAML_SCALAR && strcmp(y->str, "e#f") == 0);
    CHECK((y = dv_yaml_path(r, "extra.empty")) && y->type == DV_YAML_NULL);
    CHECK((y = dv_yaml_path(r, "extra.nothing")) && y->type == DV_YAML_NULL);
    CHECK((y = dv_yaml_path(r, "extra.flag")) && y->type == DV_YAML_SCALAR && strcmp(y->str, "true") == 0 &&
          !dv_yaml_number(y, &v));
    CHECK_MSG((y = dv_yaml_path(r, "extra.text")) && strcmp(y->str, "tab\there \xc3\xa9") == 0, "%s: escapes", file);
    CHECK((y = dv_yaml_path(r, "extra.nested.0.1")) && dv_yaml_number(y, &v) && v == 2);
    CHECK((y = dv_yaml_path(r, "extra.nested.1.1.0")) && dv_yaml_number(y, &v) && v == 4);
    CHECK((y = dv_yaml_path(r, "extra.exp.3")) && dv_yaml_number(y, &v) && isinf(v) && v < 0);
    CHECK(dv_yaml_path(r, "extra.nested.2") == NULL && dv_yaml_path(r, "extra.nope") == NULL);
    dv_yaml_free(doc);
}

TEST(yaml_statistics_like_pyyaml) {
    check_against_pyyaml(REF "statistics.yaml");
    check_against_pyyaml(REF "statistics_block.yaml");
}

TEST(yaml_line_numbers_and_floats_errors) {
    char err[256];
    dv_yaml_doc *doc;
    CHECK_MSG(dv_yaml_load(REF "statistics.yaml", &doc, err, sizeof err) == 0, "%s", err);
    if (!doc) return;
    const dv_yaml *r = dv_yaml_root(doc);
    /* the std list starts on line 8, the 11th of its items is on line 10 */
    CHECK(dv_yaml_path(r, "robot_obs.0.std")->line == 8);
    CHECK(dv_yaml_path(r, "robot_obs.0.std.10")->line == 10);
    CHECK(dv_yaml_path(r, "scene_obs.0.mean.2")->line == 17);
    float f[24];
    CHECK(dv_yaml_floats(doc, "robot_obs.0.mean", f, 14, err, sizeof err) != 0);
    CHECK_MSG(strstr(err, "statistics.yaml:5: robot_obs.0.mean: 15 numbers, expected 14"), "%s", err);
    CHECK(dv_yaml_floats(doc, "robot_obs.0.variance", f, 15, err, sizeof err) != 0 && strstr(err, "not found"));
    CHECK(dv_yaml_floats(doc, "robot_obs.0._target_", f, 1, err, sizeof err) != 0 && strstr(err, "not a list"));
    CHECK(dv_yaml_floats(doc, "extra.nested.1", f, 2, err, sizeof err) != 0 && strstr(err, "item 1 is not a number"));
    dv_yaml_free(doc);
}

static void expect_error(const char *text, const char *want) {
    char err[256] = "";
    dv_yaml_doc *doc;
    int rc = dv_yaml_parse(text, strlen(text), "t.yaml", &doc, err, sizeof err);
    CHECK_MSG(rc != 0 && strstr(err, want), "'%s': got '%s', want '%s'", text, rc ? err : "success", want);
    if (rc == 0) dv_yaml_free(doc);
}

TEST(yaml_errors_name_file_and_line) {
    expect_error("a: 1\n\tb: 2\n", "t.yaml:2: tab in indentation");
    expect_error("a: 'x\n", "t.yaml:1: unterminated single-quoted");
    expect_error("a: [1, 2\nb: 3\n", "t.yaml:2: expected ',' or ']'");
    expect_error("a: [1, 2\n", "t.yaml:1: '[' is never closed");
    expect_error("a: 1\n  b: 2\n", "t.yaml:2: unexpected indentation");
    expect_error("a: 1\nb: 2\na: 3\n", "t.yaml:3: duplicate key 'a'");
    expect_error("a: &x 1\n", "t.yaml:1: '&'");
    expect_error("a: |\n  text\n", "'|'");
    expect_error("a:\n  - 1\n  b: 2\n", "t.yaml:3: unexpected indentation");
    expect_error("a: 1\nb\n", "t.yaml:2: expected 'key: value'");
    expect_error("a: 1\n- 2\n", "t.yaml:2: a list item where a key was expected");
    expect_error("a: [1, , 2]\n", "empty item");
    expect_error("a: 1\n---\nb: 2\n", "t.yaml:2: several documents");
    expect_error("a: \"\\q\"\n", "unsupported escape");
    expect_error("a: [1] x\n", "unexpected text");
    /* and what is fine */
    dv_yaml_doc *doc;
    char err[256];
    const char *ok = "# only a comment\n\n";
    CHECK(dv_yaml_parse(ok, strlen(ok), "t", &doc, err, sizeof err) == 0 && dv_yaml_root(doc)->type == DV_YAML_NULL);
    dv_yaml_free(doc);
    const char *s = "key: value#not a comment # a comment\nurl: http://x.y/z # comment\nq: 'it''s'\n";
    CHECK_MSG(dv_yaml_parse(s, strlen(s), "t", &doc, err, sizeof err) == 0, "%s", err);
    if (doc) {
        const dv_yaml *r = dv_yaml_root(doc);
        CHECK(strcmp(dv_yaml_get(r, "key")->str, "value#not a comment") == 0);
        CHECK(strcmp(dv_yaml_get(r, "url")->str, "http://x.y/z") == 0);
        CHECK(strcmp(dv_yaml_get(r, "q")->str, "it's") == 0);
        dv_yaml_free(doc);
    }
    CHECK(dv_yaml_load("tests/reference/npy/missing.yaml", &doc, err, sizeof err) != 0 && strstr(err, "missing.yaml"));
}
