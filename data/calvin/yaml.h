/* data/calvin/yaml.h — a tiny YAML subset, enough for CALVIN's statistics.yaml and similar
 * small configuration files.
 *
 * CALVIN's dataset folders hold a statistics.yaml written by OmegaConf (or by hand) like
 *   robot_obs:
 *     - _target_: calvin_agent.utils.transforms.NormalizeVector
 *       mean: [0.039233, -0.118554, 0.507826, ...]     # 15 numbers
 *       std: [0.150769, 0.1104, ...]
 *   scene_obs:
 *     - _target_: calvin_agent.utils.transforms.NormalizeVector
 *       mean: [...]                                     # 24 numbers
 *       std: [...]
 *   act_min_bound: [-0.432188, -0.545456, 0.293439, -3.141593, -0.811348, -3.141573, -1.0]
 *   act_max_bound: [0.42977, 0.139396, 0.796262, 3.141592, 0.638583, 3.141551, 1.0]
 * (lists may also be written in block style, one "- x" per line, or as flow lists that
 * run over several lines).
 *
 * Supported: block mappings and sequences by indentation (spaces), "- key: value" items,
 * flow sequences [...] and flow mappings {...} (nested, over several lines, trailing
 * commas), plain / 'single' / "double" quoted scalars, comments, a leading "---".
 * Not supported (an error naming file:line): tabs in indentation, block scalars (| >),
 * anchors and aliases (& *), tags (!), several documents, complex keys (?).
 *
 * Every node remembers its line, so that a caller's error can say file:line.
 */
#ifndef DV_DATA_CALVIN_YAML_H
#define DV_DATA_CALVIN_YAML_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { DV_YAML_NULL, DV_YAML_SCALAR, DV_YAML_SEQ, DV_YAML_MAP } dv_yaml_type;

typedef struct dv_yaml dv_yaml;
struct dv_yaml {
    dv_yaml_type type;
    int line;            /* 1-based line of the node in its file */
    const char *str;     /* SCALAR: the text (quotes removed, escapes resolved) */
    bool quoted;         /* SCALAR: was quoted (then never a number, bool or null) */
    int n;               /* SEQ: items; MAP: entries */
    dv_yaml **items;     /* SEQ items, MAP values */
    const char **keys;   /* MAP keys, in file order */
};

typedef struct dv_yaml_doc dv_yaml_doc;

int dv_yaml_load(const char *path, dv_yaml_doc **out, char *err, size_t errlen);
/* text of len bytes (need not be NUL-terminated); `what` names it in errors */
int dv_yaml_parse(const char *text, size_t len, const char *what, dv_yaml_doc **out, char *err, size_t errlen);
void dv_yaml_free(dv_yaml_doc *doc);
const dv_yaml *dv_yaml_root(const dv_yaml_doc *doc);
const char *dv_yaml_name(const dv_yaml_doc *doc); /* the path or `what` it was read from */

/* lookups: NULL when absent. dv_yaml_path takes "robot_obs.0.mean": map keys and, for
 * sequences, decimal indices */
const dv_yaml *dv_yaml_get(const dv_yaml *map, const char *key);
const dv_yaml *dv_yaml_path(const dv_yaml *root, const char *dotted);

/* a plain scalar as a number (ints, decimals, exponents, .inf/.nan); false otherwise */
bool dv_yaml_number(const dv_yaml *node, double *v);

/* the sequence of exactly n numbers at `dotted` below the root into dst: 0, or -1 with
 * "file:line: <dotted>: ..." (missing key, not a list, wrong length, not a number) */
int dv_yaml_floats(const dv_yaml_doc *doc, const char *dotted, float *dst, int n, char *err, size_t errlen);

/* the first item of the sequence at `dotted` that is a mapping whose `key` is `value`
 * (CALVIN: the NormalizeVector entry of robot_obs), or NULL */
const dv_yaml *dv_yaml_find_item(const dv_yaml *root, const char *dotted, const char *key, const char *value);

#endif
