/* data/calvin/yaml.c — the YAML subset of yaml.h (YAML 1.2, much reduced): enough for
 * CALVIN's statistics.yaml and other small hand- or OmegaConf-written configuration files.
 *
 * Two passes. First the text is cut into logical lines: indentation counted, comments and
 * trailing blanks removed, blank lines dropped. Then a recursive descent over those lines:
 * a line starting with "- " opens a sequence at its indentation, a line with "key:" a
 * mapping; "- key: v" is read by treating the text after "- " as a line indented that much
 * further. Flow collections ([...], {...}) are parsed from the value text, joined with the
 * following lines while their brackets are open.
 *
 * Deliberately not here: block scalars, anchors/aliases, tags, multiple documents, complex
 * keys, plain scalars over several lines, YAML 1.1 booleans (yes/no) — each an error with
 * file:line when met, or (yes/no) left as a string.
 */
#include "data/calvin/yaml.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

/* ---------------------------------------------------------------- arena */

typedef struct blk {
    struct blk *next;
    size_t used, cap;
    _Alignas(16) char data[];
} blk;

struct dv_yaml_doc {
    blk *mem;
    char *name;
    dv_yaml *root;
};

static void *alloc(dv_yaml_doc *d, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (!d->mem || d->mem->cap - d->mem->used < n) {
        size_t cap = n > 16384 ? n : 16384;
        blk *b = malloc(sizeof *b + cap);
        if (!b) return NULL;
        b->used = 0, b->cap = cap, b->next = d->mem;
        d->mem = b;
    }
    void *p = d->mem->data + d->mem->used;
    d->mem->used += n;
    memset(p, 0, n);
    return p;
}

void dv_yaml_free(dv_yaml_doc *d) {
    if (!d) return;
    for (blk *b = d->mem, *n; b; b = n) {
        n = b->next;
        free(b);
    }
    free(d->name);
    free(d);
}

const dv_yaml *dv_yaml_root(const dv_yaml_doc *d) { return d->root; }
const char *dv_yaml_name(const dv_yaml_doc *d) { return d->name; }

/* ---------------------------------------------------------------- parser state */

typedef struct {
    int no, indent;
    char *text;
} line;

typedef struct {
    size_t off; /* offset in the flow text */
    int no;     /* line it came from */
} seg_t;

typedef struct {
    dv_yaml_doc *doc;
    const char *what;
    line *ln;
    int n, cur;
    char *err;
    size_t errlen;
    bool failed;
    /* the flow text being parsed, and which line each of its pieces came from */
    const char *flow;
    int nseg, segcap;
    seg_t *seg;
} P;

__attribute__((format(printf, 3, 4))) static void *fail(P *p, int no, const char *fmt, ...) {
    if (p->failed) return NULL;
    p->failed = true;
    if (p->err && p->errlen) {
        char msg[400];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        snprintf(p->err, p->errlen, "%s:%d: %s", p->what, no, msg);
    }
    return NULL;
}

static dv_yaml *node(P *p, dv_yaml_type t, int no) {
    dv_yaml *y = alloc(p->doc, sizeof *y);
    if (!y) return fail(p, no, "out of memory");
    y->type = t;
    y->line = no;
    return y;
}

static char *dupn(P *p, const char *s, size_t n) {
    char *c = alloc(p->doc, n + 1);
    if (!c) return NULL;
    memcpy(c, s, n);
    c[n] = 0;
    return c;
}

/* append to a SEQ or MAP (capacity: the next power of two, implied by n) */
static bool add(P *p, dv_yaml *c, const char *key, dv_yaml *item) {
    int n = c->n;
    if (n == 0 || (n >= 4 && (n & (n - 1)) == 0)) {
        int cap = n == 0 ? 4 : 2 * n;
        dv_yaml **it = alloc(p->doc, (size_t)cap * sizeof *it);
        const char **k = c->type == DV_YAML_MAP ? alloc(p->doc, (size_t)cap * sizeof *k) : NULL;
        if (!it || (c->type == DV_YAML_MAP && !k)) return fail(p, item->line, "out of memory"), false;
        if (n) memcpy(it, c->items, (size_t)n * sizeof *it);
        if (n && k) memcpy(k, c->keys, (size_t)n * sizeof *k);
        c->items = it;
        if (k) c->keys = k;
    }
    if (c->type == DV_YAML_MAP) {
        for (int i = 0; i < n; i++)
            if (strcmp(c->keys[i], key) == 0) return fail(p, item->line, "duplicate key '%s'", key), false;
        c->keys[n] = key;
    }
    c->items[n] = item;
    c->n = n + 1;
    return true;
}

/* ---------------------------------------------------------------- lines */

/* where a quoted scalar may start: after nothing, a space, or one of [{,:- */
static bool quote_can_start(const char *s, const char *at) {
    const char *q = at;
    while (q > s && (q[-1] == ' ' || q[-1] == '\t')) q--;
    return q == s || strchr("[{,:-?", q[-1]) != NULL;
}

/* cuts text (modified in place) into logical lines */
static int split_lines(P *p, char *text, size_t len) {
    int cap = 64;
    p->ln = malloc((size_t)cap * sizeof *p->ln);
    if (!p->ln) return fail(p, 0, "out of memory"), -1;
    int no = 0;
    char *s = text, *end = text + len;
    while (s < end) {
        char *e = memchr(s, '\n', (size_t)(end - s));
        if (!e) e = end;
        *e = 0;
        no++;
        if (e > s && e[-1] == '\r') e[-1] = 0;
        int indent = 0;
        while (s[indent] == ' ') indent++;
        if (s[indent] == '\t') return fail(p, no, "tab in indentation"), -1;
        /* strip a comment: '#' at the start or after a blank, outside quotes */
        char q = 0;
        for (char *c = s + indent; *c; c++) {
            if (q == '\'') {
                if (*c == '\'' && c[1] == '\'') c++;
                else if (*c == '\'') q = 0;
            } else if (q == '"') {
                if (*c == '\\' && c[1]) c++;
                else if (*c == '"') q = 0;
            } else if ((*c == '\'' || *c == '"') && quote_can_start(s + indent, c)) {
                q = *c;
            } else if (*c == '#' && (c == s + indent || c[-1] == ' ' || c[-1] == '\t')) {
                *c = 0;
                break;
            }
        }
        size_t n = strlen(s);
        while (n > (size_t)indent && (s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = 0;
        char *t = s + indent;
        if (*t) {
            if (no == 1 || p->n == 0) {
                if (strcmp(t, "---") == 0 && indent == 0) goto next;
            }
            if (indent == 0 && (strcmp(t, "---") == 0 || strncmp(t, "--- ", 4) == 0))
                return fail(p, no, "several documents are not supported"), -1;
            if (indent == 0 && strcmp(t, "...") == 0) break;
            if (t[0] == '%') return fail(p, no, "directives are not supported"), -1;
            if (p->n == cap) {
                cap *= 2;
                line *l = realloc(p->ln, (size_t)cap * sizeof *l);
                if (!l) return fail(p, no, "out of memory"), -1;
                p->ln = l;
            }
            p->ln[p->n++] = (line){no, indent, t};
        }
    next:
        s = e + 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- flow values */

/* starts a new flow text whose first piece comes from line no */
static bool seg_start(P *p, const char *text, int no) {
    p->nseg = 0;
    if (p->segcap < 8) {
        seg_t *ns = realloc(p->seg, 8 * sizeof *ns);
        if (!ns) return fail(p, no, "out of memory"), false;
        p->seg = ns, p->segcap = 8;
    }
    p->seg[p->nseg++] = (seg_t){0, no};
    p->flow = text;
    return true;
}

static int flow_line(P *p, size_t off) {
    int no = p->seg[0].no;
    for (int i = 0; i < p->nseg && p->seg[i].off <= off; i++) no = p->seg[i].no;
    return no;
}

static void ws(const char **s) {
    while (**s == ' ' || **s == '\t') (*s)++;
}

static int hexval(char c) {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* a quoted scalar starting at *s (on the quote) */
static dv_yaml *quoted(P *p, const char **s) {
    int no = flow_line(p, (size_t)(*s - p->flow));
    char q = **s;
    const char *c = *s + 1;
    size_t cap = strlen(c) + 1;
    char *out = alloc(p->doc, cap), *o = out;
    if (!out) return fail(p, no, "out of memory");
    for (;; c++) {
        if (!*c) return fail(p, no, "unterminated %s-quoted string", q == '"' ? "double" : "single");
        if (q == '\'') {
            if (*c == '\'' && c[1] == '\'') *o++ = '\'', c++;
            else if (*c == '\'') break;
            else *o++ = *c;
            continue;
        }
        if (*c == '"') break;
        if (*c != '\\') {
            *o++ = *c;
            continue;
        }
        c++;
        switch (*c) {
        case 'n': *o++ = '\n'; break;
        case 't': *o++ = '\t'; break;
        case 'r': *o++ = '\r'; break;
        case '0': *o++ = '\0'; break;
        case '\\': case '"': case '/': case ' ': *o++ = *c; break;
        case 'x': case 'u': {
            int nd = *c == 'x' ? 2 : 4;
            uint32_t v = 0;
            for (int i = 1; i <= nd; i++) {
                int h = hexval(c[i]);
                if (h < 0) return fail(p, no, "bad \\%c escape", *c);
                v = v * 16 + (uint32_t)h;
            }
            c += nd;
            if (v < 0x80) *o++ = (char)v;
            else if (v < 0x800) *o++ = (char)(0xC0 | v >> 6), *o++ = (char)(0x80 | (v & 63));
            else *o++ = (char)(0xE0 | v >> 12), *o++ = (char)(0x80 | ((v >> 6) & 63)), *o++ = (char)(0x80 | (v & 63));
            break;
        }
        default: return fail(p, no, "unsupported escape '\\%c'", *c ? *c : '0');
        }
    }
    *o = 0;
    *s = c + 1;
    dv_yaml *y = node(p, DV_YAML_SCALAR, no);
    if (y) y->str = out, y->quoted = true;
    return y;
}

/* a plain scalar: up to the end, or in flow context up to , ] } or ": " */
static dv_yaml *plain(P *p, const char **s, bool in_flow, bool is_key) {
    int no = flow_line(p, (size_t)(*s - p->flow));
    const char *c = *s;
    if (strchr("&*!|>%@`", *c))
        return fail(p, no, "'%c' (anchors, aliases, tags, block scalars) is not supported", *c);
    const char *e = c;
    while (*e) {
        if (in_flow && strchr(",[]{}", *e)) break;
        if ((in_flow || is_key) && *e == ':' && (e[1] == ' ' || e[1] == 0 || (in_flow && strchr(",]}", e[1]))))
            break;
        e++;
    }
    const char *t = e;
    while (t > c && (t[-1] == ' ' || t[-1] == '\t')) t--;
    *s = e;
    if (t == c || ((t - c == 1) && *c == '~') || (t - c == 4 && (!strncmp(c, "null", 4) || !strncmp(c, "Null", 4) ||
                                                                   !strncmp(c, "NULL", 4))))
        return node(p, DV_YAML_NULL, no);
    dv_yaml *y = node(p, DV_YAML_SCALAR, no);
    if (y && !(y->str = dupn(p, c, (size_t)(t - c)))) return fail(p, no, "out of memory");
    return y;
}

static dv_yaml *flow_value(P *p, const char **s, int depth);

static const char *key_text(P *p, const dv_yaml *k) {
    if (k->type == DV_YAML_NULL) return fail(p, k->line, "empty key");
    if (k->type != DV_YAML_SCALAR) return fail(p, k->line, "keys must be scalars");
    return k->str;
}

static dv_yaml *flow_collection(P *p, const char **s, int depth) {
    int no = flow_line(p, (size_t)(*s - p->flow));
    if (depth > MAX_DEPTH) return fail(p, no, "nested more than %d deep", MAX_DEPTH);
    char open = **s, close = open == '[' ? ']' : '}';
    dv_yaml *c = node(p, open == '[' ? DV_YAML_SEQ : DV_YAML_MAP, no);
    if (!c) return NULL;
    (*s)++;
    for (;;) {
        ws(s);
        if (**s == close) {
            (*s)++;
            return c;
        }
        if (!**s) return fail(p, no, "'%c' is never closed", open);
        if (**s == ',') return fail(p, flow_line(p, (size_t)(*s - p->flow)), "empty item in a flow collection");
        if (open == '[') {
            dv_yaml *v = flow_value(p, s, depth + 1);
            if (!v || !add(p, c, NULL, v)) return NULL;
        } else {
            dv_yaml *k = (**s == '"' || **s == '\'') ? quoted(p, s) : plain(p, s, true, true);
            if (!k) return NULL;
            const char *key = key_text(p, k);
            if (!key) return NULL;
            ws(s);
            dv_yaml *v;
            if (**s == ':') {
                (*s)++;
                ws(s);
                v = (**s == ',' || **s == close) ? node(p, DV_YAML_NULL, k->line) : flow_value(p, s, depth + 1);
            } else v = node(p, DV_YAML_NULL, k->line);
            if (!v || !add(p, c, key, v)) return NULL;
        }
        ws(s);
        if (**s == ',') (*s)++;
        else if (!**s) return fail(p, no, "'%c' is never closed", open);
        else if (**s != close)
            return fail(p, flow_line(p, (size_t)(*s - p->flow)), "expected ',' or '%c' in a flow collection", close);
    }
}

static dv_yaml *flow_value(P *p, const char **s, int depth) {
    ws(s);
    if (**s == '[' || **s == '{') return flow_collection(p, s, depth);
    if (**s == '"' || **s == '\'') return quoted(p, s);
    return plain(p, s, true, false);
}

/* the value text of line p->cur (from `text` on): a scalar, or a flow collection that may
 * continue over the next lines; consumes the lines it uses */
static dv_yaml *inline_value(P *p, const char *text, int depth) {
    line *l = &p->ln[p->cur];
    char *buf = NULL;
    size_t len = strlen(text);
    if (!seg_start(p, text, l->no)) return NULL;
    const char *src = text;
    if (*text == '[' || *text == '{') {
        /* join lines while brackets are open (outside quotes) */
        int open = 0, k = p->cur;
        size_t cap = len + 1;
        buf = malloc(cap);
        if (!buf) return fail(p, l->no, "out of memory");
        memcpy(buf, text, len + 1);
        size_t used = len;
        size_t scanned = 0;
        char q = 0;
        for (;;) {
            for (; scanned < used; scanned++) {
                char c = buf[scanned];
                if (q) {
                    if (c == '\\' && q == '"' && scanned + 1 < used) scanned++;
                    else if (c == q) q = 0;
                } else if ((c == '"' || c == '\'') && quote_can_start(buf, buf + scanned)) q = c;
                else if (c == '[' || c == '{') open++;
                else if (c == ']' || c == '}') open--;
            }
            if (open <= 0 || k + 1 >= p->n) break;
            k++;
            const char *t = p->ln[k].text;
            size_t tl = strlen(t);
            if (used + tl + 2 > cap) {
                cap = 2 * (used + tl + 2);
                char *nb = realloc(buf, cap);
                if (!nb) return free(buf), fail(p, l->no, "out of memory");
                buf = nb;
            }
            buf[used++] = ' ';
            if (p->nseg == p->segcap) {
                seg_t *ns = realloc(p->seg, 2 * (size_t)p->segcap * sizeof *ns);
                if (!ns) return free(buf), fail(p, l->no, "out of memory");
                p->seg = ns, p->segcap *= 2;
            }
            p->seg[p->nseg++] = (seg_t){used, p->ln[k].no};
            memcpy(buf + used, t, tl + 1);
            used += tl;
        }
        p->cur = k;
        src = buf;
    }
    p->flow = src;
    const char *s = src;
    dv_yaml *v;
    if (*s == '[' || *s == '{') v = flow_collection(p, &s, depth);
    else if (*s == '"' || *s == '\'') v = quoted(p, &s);
    else v = plain(p, &s, false, false);
    if (v) {
        ws(&s);
        if (*s) v = fail(p, flow_line(p, (size_t)(s - src)), "unexpected text '%.20s' after the value", s);
    }
    p->cur++;
    free(buf);
    return v;
}

/* ---------------------------------------------------------------- block structure */

static bool is_dash(const char *t) { return t[0] == '-' && (t[1] == ' ' || t[1] == 0); }

/* the ':' ending a block mapping key in t, or NULL (t is then a scalar or flow value) */
static const char *key_colon(const char *t) {
    if (*t == '[' || *t == '{') return NULL;
    const char *c = t;
    if (*c == '"' || *c == '\'') { /* a quoted key: skip it */
        char q = *c++;
        for (; *c; c++) {
            if (q == '\'' && *c == '\'' && c[1] == '\'') c++;
            else if (q == '"' && *c == '\\' && c[1]) c++;
            else if (*c == q) break;
        }
        if (!*c) return NULL;
        c++;
        while (*c == ' ') c++;
        return *c == ':' && (c[1] == ' ' || c[1] == 0) ? c : NULL;
    }
    for (; *c; c++)
        if (*c == ':' && (c[1] == ' ' || c[1] == 0)) return c;
    return NULL;
}

static dv_yaml *block(P *p, int depth);

static dv_yaml *block_seq(P *p, int ind, int depth) {
    dv_yaml *s = node(p, DV_YAML_SEQ, p->ln[p->cur].no);
    if (!s) return NULL;
    while (p->cur < p->n && p->ln[p->cur].indent == ind && is_dash(p->ln[p->cur].text)) {
        line *l = &p->ln[p->cur];
        const char *rest = l->text + 1;
        while (*rest == ' ') rest++;
        dv_yaml *item;
        if (!*rest) {
            p->cur++;
            item = (p->cur < p->n && p->ln[p->cur].indent > ind) ? block(p, depth + 1) : node(p, DV_YAML_NULL, l->no);
        } else {
            /* "- x": x read as if it were a line of its own, indented up to its column */
            l->indent += (int)(rest - l->text);
            l->text = (char *)rest;
            item = block(p, depth + 1);
        }
        if (!item || !add(p, s, NULL, item)) return NULL;
    }
    return s;
}

static dv_yaml *block_map(P *p, int ind, int depth) {
    dv_yaml *m = node(p, DV_YAML_MAP, p->ln[p->cur].no);
    if (!m) return NULL;
    while (p->cur < p->n && p->ln[p->cur].indent == ind) {
        line *l = &p->ln[p->cur];
        if (is_dash(l->text)) return fail(p, l->no, "a list item where a key was expected");
        const char *colon = key_colon(l->text);
        if (!colon) return fail(p, l->no, "expected 'key: value'");
        /* the key: quoted or plain text before the colon */
        if (!seg_start(p, l->text, l->no)) return NULL;
        const char *s = l->text;
        dv_yaml *k;
        if (*s == '"' || *s == '\'') k = quoted(p, &s);
        else if (*s == '?') return fail(p, l->no, "complex keys ('?') are not supported");
        else k = plain(p, &s, false, true);
        if (!k) return NULL;
        const char *key = key_text(p, k);
        if (!key) return NULL;
        const char *rest = colon + 1;
        while (*rest == ' ') rest++;
        dv_yaml *v;
        if (!*rest) {
            p->cur++;
            if (p->cur < p->n &&
                (p->ln[p->cur].indent > ind || (p->ln[p->cur].indent == ind && is_dash(p->ln[p->cur].text))))
                v = block(p, depth + 1);
            else v = node(p, DV_YAML_NULL, l->no);
        } else {
            v = inline_value(p, rest, depth + 1);
        }
        if (!v || !add(p, m, key, v)) return NULL;
    }
    return m;
}

/* the node starting at line p->cur, at that line's indentation */
static dv_yaml *block(P *p, int depth) {
    line *l = &p->ln[p->cur];
    if (depth > MAX_DEPTH) return fail(p, l->no, "nested more than %d deep", MAX_DEPTH);
    int ind = l->indent;
    dv_yaml *y;
    if (is_dash(l->text)) y = block_seq(p, ind, depth);
    else if (key_colon(l->text)) y = block_map(p, ind, depth);
    else y = inline_value(p, l->text, depth);
    if (y && p->cur < p->n && p->ln[p->cur].indent > ind)
        return fail(p, p->ln[p->cur].no, "unexpected indentation");
    return y;
}

int dv_yaml_parse(const char *text, size_t len, const char *what, dv_yaml_doc **out, char *err, size_t errlen) {
    *out = NULL;
    dv_yaml_doc *d = calloc(1, sizeof *d);
    char *copy = malloc(len + 1);
    if (!d || !copy || !(d->name = strdup(what))) {
        free(copy);
        dv_yaml_free(d);
        if (err && errlen) snprintf(err, errlen, "%s: out of memory", what);
        return -1;
    }
    memcpy(copy, text, len);
    copy[len] = 0;
    P p = {.doc = d, .what = what, .err = err, .errlen = errlen};
    if (memchr(copy, 0, len)) fail(&p, 1, "NUL byte in the text");
    else if (split_lines(&p, copy, len) == 0) {
        if (p.n == 0) d->root = node(&p, DV_YAML_NULL, 1);
        else {
            d->root = block(&p, 0);
            if (d->root && p.cur < p.n) fail(&p, p.ln[p.cur].no, "unexpected indentation");
        }
    }
    free(p.ln);
    free(p.seg);
    free(copy);
    if (p.failed || !d->root) {
        if (!p.failed) fail(&p, 0, "cannot parse");
        dv_yaml_free(d);
        return -1;
    }
    *out = d;
    return 0;
}

int dv_yaml_load(const char *path, dv_yaml_doc **out, char *err, size_t errlen) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (err && errlen) snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (n < cap) break;
        if (cap >= ((size_t)1 << 30)) {
            free(buf), buf = NULL;
            break;
        }
        char *nb = realloc(buf, cap *= 2);
        if (!nb) free(buf);
        buf = nb;
    }
    bool rerr = ferror(f);
    fclose(f);
    if (!buf || rerr) {
        free(buf);
        if (err && errlen) snprintf(err, errlen, "%s: cannot read (or larger than 1 GiB)", path);
        return -1;
    }
    int rc = dv_yaml_parse(buf, n, path, out, err, errlen);
    free(buf);
    return rc;
}

/* ---------------------------------------------------------------- lookups */

const dv_yaml *dv_yaml_get(const dv_yaml *m, const char *key) {
    if (!m || m->type != DV_YAML_MAP) return NULL;
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->keys[i], key) == 0) return m->items[i];
    return NULL;
}

const dv_yaml *dv_yaml_path(const dv_yaml *y, const char *dotted) {
    char part[256];
    while (y && *dotted) {
        const char *dot = strchr(dotted, '.');
        size_t n = dot ? (size_t)(dot - dotted) : strlen(dotted);
        if (n >= sizeof part) return NULL;
        memcpy(part, dotted, n);
        part[n] = 0;
        if (y->type == DV_YAML_SEQ) {
            char *e;
            long i = strtol(part, &e, 10);
            y = (n && !*e && i >= 0 && i < y->n) ? y->items[i] : NULL;
        } else {
            y = dv_yaml_get(y, part);
        }
        dotted += n + (dot ? 1 : 0);
    }
    return y;
}

bool dv_yaml_number(const dv_yaml *y, double *v) {
    if (!y || y->type != DV_YAML_SCALAR || y->quoted) return false;
    const char *s = y->str;
    const char *t = s + (*s == '+' || *s == '-');
    if (!strcmp(t, ".inf") || !strcmp(t, ".Inf") || !strcmp(t, ".INF")) {
        *v = *s == '-' ? -INFINITY : INFINITY;
        return true;
    }
    if (!strcmp(s, ".nan") || !strcmp(s, ".NaN") || !strcmp(s, ".NAN")) {
        *v = NAN;
        return true;
    }
    if (!*t || strspn(t, "0123456789.eE+-") != strlen(t) || !(t[0] == '.' || (t[0] >= '0' && t[0] <= '9')))
        return false;
    char *e;
    errno = 0;
    double x = strtod(s, &e);
    if (*e || e == s) return false;
    *v = x;
    return true;
}

int dv_yaml_floats(const dv_yaml_doc *doc, const char *dotted, float *dst, int n, char *err, size_t errlen) {
    const dv_yaml *y = dv_yaml_path(doc->root, dotted);
#define YERR(line, ...)                                                                              \
    do {                                                                                             \
        if (err && errlen) {                                                                         \
            int k_ = snprintf(err, errlen, "%s:%d: %s: ", doc->name, line, dotted);                  \
            if (k_ >= 0 && (size_t)k_ < errlen) snprintf(err + k_, errlen - (size_t)k_, __VA_ARGS__); \
        }                                                                                            \
        return -1;                                                                                   \
    } while (0)
    if (!y) YERR(doc->root->line, "not found");
    if (y->type != DV_YAML_SEQ) YERR(y->line, "not a list");
    if (y->n != n) YERR(y->line, "%d numbers, expected %d", y->n, n);
    for (int i = 0; i < n; i++) {
        double v;
        if (!dv_yaml_number(y->items[i], &v)) YERR(y->items[i]->line, "item %d is not a number", i);
        dst[i] = (float)v;
    }
    return 0;
#undef YERR
}

const dv_yaml *dv_yaml_find_item(const dv_yaml *root, const char *dotted, const char *key, const char *value) {
    const dv_yaml *s = dv_yaml_path(root, dotted);
    if (!s || s->type != DV_YAML_SEQ) return NULL;
    for (int i = 0; i < s->n; i++) {
        const dv_yaml *v = dv_yaml_get(s->items[i], key);
        if (v && v->type == DV_YAML_SCALAR && strcmp(v->str, value) == 0) return s->items[i];
    }
    return NULL;
}
