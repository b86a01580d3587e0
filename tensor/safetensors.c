/* tensor/safetensors.c — safetensors reader (mmap, strict JSON header parser, shards) and
 * atomic writer. The format and the guarantees are described in tensor/safetensors.h.
 *
 * Reading a file, step by step:
 *   1. map it (private, copy-on-write) and read the u64 header length N; check 8 + N fits;
 *   2. parse the header with a pull parser that knows the schema (parse_header): it never
 *      builds a tree, so a hostile 100 MB header costs no more memory than the names in it;
 *   3. check each tensor (dtype known, dims >= 0, numel * size fits in int64 and equals
 *      end - begin) and that the tensors tile the data buffer exactly (check_layout);
 *   4. hand out views with dv_wrap; every view holds a reference on the mapping (st_map).
 * Every failure is a message "<file>: <where>: <what was expected>" and -1; nothing aborts.
 *
 * What it deliberately does not do: repair or guess (a header with one bad byte is refused),
 * accept JSON extensions (comments, NaN, trailing commas, single quotes), or read big endian.
 */
#define _GNU_SOURCE
#include "tensor/safetensors.h"
#include "kernels/copy.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- errors --------------------------------------------------------------------------------- */

/* ---- dtypes --------------------------------------------------------------------------------- */

/* every fixed-width dtype of the format; dv = -1 where dualvla has no such type */
static const struct { const char *name; int size; int dv; } k_dtypes[] = {
    {"F32", 4, DV_F32},   {"F64", 8, DV_F64},   {"F16", 2, DV_F16},      {"BF16", 2, DV_BF16},
    {"I32", 4, DV_I32},   {"I64", 8, DV_I64},   {"U8", 1, DV_U8},        {"BOOL", 1, DV_BOOL},
    {"I8", 1, -1},        {"I16", 2, -1},       {"U16", 2, -1},          {"U32", 4, -1},
    {"U64", 8, -1},       {"F8_E4M3", 1, -1},   {"F8_E5M2", 1, -1},      {"F8_E8M0", 1, -1},
    {"C64", 8, -1},
};
#define N_DTYPES ((int)(sizeof k_dtypes / sizeof k_dtypes[0]))

const char *dv_st_dtype_name(dv_dtype dt) {
    for (int k = 0; k < N_DTYPES; k++)
        if (k_dtypes[k].dv == (int)dt) return k_dtypes[k].name;
    return NULL;
}

static int dtype_index(const char *name) {
    for (int k = 0; k < N_DTYPES; k++)
        if (!strcmp(k_dtypes[k].name, name)) return k;
    return -1;
}

/* ---- a small string -> int hash table (names, duplicate keys) ---------------------------- */

typedef struct { const char *key; int val; } st_slot;
typedef struct { st_slot *slot; size_t cap, n; } st_table;

static uint64_t hash_str(const char *s) { /* FNV-1a */
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int table_get(const st_table *t, const char *key) {
    if (!t->cap) return -1;
    for (size_t i = hash_str(key) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        if (!t->slot[i].key) return -1;
        if (!strcmp(t->slot[i].key, key)) return t->slot[i].val;
    }
}

/* inserts key -> val unless key is present; returns the existing value, or -1 when inserted.
 * key must outlive the table. */
static int table_put(st_table *t, const char *key, int val) {
    int old = table_get(t, key);
    if (old >= 0) return old;
    if (2 * (t->n + 1) > t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 16;
        st_slot *s = calloc(cap, sizeof *s);
        if (!s) dv_panic("safetensors: out of memory");
        for (size_t i = 0; i < t->cap; i++) {
            if (!t->slot[i].key) continue;
            size_t j = hash_str(t->slot[i].key) & (cap - 1);
            while (s[j].key) j = (j + 1) & (cap - 1);
            s[j] = t->slot[i];
        }
        free(t->slot);
        t->slot = s;
        t->cap = cap;
    }
    size_t i = hash_str(key) & (t->cap - 1);
    while (t->slot[i].key) i = (i + 1) & (t->cap - 1);
    t->slot[i] = (st_slot){key, val};
    t->n++;
    return -1;
}

static void table_free(st_table *t) { free(t->slot); *t = (st_table){0}; }

/* ---- UTF-8 ---------------------------------------------------------------------------------- */

/* length of the valid UTF-8 sequence at p (at most avail bytes), or 0 when invalid */
static int utf8_len(const unsigned char *p, size_t avail) {
    unsigned c = p[0];
    int n;
    unsigned lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (c < 0x80) return 1;
    else if (c >= 0xc2 && c <= 0xdf) n = 2;
    else if (c >= 0xe0 && c <= 0xef) { n = 3; if (c == 0xe0) lo = 0xa0; if (c == 0xed) hi = 0x9f; }
    else if (c >= 0xf0 && c <= 0xf4) { n = 4; if (c == 0xf0) lo = 0x90; if (c == 0xf4) hi = 0x8f; }
    else return 0;
    if ((size_t)n > avail) return 0;
    if (p[1] < lo || p[1] > hi) return 0;
    for (int k = 2; k < n; k++)
        if ((p[k] & 0xc0) != 0x80) return 0;
    return n;
}

static bool utf8_valid(const char *s) {
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        int k = utf8_len((const unsigned char *)s + i, n - i);
        if (!k) return false;
        i += (size_t)k;
    }
    return true;
}

/* ---- the JSON pull parser --------------------------------------------------------------------
 * Strict RFC 8259: no comments, no trailing commas, no leading zeros, strings valid UTF-8 with no
 * raw control characters, escapes checked (surrogates paired). \u0000 is refused (names are C
 * strings). Integers must fit int64. The caller walks the structure it expects with
 * jp_member / jp_element and the typed readers; anything else is skipped with jp_skip, which
 * still checks syntax and bounds the nesting depth. */

typedef struct {
    const char *s;     /* the text (not NUL-terminated) */
    size_t n, i;       /* length, cursor */
    int64_t base;      /* file offset of s[0], for messages */
    const char *file;
    char *err;
    size_t errlen;
} jp;

__attribute__((format(printf, 2, 3))) static bool jp_fail(jp *j, const char *fmt, ...) {
    if (j->err && j->errlen) {
        int k = j->base ? snprintf(j->err, j->errlen, "%s: header byte %zu (file offset %lld): ", j->file, j->i,
                                   (long long)(j->base + (int64_t)j->i))
                         : snprintf(j->err, j->errlen, "%s: byte %zu: ", j->file, j->i);
        if (k >= 0 && (size_t)k < j->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(j->err + k, j->errlen - (size_t)k, fmt, ap);
            va_end(ap);
        }
    }
    return false;
}

static int jp_peek(jp *j) {
    while (j->i < j->n && (j->s[j->i] == ' ' || j->s[j->i] == '\t' || j->s[j->i] == '\n' || j->s[j->i] == '\r'))
        j->i++;
    return j->i < j->n ? (unsigned char)j->s[j->i] : -1;
}

/* "'x'" or "byte 0x07" or "the end of the header" (for messages) */
static const char *jp_what(jp *j, char buf[32]) {
    int c = jp_peek(j);
    if (c < 0) return "the end of the header";
    if (c >= 0x20 && c < 0x7f) snprintf(buf, 32, "'%c'", c);
    else snprintf(buf, 32, "byte 0x%02x", c);
    return buf;
}

static bool jp_eat(jp *j, char c, const char *where) {
    char b[32];
    if (jp_peek(j) != c) return jp_fail(j, "expected '%c' %s, found %s", c, where, jp_what(j, b));
    j->i++;
    return true;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool jp_hex4(jp *j, unsigned *out) {
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        int h = j->i < j->n ? hexval((unsigned char)j->s[j->i]) : -1;
        if (h < 0) return jp_fail(j, "expected 4 hex digits after \\u");
        v = v * 16 + (unsigned)h;
        j->i++;
    }
    *out = v;
    return true;
}

/* a string at the cursor; *out gets a malloc'd decoded copy (out may be NULL to just check it) */
static bool jp_string(jp *j, char **out) {
    if (out) *out = NULL;
    if (jp_peek(j) != '"') {
        char b[32];
        return jp_fail(j, "expected a string, found %s", jp_what(j, b));
    }
    size_t start = ++j->i, end = start;
    /* find the closing quote (skipping escaped characters) to size the buffer */
    while (end < j->n && j->s[end] != '"') end += j->s[end] == '\\' ? 2 : 1;
    if (end >= j->n) return jp_fail(j, "unterminated string");
    char *buf = out ? malloc(end - start + 1) : NULL;
    if (out && !buf) dv_panic("safetensors: out of memory");
    size_t o = 0;
    while (j->s[j->i] != '"') {
        unsigned char c = (unsigned char)j->s[j->i];
        if (c < 0x20) { free(buf); return jp_fail(j, "raw control character 0x%02x in a string (escape it)", c); }
        if (c != '\\') {
            int k = utf8_len((const unsigned char *)j->s + j->i, j->n - j->i);
            if (!k) { free(buf); return jp_fail(j, "invalid UTF-8 in a string"); }
            if (buf) memcpy(buf + o, j->s + j->i, (size_t)k);
            o += (size_t)k;
            j->i += (size_t)k;
            continue;
        }
        j->i++; /* the backslash; end < n guarantees one more byte exists */
        char e = j->s[j->i++];
        unsigned cp;
        switch (e) {
        case '"': cp = '"'; break;
        case '\\': cp = '\\'; break;
        case '/': cp = '/'; break;
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u':
            if (!jp_hex4(j, &cp)) { free(buf); return false; }
            if (cp >= 0xdc00 && cp <= 0xdfff) { free(buf); return jp_fail(j, "unpaired low surrogate \\u%04x", cp); }
            if (cp >= 0xd800 && cp <= 0xdbff) {
                unsigned lo;
                if (j->i + 1 >= j->n || j->s[j->i] != '\\' || j->s[j->i + 1] != 'u') {
                    free(buf);
                    return jp_fail(j, "high surrogate \\u%04x not followed by a low one", cp);
                }
                j->i += 2;
                if (!jp_hex4(j, &lo)) { free(buf); return false; }
                if (lo < 0xdc00 || lo > 0xdfff) {
                    free(buf);
                    return jp_fail(j, "high surrogate \\u%04x followed by \\u%04x, not a low surrogate", cp, lo);
                }
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            if (cp == 0) { free(buf); return jp_fail(j, "\\u0000 is not allowed in a string"); }
            break;
        default:
            j->i--;
            free(buf);
            return jp_fail(j, "invalid escape '\\%c'", e >= 0x20 && e < 0x7f ? e : '?');
        }
        if (!buf) continue;
        /* encode cp as UTF-8; the escape took >= 2 input bytes per output byte group, so o stays
         * within the buffer (\uXXXX: 6 bytes in, <= 3 out; a pair: 12 in, 4 out) */
        if (cp < 0x80) buf[o++] = (char)cp;
        else if (cp < 0x800) { buf[o++] = (char)(0xc0 | cp >> 6); buf[o++] = (char)(0x80 | (cp & 0x3f)); }
        else if (cp < 0x10000) {
            buf[o++] = (char)(0xe0 | cp >> 12); buf[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
            buf[o++] = (char)(0x80 | (cp & 0x3f));
        } else {
            buf[o++] = (char)(0xf0 | cp >> 18); buf[o++] = (char)(0x80 | ((cp >> 12) & 0x3f));
            buf[o++] = (char)(0x80 | ((cp >> 6) & 0x3f)); buf[o++] = (char)(0x80 | (cp & 0x3f));
        }
    }
    j->i++; /* closing quote */
    if (buf) { buf[o] = 0; *out = buf; }
    return true;
}

static bool is_digit(int c) { return c >= '0' && c <= '9'; }

/* an integer (JSON number without fraction or exponent) that fits int64 */
static bool jp_int(jp *j, int64_t *out) {
    char b[32];
    int c = jp_peek(j);
    size_t start = j->i;
    bool neg = c == '-';
    if (neg) j->i++;
    if (j->i >= j->n || !is_digit((unsigned char)j->s[j->i])) {
        j->i = start;
        return jp_fail(j, "expected an integer, found %s", jp_what(j, b));
    }
    if (j->s[j->i] == '0' && j->i + 1 < j->n && is_digit((unsigned char)j->s[j->i + 1]))
        return jp_fail(j, "leading zeros are not allowed in a JSON number");
    uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    while (j->i < j->n && is_digit((unsigned char)j->s[j->i])) {
        uint64_t d = (uint64_t)(j->s[j->i] - '0');
        if (v > (lim - d) / 10) { j->i = start; return jp_fail(j, "integer out of the int64 range"); }
        v = v * 10 + d;
        j->i++;
    }
    if (j->i < j->n && (j->s[j->i] == '.' || j->s[j->i] == 'e' || j->s[j->i] == 'E')) {
        j->i = start;
        return jp_fail(j, "expected an integer, found a number with a fraction or exponent");
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

/* the grammar of any JSON number, value unused */
static bool jp_number(jp *j) {
    if (j->i < j->n && j->s[j->i] == '-') j->i++;
    if (j->i >= j->n || !is_digit((unsigned char)j->s[j->i])) return jp_fail(j, "expected a digit");
    if (j->s[j->i] == '0') j->i++;
    else while (j->i < j->n && is_digit((unsigned char)j->s[j->i])) j->i++;
    if (j->i < j->n && j->s[j->i] == '.') {
        j->i++;
        if (j->i >= j->n || !is_digit((unsigned char)j->s[j->i])) return jp_fail(j, "expected a digit after '.'");
        while (j->i < j->n && is_digit((unsigned char)j->s[j->i])) j->i++;
    }
    if (j->i < j->n && (j->s[j->i] == 'e' || j->s[j->i] == 'E')) {
        j->i++;
        if (j->i < j->n && (j->s[j->i] == '+' || j->s[j->i] == '-')) j->i++;
        if (j->i >= j->n || !is_digit((unsigned char)j->s[j->i])) return jp_fail(j, "expected a digit in the exponent");
        while (j->i < j->n && is_digit((unsigned char)j->s[j->i])) j->i++;
    }
    return true;
}

/* Object members. After '{' set first = true and call until it returns 0 ('}' consumed).
 * 1: a member follows; *key is its malloc'd name and the ':' is consumed. -1: error. */
static int jp_member(jp *j, bool *first, char **key) {
    char b[32];
    *key = NULL;
    int c = jp_peek(j);
    if (c == '}') { j->i++; return 0; }
    if (!*first) {
        if (c != ',') return jp_fail(j, "expected ',' or '}' in an object, found %s", jp_what(j, b)), -1;
        j->i++;
    }
    *first = false;
    if (jp_peek(j) != '"') return jp_fail(j, "expected a quoted key, found %s", jp_what(j, b)), -1;
    if (!jp_string(j, key)) return -1;
    if (!jp_eat(j, ':', "after an object key")) { free(*key); *key = NULL; return -1; }
    return 1;
}

/* Array elements, the same way: after '[' set first = true; 1: an element follows. */
static int jp_element(jp *j, bool *first) {
    char b[32];
    int c = jp_peek(j);
    if (c == ']') { j->i++; return 0; }
    if (!*first) {
        if (c != ',') return jp_fail(j, "expected ',' or ']' in an array, found %s", jp_what(j, b)), -1;
        j->i++;
    }
    *first = false;
    return 1;
}

/* any value, checked and dropped */
static bool jp_skip(jp *j, int depth) {
    char b[32];
    int c = jp_peek(j);
    bool first = true;
    int r;
    switch (c) {
    case '{':
        if (depth >= DV_ST_MAX_DEPTH) return jp_fail(j, "JSON nested deeper than %d", DV_ST_MAX_DEPTH);
        j->i++;
        char *key;
        while ((r = jp_member(j, &first, &key)) == 1) {
            free(key);
            if (!jp_skip(j, depth + 1)) return false;
        }
        return r == 0;
    case '[':
        if (depth >= DV_ST_MAX_DEPTH) return jp_fail(j, "JSON nested deeper than %d", DV_ST_MAX_DEPTH);
        j->i++;
        while ((r = jp_element(j, &first)) == 1)
            if (!jp_skip(j, depth + 1)) return false;
        return r == 0;
    case '"': return jp_string(j, NULL);
    case 't': case 'f': case 'n': {
        const char *lit = c == 't' ? "true" : c == 'f' ? "false" : "null";
        size_t L = strlen(lit);
        if (j->n - j->i < L || memcmp(j->s + j->i, lit, L))
            return jp_fail(j, "expected a JSON value, found %s", jp_what(j, b));
        j->i += L;
        return true;
    }
    default:
        if (c == '-' || is_digit(c)) return jp_number(j);
        return jp_fail(j, "expected a JSON value, found %s", jp_what(j, b));
    }
}

/* the end of the text: only whitespace may follow the top-level value */
static bool jp_end(jp *j) {
    char b[32];
    if (jp_peek(j) >= 0) return jp_fail(j, "expected the end of the JSON text, found %s", jp_what(j, b));
    return true;
}

/* an object of string -> string: appends to kv[0..n) (strings malloc'd), refusing duplicate keys */
static bool jp_string_map(jp *j, const char *what, dv_st_kv **kv, int *n) {
    char b[32];
    if (jp_peek(j) != '{') return jp_fail(j, "%s, found %s", what, jp_what(j, b));
    j->i++;
    bool first = true;
    st_table seen = {0};
    int cap = *n, r;
    char *key;
    for (int k = 0; k < *n; k++) table_put(&seen, (*kv)[k].key, k);
    while ((r = jp_member(j, &first, &key)) == 1) {
        size_t at = j->i;
        char *val;
        if (jp_peek(j) != '"') {
            jp_fail(j, "%s: the value of \"%s\" is %s, expected a string", what, key, jp_what(j, b));
            free(key);
            r = -1;
            break;
        }
        if (!jp_string(j, &val)) {
            free(key);
            r = -1;
            break;
        }
        if (table_get(&seen, key) >= 0) {
            j->i = at;
            jp_fail(j, "%s: duplicate key \"%s\"", what, key);
            free(key); free(val);
            r = -1;
            break;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 8;
            *kv = realloc(*kv, (size_t)cap * sizeof **kv);
            if (!*kv) dv_panic("safetensors: out of memory");
        }
        (*kv)[*n] = (dv_st_kv){key, val};
        table_put(&seen, key, (*n)++);
    }
    table_free(&seen);
    return r == 0;
}

/* ---- the mapping, shared by the file and every tensor view of it ---------------------------- */

typedef struct { void *base; size_t len; int refs; } st_map;

static void map_drop(st_map *m) {
    if (__atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) > 0) return;
    munmap(m->base, m->len);
    free(m);
}
static void map_free_fn(void *data, int64_t nbytes, void *ctx) { map_drop(ctx); }

/* ---- one file -------------------------------------------------------------------------------- */

typedef struct {
    char *path;
    st_map *map;
    int64_t data_start, data_len;  /* the buffer: file bytes [data_start, data_start + data_len) */
    dv_st_info *info;              /* names malloc'd here */
    int n;
    dv_st_kv *meta;
    int nmeta;
    st_table names;                /* name -> index into info */
} st_shard;

static void shard_free(st_shard *s) {
    for (int i = 0; i < s->n; i++) free((char *)s->info[i].name);
    for (int i = 0; i < s->nmeta; i++) { free((char *)s->meta[i].key); free((char *)s->meta[i].value); }
    free(s->info);
    free(s->meta);
    table_free(&s->names);
    if (s->map) map_drop(s->map);
    free(s->path);
    *s = (st_shard){0};
}

/* one tensor's {"dtype": .., "shape": [..], "data_offsets": [b, e]} (its name already read) */
static bool parse_tensor_info(jp *j, const char *name, dv_st_info *t) {
    char b[32];
    if (jp_peek(j) != '{')
        return jp_fail(j, "tensor '%s': expected an object {\"dtype\", \"shape\", \"data_offsets\"}, found %s", name, jp_what(j, b));
    j->i++;
    bool first = true, have_dtype = false, have_shape = false, have_off = false;
    int r;
    char *key;
    while ((r = jp_member(j, &first, &key)) == 1) {
        size_t at = j->i;
        bool ok = true;
        if ((!strcmp(key, "dtype") && have_dtype) || (!strcmp(key, "shape") && have_shape) ||
            (!strcmp(key, "data_offsets") && have_off)) {
            jp_fail(j, "tensor '%s': duplicate key \"%s\"", name, key);
            free(key);
            return false;
        }
        if (!strcmp(key, "dtype")) {
            char *dt;
            ok = jp_string(j, &dt);
            if (ok) {
                int k = dtype_index(dt);
                if (k < 0) {
                    j->i = at;
                    ok = jp_fail(j, "tensor '%s': unknown dtype \"%.40s\" (expected F32, F64, F16, BF16, I32, I64, U8, BOOL, "
                                    "I8, I16, U16, U32, U64, F8_E4M3, F8_E5M2, F8_E8M0 or C64)", name, dt);
                } else {
                    t->dtype_name = k_dtypes[k].name;
                    t->dtype = k_dtypes[k].dv;
                }
                free(dt);
            }
            have_dtype = true;
        } else if (!strcmp(key, "shape")) {
            ok = jp_eat(j, '[', "to open a shape");
            bool f2 = true;
            t->ndim = 0;
            while (ok && (r = jp_element(j, &f2)) == 1) {
                if (t->ndim == DV_MAX_DIMS) {
                    ok = jp_fail(j, "tensor '%s': more than %d dims", name, DV_MAX_DIMS);
                    break;
                }
                size_t dat = j->i;
                ok = jp_int(j, &t->shape[t->ndim]);
                if (ok && t->shape[t->ndim] < 0) {
                    j->i = dat;
                    ok = jp_fail(j, "tensor '%s': dim %d is %lld, expected a size >= 0", name, t->ndim,
                                 (long long)t->shape[t->ndim]);
                }
                t->ndim++;
            }
            if (ok && r < 0) ok = false;
            have_shape = true;
        } else if (!strcmp(key, "data_offsets")) {
            int64_t v[2];
            ok = jp_eat(j, '[', "to open data_offsets");
            bool f2 = true;
            int cnt = 0;
            while (ok && (r = jp_element(j, &f2)) == 1) {
                if (cnt == 2) {
                    ok = jp_fail(j, "tensor '%s': data_offsets must be [begin, end], found a third entry", name);
                    break;
                }
                ok = jp_int(j, &v[cnt++]);
            }
            if (ok && r < 0) ok = false;
            if (ok && cnt != 2) ok = jp_fail(j, "tensor '%s': data_offsets must be [begin, end], found %d entries", name, cnt);
            if (ok && (v[0] < 0 || v[1] < v[0])) {
                j->i = at;
                ok = jp_fail(j, "tensor '%s': data_offsets [%lld, %lld]: expected 0 <= begin <= end", name,
                             (long long)v[0], (long long)v[1]);
            }
            if (ok) { t->begin = v[0]; t->end = v[1]; }
            have_off = true;
        } else {
            j->i = at;
            ok = jp_fail(j, "tensor '%s': unexpected key \"%.40s\" (expected dtype, shape, data_offsets)", name, key);
        }
        free(key);
        if (!ok) return false;
    }
    if (r < 0) return false;
    if (!have_dtype || !have_shape || !have_off)
        return jp_fail(j, "tensor '%s': missing \"%s\"", name,
                       !have_dtype ? "dtype" : !have_shape ? "shape" : "data_offsets");
    return true;
}

/* the whole header of one file into s->info / s->meta */
static bool parse_header(jp *j, st_shard *s) {
    char b[32];
    if (jp_peek(j) != '{') return jp_fail(j, "the header must be a JSON object, found %s", jp_what(j, b));
    j->i++;
    bool first = true, have_meta = false;
    int r, cap = 0;
    char *key;
    while ((r = jp_member(j, &first, &key)) == 1) {
        size_t at = j->i;
        if (!strcmp(key, "__metadata__")) {
            free(key);
            if (have_meta) { j->i = at; return jp_fail(j, "duplicate \"__metadata__\""); }
            have_meta = true;
            if (!jp_string_map(j, "\"__metadata__\" must be an object of strings", &s->meta, &s->nmeta)) return false;
            continue;
        }
        if (!*key) { free(key); return jp_fail(j, "empty tensor name"); }
        if (table_get(&s->names, key) >= 0) {
            j->i = at;
            jp_fail(j, "duplicate tensor name '%s'", key);
            free(key);
            return false;
        }
        if (s->n == cap) {
            cap = cap ? 2 * cap : 16;
            s->info = realloc(s->info, (size_t)cap * sizeof *s->info);
            if (!s->info) dv_panic("safetensors: out of memory");
        }
        dv_st_info *t = &s->info[s->n];
        *t = (dv_st_info){.name = key, .file = s->path};
        s->n++; /* owned from here on, freed with the shard */
        table_put(&s->names, key, s->n - 1);
        if (!parse_tensor_info(j, key, t)) return false;
    }
    if (r < 0) return false;
    return jp_end(j);
}

static const char *info_shape_str(const dv_st_info *t, char *sh, size_t n) {
    size_t o = (size_t)snprintf(sh, n, "(");
    for (int d = 0; d < t->ndim && o < n; d++)
        o += (size_t)snprintf(sh + o, n - o, d ? ", %lld" : "%lld", (long long)t->shape[d]);
    if (o < n) snprintf(sh + o, n - o, ")");
    return sh;
}

static int cmp_range(const void *a, const void *b) {
    const dv_st_info *x = *(dv_st_info *const *)a, *y = *(dv_st_info *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* sizes agree with shapes, and the tensors tile [0, data_len) exactly */
static int check_layout(st_shard *s, char *err, size_t errlen) {
    for (int i = 0; i < s->n; i++) {
        dv_st_info *t = &s->info[i];
        char sh[200];
        int64_t nbytes = k_dtypes[dtype_index(t->dtype_name)].size;
        for (int d = 0; d < t->ndim; d++)
            if (__builtin_mul_overflow(nbytes, t->shape[d], &nbytes))
                return dv_errf(err, errlen, "%s: tensor '%s': shape %s of %s is more bytes than int64 can count", s->path,
                               t->name, info_shape_str(t, sh, sizeof sh), t->dtype_name);
        if (t->end > s->data_len)
            return dv_errf(err, errlen, "%s: tensor '%s': data_offsets [%lld, %lld] run past the data buffer (%lld bytes)",
                           s->path, t->name, (long long)t->begin, (long long)t->end, (long long)s->data_len);
        if (t->end - t->begin != nbytes)
            return dv_errf(err, errlen, "%s: tensor '%s': data_offsets [%lld, %lld] hold %lld bytes but dtype %s shape %s needs %lld",
                           s->path, t->name, (long long)t->begin, (long long)t->end, (long long)(t->end - t->begin),
                           t->dtype_name, info_shape_str(t, sh, sizeof sh), (long long)nbytes);
        t->file_offset = s->data_start + t->begin;
    }
    dv_st_info **ord = malloc(((size_t)s->n + 1) * sizeof *ord);
    if (!ord) dv_panic("safetensors: out of memory");
    for (int i = 0; i < s->n; i++) ord[i] = &s->info[i];
    qsort(ord, (size_t)s->n, sizeof *ord, cmp_range);
    int64_t pos = 0;
    const char *prev = NULL;
    int rc = 0;
    for (int i = 0; i < s->n && !rc; i++) {
        if (ord[i]->begin < pos)
            rc = dv_errf(err, errlen, "%s: tensor '%s' (data_offsets [%lld, %lld]) overlaps tensor '%s' (which ends at %lld)",
                         s->path, ord[i]->name, (long long)ord[i]->begin, (long long)ord[i]->end, prev, (long long)pos);
        else if (ord[i]->begin > pos)
            rc = dv_errf(err, errlen, "%s: data buffer bytes [%lld, %lld) belong to no tensor (next is '%s' at %lld)",
                         s->path, (long long)pos, (long long)ord[i]->begin, ord[i]->name, (long long)ord[i]->begin);
        pos = ord[i]->end;
        prev = ord[i]->name;
    }
    free(ord);
    if (!rc && pos != s->data_len)
        rc = dv_errf(err, errlen, "%s: data buffer bytes [%lld, %lld) (file offset %lld on) belong to no tensor: "
                     "the file has %lld bytes after the last tensor", s->path, (long long)pos, (long long)s->data_len,
                     (long long)(s->data_start + pos), (long long)(s->data_len - pos));
    return rc;
}

static uint64_t le64(const unsigned char *p) {
    uint64_t v = 0;
    for (int k = 7; k >= 0; k--) v = v << 8 | p[k];
    return v;
}

/* open, map and check one .safetensors file into s (freed by the caller on error too) */
static int shard_open(const char *path, st_shard *s, char *err, size_t errlen) {
    *s = (st_shard){0};
    s->path = strdup(path);
    if (!s->path) dv_panic("safetensors: out of memory");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return dv_errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st)) { int e = errno; close(fd); return dv_errf(err, errlen, "%s: cannot stat: %s", path, strerror(e)); }
    if (!S_ISREG(st.st_mode)) { close(fd); return dv_errf(err, errlen, "%s: not a regular file", path); }
    if (st.st_size < 8) {
        close(fd);
        return dv_errf(err, errlen, "%s: file is %lld bytes, too short for the 8-byte header length", path, (long long)st.st_size);
    }
    /* MAP_PRIVATE + PROT_WRITE: views may be written (copy-on-write), the file never is.
     * MAP_NORESERVE: a 100 GB file does not count 100 GB against the commit limit. */
    void *base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, 0);
    int e = errno;
    close(fd);
    if (base == MAP_FAILED) return dv_errf(err, errlen, "%s: cannot mmap %lld bytes: %s", path, (long long)st.st_size, strerror(e));
    s->map = calloc(1, sizeof *s->map);
    if (!s->map) dv_panic("safetensors: out of memory");
    *s->map = (st_map){base, (size_t)st.st_size, 1};

    uint64_t hlen = le64(base);
    if (hlen > DV_ST_MAX_HEADER)
        return dv_errf(err, errlen, "%s: header length %llu (file offset 0) is over the %d-byte limit", path,
                       (unsigned long long)hlen, DV_ST_MAX_HEADER);
    if (hlen > (uint64_t)st.st_size - 8)
        return dv_errf(err, errlen, "%s: header length %llu (file offset 0) runs past the end of the file (%lld bytes; "
                       "expected at most %lld)", path, (unsigned long long)hlen, (long long)st.st_size, (long long)st.st_size - 8);
    s->data_start = 8 + (int64_t)hlen;
    s->data_len = st.st_size - s->data_start;
    /* parse a heap copy of exactly hlen bytes: a sanitizer then sees any read past the header's
     * end (in the mapping such a read would land on the data or the page's zero tail) */
    char *text = malloc(hlen ? (size_t)hlen : 1);
    if (!text) dv_panic("safetensors: out of memory");
    memcpy(text, (const char *)base + 8, (size_t)hlen);
    jp j = {.s = text, .n = (size_t)hlen, .base = 8, .file = path, .err = err, .errlen = errlen};
    bool ok = parse_header(&j, s);
    free(text);
    if (!ok) return -1;
    return check_layout(s, err, errlen);
}

/* ---- the public handle: one file, or the shards of one checkpoint ------------------------- */

struct dv_st_file {
    st_shard *shards;
    int nshards;
    dv_st_info *info; /* copies of the shards' entries (strings owned by the shards) */
    int *shard_of;
    int n;
    st_table names;
};

static dv_st_file *file_new(void) {
    dv_st_file *f = calloc(1, sizeof *f);
    if (!f) dv_panic("safetensors: out of memory");
    return f;
}

static void file_add(dv_st_file *f, const dv_st_info *t, int shard, int *cap) {
    if (f->n == *cap) {
        *cap = *cap ? 2 * *cap : 64;
        f->info = realloc(f->info, (size_t)*cap * sizeof *f->info);
        f->shard_of = realloc(f->shard_of, (size_t)*cap * sizeof *f->shard_of);
        if (!f->info || !f->shard_of) dv_panic("safetensors: out of memory");
    }
    f->info[f->n] = *t;
    f->shard_of[f->n] = shard;
    table_put(&f->names, t->name, f->n);
    f->n++;
}

void dv_st_close(dv_st_file *f) {
    if (!f) return;
    for (int k = 0; k < f->nshards; k++) shard_free(&f->shards[k]);
    free(f->shards);
    free(f->info);
    free(f->shard_of);
    table_free(&f->names);
    free(f);
}

static st_shard *file_new_shard(dv_st_file *f) {
    f->shards = realloc(f->shards, (size_t)(f->nshards + 1) * sizeof *f->shards);
    if (!f->shards) dv_panic("safetensors: out of memory");
    f->shards[f->nshards] = (st_shard){0};
    return &f->shards[f->nshards++];
}

static char *path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) dv_panic("safetensors: out of memory");
    memcpy(p, dir, a);
    size_t o = a;
    if (a && dir[a - 1] != '/') p[o++] = '/';
    memcpy(p + o, name, b + 1);
    return p;
}

static int open_single(const char *path, dv_st_file **out, char *err, size_t errlen) {
    dv_st_file *f = file_new();
    st_shard *s = file_new_shard(f);
    if (shard_open(path, s, err, errlen)) { dv_st_close(f); return -1; }
    int cap = 0;
    for (int i = 0; i < s->n; i++) file_add(f, &s->info[i], 0, &cap);
    *out = f;
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* every *.safetensors of a directory (sorted), names unique across them */
static int open_dir(const char *dir, dv_st_file **out, char *err, size_t errlen) {
    DIR *d = opendir(dir);
    if (!d) return dv_errf(err, errlen, "%s: cannot open directory: %s", dir, strerror(errno));
    char **names = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t L = strlen(e->d_name);
        if (e->d_name[0] == '.' || L <= 12 || strcmp(e->d_name + L - 12, ".safetensors")) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            names = realloc(names, (size_t)cap * sizeof *names);
            if (!names) dv_panic("safetensors: out of memory");
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (!n) {
        free(names);
        return dv_errf(err, errlen, "%s: no *.safetensors files and no model.safetensors.index.json in the directory", dir);
    }
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    dv_st_file *f = file_new();
    int rc = 0, icap = 0;
    for (int k = 0; k < n && !rc; k++) {
        char *p = path_join(dir, names[k]);
        st_shard *s = file_new_shard(f);
        rc = shard_open(p, s, err, errlen);
        free(p);
        for (int i = 0; i < s->n && !rc; i++) {
            int prev = table_get(&f->names, s->info[i].name);
            if (prev >= 0)
                rc = dv_errf(err, errlen, "%s: tensor '%s' is also in %s", s->path, s->info[i].name, f->info[prev].file);
            else file_add(f, &s->info[i], f->nshards - 1, &icap);
        }
    }
    for (int k = 0; k < n; k++) free(names[k]);
    free(names);
    if (rc) { dv_st_close(f); return -1; }
    *out = f;
    return 0;
}

/* model.safetensors.index.json: {"metadata": {...}, "weight_map": {"<tensor>": "<shard file>"}} */
static int open_index(const char *path, dv_st_file **out, char *err, size_t errlen) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return dv_errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > DV_ST_MAX_HEADER) {
        close(fd);
        return dv_errf(err, errlen, "%s: not a regular file of at most %d bytes", path, DV_ST_MAX_HEADER);
    }
    char *text = malloc(st.st_size ? (size_t)st.st_size : 1); /* exact size: see shard_open */
    if (!text) dv_panic("safetensors: out of memory");
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t k = read(fd, text + got, (size_t)st.st_size - got);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        got += (size_t)k;
    }
    close(fd);
    if (got != (size_t)st.st_size) { free(text); return dv_errf(err, errlen, "%s: short read", path); }

    /* parse: collect (tensor, shard file) pairs */
    jp j = {.s = text, .n = got, .base = 0, .file = path, .err = err, .errlen = errlen};
    dv_st_kv *wm = NULL;
    int nwm = 0, r = -1;
    bool have_wm = false, ok = true;
    char b[32];
    if (jp_peek(&j) != '{') ok = jp_fail(&j, "the index must be a JSON object, found %s", jp_what(&j, b));
    else {
        j.i++;
        bool first = true;
        char *key;
        while ((r = jp_member(&j, &first, &key)) == 1) {
            if (!strcmp(key, "weight_map") && !have_wm) {
                have_wm = true;
                ok = jp_string_map(&j, "\"weight_map\" must be an object of strings", &wm, &nwm);
            } else {
                ok = jp_skip(&j, 1); /* "metadata" and anything else: checked, not used */
            }
            free(key);
            if (!ok) break;
        }
        if (ok && r < 0) ok = false;
        if (ok) ok = jp_end(&j);
        if (ok && !have_wm) { dv_errf(err, errlen, "%s: no \"weight_map\" object", path); ok = false; }
    }
    free(text);

    /* the directory of the index holds the shards */
    char *dir = strdup(path);
    char *slash = strrchr(dir, '/');
    if (slash) slash[1] = 0;
    else strcpy(dir, ".");
    dv_st_file *f = file_new();
    st_table shard_ix = {0};
    int icap = 0;
    for (int k = 0; k < nwm && ok; k++) {
        const char *file = wm[k].value;
        if (!*file || strchr(file, '/') || !strcmp(file, ".") || !strcmp(file, "..")) {
            dv_errf(err, errlen, "%s: weight_map: tensor '%s' names shard \"%s\"; expected a file name in the index's directory",
                    path, wm[k].key, file);
            ok = false;
            break;
        }
        int sk = table_get(&shard_ix, file);
        if (sk < 0) {
            char *p = path_join(dir, file);
            st_shard *s = file_new_shard(f);
            ok = !shard_open(p, s, err, errlen);
            free(p);
            sk = f->nshards - 1;
            table_put(&shard_ix, wm[k].value, sk);
            if (!ok) break;
        }
        st_shard *s = &f->shards[sk];
        int ti = table_get(&s->names, wm[k].key);
        if (ti < 0) {
            dv_errf(err, errlen, "%s: weight_map puts tensor '%s' in %s, which has no such tensor", path, wm[k].key, s->path);
            ok = false;
            break;
        }
        file_add(f, &s->info[ti], sk, &icap);
    }
    table_free(&shard_ix);
    for (int k = 0; k < nwm; k++) { free((char *)wm[k].key); free((char *)wm[k].value); }
    free(wm);
    free(dir);
    if (!ok) { dv_st_close(f); return -1; }
    *out = f;
    return 0;
}

int dv_st_open(const char *path, dv_st_file **out, char *err, size_t errlen) {
    *out = NULL;
    if (err && errlen) err[0] = 0;
    struct stat st;
    if (stat(path, &st)) return dv_errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        char *idx = path_join(path, "model.safetensors.index.json");
        int rc = access(idx, F_OK) == 0 ? open_index(idx, out, err, errlen) : open_dir(path, out, err, errlen);
        free(idx);
        return rc;
    }
    size_t L = strlen(path);
    if (L >= 5 && !strcmp(path + L - 5, ".json")) return open_index(path, out, err, errlen);
    return open_single(path, out, err, errlen);
}

int dv_st_count(const dv_st_file *f) { return f->n; }
const dv_st_info *dv_st_info_at(const dv_st_file *f, int i) {
    DV_ASSERT(i >= 0 && i < f->n, "dv_st_info_at: index %d out of range [0, %d)", i, f->n);
    return &f->info[i];
}
int dv_st_find(const dv_st_file *f, const char *name) { return table_get(&f->names, name); }

int dv_st_meta_count(const dv_st_file *f) { return f->nshards ? f->shards[0].nmeta : 0; }
dv_st_kv dv_st_meta_at(const dv_st_file *f, int i) {
    DV_ASSERT(i >= 0 && i < dv_st_meta_count(f), "dv_st_meta_at: index %d out of range", i);
    return f->shards[0].meta[i];
}
const char *dv_st_meta(const dv_st_file *f, const char *key) {
    for (int i = 0; i < dv_st_meta_count(f); i++)
        if (!strcmp(f->shards[0].meta[i].key, key)) return f->shards[0].meta[i].value;
    return NULL;
}

/* ---- loading a tensor ---------------------------------------------------------------------- */

int dv_st_load(dv_st_file *f, int i, int flags, dv_tensor **out, char *err, size_t errlen) {
    *out = NULL;
    if (i < 0 || i >= f->n) return dv_errf(err, errlen, "safetensors: tensor index %d out of range [0, %d)", i, f->n);
    const dv_st_info *t = &f->info[i];
    st_shard *s = &f->shards[f->shard_of[i]];
    if (t->dtype < 0)
        return dv_errf(err, errlen, "%s: tensor '%s' has dtype %s, which dualvla has no type for (it reads F32, F64, F16, BF16, "
                       "I32, I64, U8, BOOL)", t->file, t->name, t->dtype_name);
    dv_dtype dt = (dv_dtype)t->dtype;
    char *p = (char *)s->map->base + s->data_start + t->begin;
    bool aligned = (uintptr_t)p % dv_dtype_size(dt) == 0;
    bool widen = (flags & DV_ST_WIDEN) && (dt == DV_F16 || dt == DV_BF16);
    if (widen) {
        /* widening reads 16-bit words: go through an aligned copy when the data is not aligned */
        dv_tensor *raw = aligned ? NULL : dv_from_data(dt, t->shape, t->ndim, p);
        dv_tensor *w = dv_empty(DV_F32, t->shape, t->ndim);
        dv_convert_portable(dv_numel(w), DV_K_F32, dv_data(w), dt, raw ? dv_data(raw) : p);
        dv_release(raw);
        *out = w;
    } else if ((flags & DV_ST_COPY) || !aligned) {
        *out = dv_from_data(dt, t->shape, t->ndim, p);
    } else {
        __atomic_add_fetch(&s->map->refs, 1, __ATOMIC_ACQ_REL);
        *out = dv_wrap(dt, t->shape, t->ndim, p, map_free_fn, s->map);
    }
    return 0;
}

int dv_st_get(dv_st_file *f, const char *name, int flags, dv_tensor **out, char *err, size_t errlen) {
    int i = dv_st_find(f, name);
    if (i < 0) {
        *out = NULL;
        return dv_errf(err, errlen, "%s%s: no tensor named '%s'", f->nshards ? f->shards[0].path : "safetensors",
                       f->nshards > 1 ? " (and the other shards)" : "", name);
    }
    return dv_st_load(f, i, flags, out, err, errlen);
}

/* ---- writing --------------------------------------------------------------------------------- */

typedef struct { char *s; size_t n, cap; } sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        while (b->n + n + 1 > b->cap) b->cap = b->cap ? 2 * b->cap : 256;
        b->s = realloc(b->s, b->cap);
        if (!b->s) dv_panic("safetensors: out of memory");
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}
static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }
__attribute__((format(printf, 2, 3))) static void sb_fmt(sbuf *b, const char *fmt, ...) {
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    sb_put(b, tmp, (size_t)k);
}
/* a JSON string literal; s is valid UTF-8 (checked by the caller) */
static void sb_json(sbuf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"') sb_put(b, "\\\"", 2);
        else if (c == '\\') sb_put(b, "\\\\", 2);
        else if (c == '\n') sb_put(b, "\\n", 2);
        else if (c == '\t') sb_put(b, "\\t", 2);
        else if (c == '\r') sb_put(b, "\\r", 2);
        else if (c < 0x20) sb_fmt(b, "\\u%04x", c);
        else sb_put(b, (const char *)&c, 1);
    }
    sb_put(b, "\"", 1);
}

static int write_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n) {
        ssize_t k = write(fd, c, n > (1u << 30) ? (1u << 30) : n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

/* fsync the directory holding path, so the rename itself is durable */
static int fsync_dir_of(const char *path) {
    char *dir = strdup(path);
    char *slash = strrchr(dir, '/');
    if (slash == dir) slash[1] = 0;
    else if (slash) *slash = 0;
    else strcpy(dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    if (rc && (errno == EINVAL || errno == EROFS)) rc = 0; /* filesystems without directory fsync */
    close(fd);
    return rc;
}

typedef struct { int idx; int size; } st_order;
static int cmp_order(const void *a, const void *b) { /* widest dtype first, then caller order */
    const st_order *x = a, *y = b;
    if (x->size != y->size) return y->size - x->size;
    return x->idx - y->idx;
}

int dv_st_save(const char *path, const char *const *names, dv_tensor *const *tensors, int n,
               const dv_st_kv *meta, int n_meta, char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    if (n < 0 || n_meta < 0) return dv_errf(err, errlen, "%s: save: negative count", path);
    /* check the arguments before touching the disk */
    st_table seen = {0};
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        const char *nm = names[i];
        const dv_tensor *t = tensors[i];
        if (!nm || !*nm || !strcmp(nm, "__metadata__") || !utf8_valid(nm))
            rc = dv_errf(err, errlen, "%s: save: tensor %d: name \"%s\" is empty, reserved or not UTF-8", path, i, nm ? nm : "(null)");
        else if (!t) rc = dv_errf(err, errlen, "%s: save: tensor '%s' is NULL", path, nm);
        else if (t->device.type != DV_CPU) rc = dv_errf(err, errlen, "%s: save: tensor '%s' is not on the CPU", path, nm);
        else if (!dv_st_dtype_name(t->dtype)) rc = dv_errf(err, errlen, "%s: save: tensor '%s' has a bad dtype %d", path, nm, (int)t->dtype);
        else if (table_put(&seen, nm, i) >= 0) rc = dv_errf(err, errlen, "%s: save: duplicate tensor name '%s'", path, nm);
    }
    table_free(&seen);
    for (int k = 0; k < n_meta && !rc; k++) {
        if (!meta[k].key || !meta[k].value || !utf8_valid(meta[k].key) || !utf8_valid(meta[k].value))
            rc = dv_errf(err, errlen, "%s: save: metadata entry %d is NULL or not UTF-8", path, k);
        else if (table_put(&seen, meta[k].key, k) >= 0)
            rc = dv_errf(err, errlen, "%s: save: duplicate metadata key '%s'", path, meta[k].key);
    }
    table_free(&seen);
    if (rc) return rc;

    /* layout: widest dtype first so every tensor is aligned to its element size */
    st_order *ord = malloc((size_t)(n ? n : 1) * sizeof *ord);
    int64_t *begin = malloc((size_t)(n ? n : 1) * sizeof *begin);
    if (!ord || !begin) dv_panic("safetensors: out of memory");
    for (int i = 0; i < n; i++) ord[i] = (st_order){i, (int)dv_dtype_size(tensors[i]->dtype)};
    qsort(ord, (size_t)n, sizeof *ord, cmp_order);
    int64_t pos = 0;
    for (int k = 0; k < n; k++) {
        begin[ord[k].idx] = pos;
        pos += dv_numel(tensors[ord[k].idx]) * (int64_t)dv_dtype_size(tensors[ord[k].idx]->dtype);
    }

    /* the header, in the caller's order, padded with spaces so the buffer is 8-byte aligned */
    sbuf h = {0};
    sb_str(&h, "{");
    if (n_meta) {
        sb_str(&h, "\"__metadata__\":{");
        for (int k = 0; k < n_meta; k++) {
            if (k) sb_str(&h, ",");
            sb_json(&h, meta[k].key);
            sb_str(&h, ":");
            sb_json(&h, meta[k].value);
        }
        sb_str(&h, n ? "}," : "}");
    }
    for (int i = 0; i < n; i++) {
        const dv_tensor *t = tensors[i];
        if (i) sb_str(&h, ",");
        sb_json(&h, names[i]);
        sb_fmt(&h, ":{\"dtype\":\"%s\",\"shape\":[", dv_st_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++) sb_fmt(&h, d ? ",%lld" : "%lld", (long long)t->shape[d]);
        int64_t nb = dv_numel(t) * (int64_t)dv_dtype_size(t->dtype);
        sb_fmt(&h, "],\"data_offsets\":[%lld,%lld]}", (long long)begin[i], (long long)(begin[i] + nb));
    }
    sb_str(&h, "}");
    while ((8 + h.n) % 8) sb_str(&h, " ");
    unsigned char len8[8];
    for (int k = 0; k < 8; k++) len8[k] = (unsigned char)((uint64_t)h.n >> (8 * k));

    /* write the temp file, then move it into place */
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= sizeof tmp) {
        free(h.s); free(ord); free(begin);
        return dv_errf(err, errlen, "%s: save: path too long", path);
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        free(h.s); free(ord); free(begin);
        return dv_errf(err, errlen, "%s: save: cannot create %s: %s", path, tmp, strerror(e));
    }
    const char *step = "write the header";
    bool ok = !write_all(fd, len8, 8) && !write_all(fd, h.s, h.n);
    DV_NO_GRAD_BEGIN
    for (int k = 0; k < n && ok; k++) {
        dv_tensor *c = dv_contiguous(tensors[ord[k].idx]);
        step = "write tensor data";
        ok = !write_all(fd, dv_data(c), (size_t)(dv_numel(c) * (int64_t)dv_dtype_size(c->dtype)));
        dv_release(c);
    }
    DV_NO_GRAD_END
    if (ok) { step = "fsync"; ok = !fsync(fd); }
    int e = errno;
    if (close(fd) && ok) { e = errno; step = "close"; ok = false; }
    if (ok) { step = "rename the temp file over it"; ok = !rename(tmp, path); e = errno; }
    free(h.s); free(ord); free(begin);
    if (!ok) {
        unlink(tmp);
        return dv_errf(err, errlen, "%s: save: could not %s (%s); the old file, if any, is untouched", path, step, strerror(e));
    }
    if (fsync_dir_of(path))
        return dv_errf(err, errlen, "%s: save: written, but fsync of its directory failed: %s", path, strerror(errno));
    return 0;
}
