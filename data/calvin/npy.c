/* data/calvin/npy.c — numpy's .npy format (NEP 1, "A Simple File Format for NumPy Arrays",
 * versions 1.0 / 2.0 / 3.0): header parsing, conversion to C order / host byte order, zero
 * copy loads through a read-only mmap, and numpy-identical writing.
 *
 * The header is a Python dict literal; numpy reads it with ast.literal_eval, this file with
 * a small parser that accepts exactly what numpy writes (string keys 'descr',
 * 'fortran_order', 'shape' in any order; a descr string; True/False; a tuple of
 * non-negative ints) and nothing else: structured dtypes, strings ('<U8') and datetimes are
 * errors naming the descr.
 *
 * Deliberately not here: .npz archives (npz.c), object arrays (pickle.c), memory-mapped
 * writing, appending to an existing file.
 */
#include "data/calvin/npy_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define ERRF(...) dv_errf(err, errlen, __VA_ARGS__)

/* ---------------------------------------------------------------- dtypes */

static const struct { const char *name; size_t size; } g_dtypes[] = {
    [DV_NPY_BOOL] = {"|b1", 1}, [DV_NPY_U8] = {"|u1", 1},  [DV_NPY_I8] = {"|i1", 1},
    [DV_NPY_U16] = {"<u2", 2},  [DV_NPY_I16] = {"<i2", 2}, [DV_NPY_U32] = {"<u4", 4},
    [DV_NPY_I32] = {"<i4", 4},  [DV_NPY_U64] = {"<u8", 8}, [DV_NPY_I64] = {"<i8", 8},
    [DV_NPY_F16] = {"<f2", 2},  [DV_NPY_F32] = {"<f4", 4}, [DV_NPY_F64] = {"<f8", 8},
    [DV_NPY_OBJECT] = {"|O", 0},
};

size_t dv_npy_dtype_size(dv_npy_dtype dt) {
    return (unsigned)dt <= DV_NPY_OBJECT ? g_dtypes[dt].size : 0;
}

const char *dv_npy_dtype_name(dv_npy_dtype dt) {
    return (unsigned)dt <= DV_NPY_OBJECT ? g_dtypes[dt].name : "?";
}

/* "<f4" -> dtype and byte order; -1 for anything this reader does not model */
static int parse_descr(const char *d, dv_npy_dtype *dt, bool *swap) {
    char order = d[0];
    if (order != '<' && order != '>' && order != '|' && order != '=') return -1;
    const char *t = d + 1;
    if (t[0] == 'O' && (t[1] == 0 || strcmp(t + 1, "8") == 0 || strcmp(t + 1, "4") == 0)) {
        *dt = DV_NPY_OBJECT;
        *swap = false;
        return 0;
    }
    static const struct { const char *t; dv_npy_dtype dt; } map[] = {
        {"b1", DV_NPY_BOOL}, {"?", DV_NPY_BOOL}, {"u1", DV_NPY_U8}, {"i1", DV_NPY_I8},
        {"u2", DV_NPY_U16},  {"i2", DV_NPY_I16}, {"u4", DV_NPY_U32}, {"i4", DV_NPY_I32},
        {"u8", DV_NPY_U64},  {"i8", DV_NPY_I64}, {"f2", DV_NPY_F16}, {"f4", DV_NPY_F32},
        {"f8", DV_NPY_F64},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(t, map[i].t) == 0) {
            *dt = map[i].dt;
            *swap = order == '>' && g_dtypes[map[i].dt].size > 1;
            return 0;
        }
    return -1;
}

/* ---------------------------------------------------------------- arrays */

void dv_npy_free(dv_npy *a) {
    if (!a) return;
    if (a->release_) a->release_(a->owner_);
    memset(a, 0, sizeof *a);
}

static int64_t shape_count(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return -1;
        if (shape[i] && n > (INT64_MAX / 16) / shape[i]) return -1;
        n *= shape[i];
    }
    return n;
}

dv_npy dv_npy_wrap(dv_npy_dtype dt, int ndim, const int64_t *shape, const void *data) {
    dv_npy a = {.dtype = dt, .ndim = ndim, .data = data};
    if (ndim < 0 || ndim > DV_NPY_MAX_DIMS) {
        fprintf(stderr, "dv_npy_wrap: ndim %d out of range [0, %d]\n", ndim, DV_NPY_MAX_DIMS);
        abort();
    }
    for (int i = 0; i < ndim; i++) a.shape[i] = shape[i];
    a.count = shape_count(ndim, shape);
    if (a.count < 0) {
        fprintf(stderr, "dv_npy_wrap: bad shape (negative or overflowing)\n");
        abort();
    }
    return a;
}

int dv_npy_alloc(dv_npy *a, dv_npy_dtype dt, int ndim, const int64_t *shape, char *err, size_t errlen) {
    memset(a, 0, sizeof *a);
    if (ndim < 0 || ndim > DV_NPY_MAX_DIMS) return ERRF("dv_npy_alloc: ndim %d out of range", ndim);
    if (dt >= DV_NPY_OBJECT) return ERRF("dv_npy_alloc: dtype %d is not numeric", (int)dt);
    int64_t n = shape_count(ndim, shape);
    if (n < 0) return ERRF("dv_npy_alloc: bad shape (negative or too large)");
    size_t bytes = (size_t)n * dv_npy_dtype_size(dt);
    void *p = calloc(1, bytes ? bytes : 1);
    if (!p) return ERRF("dv_npy_alloc: out of memory (%zu bytes)", bytes);
    a->dtype = dt;
    a->ndim = ndim;
    for (int i = 0; i < ndim; i++) a->shape[i] = shape[i];
    a->count = n;
    a->data = p;
    a->owner_ = p;
    a->release_ = free;
    return 0;
}

static float half_to_float(uint16_t h) {
    uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, m = h & 1023, bits;
    if (e == 0) {
        if (m == 0) bits = s;
        else { /* subnormal: normalise */
            int sh = 0;
            while (!(m & 1024)) { m <<= 1; sh++; }
            bits = s | (uint32_t)(113 - sh) << 23 | (m & 1023) << 13;
        }
    } else if (e == 31) bits = s | 0x7f800000u | m << 13;
    else bits = s | (e + 112) << 23 | m << 13;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

double dv_npy_get_f64(const dv_npy *a, int64_t i) {
    const void *p = a->data;
    switch (a->dtype) {
    case DV_NPY_BOOL: return ((const uint8_t *)p)[i] != 0;
    case DV_NPY_U8: return ((const uint8_t *)p)[i];
    case DV_NPY_I8: return ((const int8_t *)p)[i];
    case DV_NPY_U16: return ((const uint16_t *)p)[i];
    case DV_NPY_I16: return ((const int16_t *)p)[i];
    case DV_NPY_U32: return ((const uint32_t *)p)[i];
    case DV_NPY_I32: return ((const int32_t *)p)[i];
    case DV_NPY_U64: return (double)((const uint64_t *)p)[i];
    case DV_NPY_I64: return (double)((const int64_t *)p)[i];
    case DV_NPY_F16: return half_to_float(((const uint16_t *)p)[i]);
    case DV_NPY_F32: return ((const float *)p)[i];
    case DV_NPY_F64: return ((const double *)p)[i];
    default:
        fprintf(stderr, "dv_npy_get_f64: dtype %s is not numeric\n", dv_npy_dtype_name(a->dtype));
        abort();
    }
}

int64_t dv_npy_get_i64(const dv_npy *a, int64_t i) {
    switch (a->dtype) {
    case DV_NPY_U64: return (int64_t)((const uint64_t *)a->data)[i];
    case DV_NPY_I64: return ((const int64_t *)a->data)[i];
    case DV_NPY_F16: case DV_NPY_F32: case DV_NPY_F64: {
        double v = dv_npy_get_f64(a, i);
        if (!(v > -9.2e18 && v < 9.2e18)) return v > 0 ? INT64_MAX : INT64_MIN;
        return (int64_t)v;
    }
    default: return (int64_t)dv_npy_get_f64(a, i);
    }
}

void dv_npy_to_f32(const dv_npy *a, float *dst) {
    if (a->dtype == DV_NPY_F32) {
        memcpy(dst, a->data, (size_t)a->count * 4);
        return;
    }
    if (a->dtype == DV_NPY_U8) {
        const uint8_t *s = a->data;
        for (int64_t i = 0; i < a->count; i++) dst[i] = s[i];
        return;
    }
    if (a->dtype == DV_NPY_F64) {
        const double *s = a->data;
        for (int64_t i = 0; i < a->count; i++) dst[i] = (float)s[i];
        return;
    }
    for (int64_t i = 0; i < a->count; i++) dst[i] = (float)dv_npy_get_f64(a, i);
}

/* ---------------------------------------------------------------- header parsing */

typedef struct {
    const char *p, *end;
} lit;

static void lit_ws(lit *l) {
    while (l->p < l->end && (*l->p == ' ' || *l->p == '\t' || *l->p == '\n' || *l->p == '\r')) l->p++;
}

static bool lit_eat(lit *l, char c) {
    lit_ws(l);
    if (l->p < l->end && *l->p == c) {
        l->p++;
        return true;
    }
    return false;
}

/* a quoted string without escapes into buf[cap] */
static bool lit_str(lit *l, char *buf, size_t cap) {
    lit_ws(l);
    if (l->p >= l->end || (*l->p != '\'' && *l->p != '"')) return false;
    char q = *l->p++;
    size_t n = 0;
    while (l->p < l->end && *l->p != q) {
        if (*l->p == '\\' || n + 1 >= cap) return false;
        buf[n++] = *l->p++;
    }
    if (l->p >= l->end) return false;
    l->p++;
    buf[n] = 0;
    return true;
}

static bool lit_word(lit *l, const char *w) {
    lit_ws(l);
    size_t n = strlen(w);
    if ((size_t)(l->end - l->p) >= n && memcmp(l->p, w, n) == 0) {
        l->p += n;
        return true;
    }
    return false;
}

static bool lit_int(lit *l, int64_t *v) {
    lit_ws(l);
    int64_t x = 0;
    const char *s = l->p;
    while (l->p < l->end && *l->p >= '0' && *l->p <= '9') {
        if (x > (INT64_MAX - 9) / 10) return false;
        x = x * 10 + (*l->p++ - '0');
    }
    if (l->p == s) return false;
    if (l->p < l->end && *l->p == 'L') l->p++; /* Python 2 longs */
    *v = x;
    return true;
}

int dv_npy_parse_header(const uint8_t *buf, size_t len, const char *what, dv_npy_header *h,
                        char *err, size_t errlen) {
    memset(h, 0, sizeof *h);
    if (len < 10) return ERRF("%s: not a .npy file (only %zu bytes)", what, len);
    if (memcmp(buf, "\x93NUMPY", 6) != 0) return ERRF("%s: not a .npy file (bad magic)", what);
    int major = buf[6], minor = buf[7];
    size_t hlen, start;
    if (major == 1) {
        hlen = buf[8] | (size_t)buf[9] << 8;
        start = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12) return ERRF("%s: truncated .npy header", what);
        hlen = buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
        start = 12;
    } else {
        return ERRF("%s: unsupported .npy format version %d.%d", what, major, minor);
    }
    if (minor != 0) return ERRF("%s: unsupported .npy format version %d.%d", what, major, minor);
    if (hlen > len - start)
        return ERRF("%s: truncated .npy header (%zu bytes announced, %zu present)", what, hlen, len - start);

    lit l = {(const char *)buf + start, (const char *)buf + start + hlen};
    char descr[64] = "";
    bool have_descr = false, have_fortran = false, have_shape = false;
    if (!lit_eat(&l, '{')) return ERRF("%s: .npy header is not a dict literal", what);
    while (!lit_eat(&l, '}')) {
        char key[32];
        if (!lit_str(&l, key, sizeof key) || !lit_eat(&l, ':'))
            return ERRF("%s: malformed .npy header near byte %zu", what,
                        start + (size_t)(l.p - (const char *)buf - start));
        if (strcmp(key, "descr") == 0) {
            lit_ws(&l);
            if (l.p < l.end && *l.p == '[')
                return ERRF("%s: structured dtypes are not supported", what);
            if (!lit_str(&l, descr, sizeof descr)) return ERRF("%s: malformed 'descr' in .npy header", what);
            have_descr = true;
        } else if (strcmp(key, "fortran_order") == 0) {
            if (lit_word(&l, "True")) h->fortran = true;
            else if (lit_word(&l, "False")) h->fortran = false;
            else return ERRF("%s: 'fortran_order' is not True or False", what);
            have_fortran = true;
        } else if (strcmp(key, "shape") == 0) {
            if (!lit_eat(&l, '(')) return ERRF("%s: 'shape' is not a tuple", what);
            h->ndim = 0;
            while (!lit_eat(&l, ')')) {
                int64_t d;
                if (h->ndim == DV_NPY_MAX_DIMS)
                    return ERRF("%s: more than %d dimensions", what, DV_NPY_MAX_DIMS);
                if (!lit_int(&l, &d)) return ERRF("%s: malformed 'shape' in .npy header", what);
                h->shape[h->ndim++] = d;
                if (!lit_eat(&l, ',')) {
                    if (!lit_eat(&l, ')')) return ERRF("%s: malformed 'shape' in .npy header", what);
                    if (h->ndim == 1) return ERRF("%s: malformed 'shape' (1-tuple without comma)", what);
                    break;
                }
            }
            have_shape = true;
        } else {
            return ERRF("%s: unexpected key '%s' in .npy header", what, key);
        }
        if (!lit_eat(&l, ',')) {
            if (!lit_eat(&l, '}')) return ERRF("%s: malformed .npy header (expected ',' or '}')", what);
            break;
        }
    }
    lit_ws(&l);
    if (l.p != l.end) return ERRF("%s: trailing characters after the .npy header dict", what);
    if (!have_descr || !have_fortran || !have_shape)
        return ERRF("%s: .npy header lacks '%s'", what,
                    !have_descr ? "descr" : !have_fortran ? "fortran_order" : "shape");
    if (parse_descr(descr, &h->dtype, &h->swap) != 0)
        return ERRF("%s: unsupported dtype '%s'", what, descr);
    h->count = shape_count(h->ndim, h->shape);
    if (h->count < 0) return ERRF("%s: shape too large", what);
    h->data_offset = start + hlen;
    return 0;
}

/* ---------------------------------------------------------------- conversion */

static void swap_inplace(uint8_t *p, int64_t n, size_t size) {
    if (size == 2) {
        for (int64_t i = 0; i < n; i++) {
            uint16_t v;
            memcpy(&v, p + 2 * i, 2);
            v = __builtin_bswap16(v);
            memcpy(p + 2 * i, &v, 2);
        }
    } else if (size == 4) {
        for (int64_t i = 0; i < n; i++) {
            uint32_t v;
            memcpy(&v, p + 4 * i, 4);
            v = __builtin_bswap32(v);
            memcpy(p + 4 * i, &v, 4);
        }
    } else if (size == 8) {
        for (int64_t i = 0; i < n; i++) {
            uint64_t v;
            memcpy(&v, p + 8 * i, 8);
            v = __builtin_bswap64(v);
            memcpy(p + 8 * i, &v, 8);
        }
    }
}

void dv_npy_convert(const dv_npy_header *h, const uint8_t *src, void *dst_) {
    uint8_t *dst = dst_;
    size_t size = dv_npy_dtype_size(h->dtype);
    if (!h->fortran || h->ndim <= 1) {
        memcpy(dst, src, (size_t)h->count * size);
    } else if (h->count > 0) {
        /* walk the C-order multi-index; the Fortran offset of (i0..in-1) is sum i_k * fs_k
         * with fs_k = d_0 * ... * d_{k-1} */
        int n = h->ndim;
        int64_t idx[DV_NPY_MAX_DIMS] = {0}, fs[DV_NPY_MAX_DIMS];
        fs[0] = 1;
        for (int k = 1; k < n; k++) fs[k] = fs[k - 1] * h->shape[k - 1];
        int64_t off = 0;
        for (int64_t i = 0; i < h->count; i++) {
            memcpy(dst + (size_t)i * size, src + (size_t)off * size, size);
            for (int k = n - 1; k >= 0; k--) {
                off += fs[k];
                if (++idx[k] < h->shape[k]) break;
                off -= fs[k] * h->shape[k];
                idx[k] = 0;
            }
        }
    }
    if (h->swap) swap_inplace(dst, h->count, size);
}

static void malloc_release(void *p) { free(p); }

int dv_npy_from_header(const dv_npy_header *h, const uint8_t *data, size_t len, const char *what,
                       dv_npy_map *owner, dv_npy *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (h->dtype == DV_NPY_OBJECT)
        return ERRF("%s: an object array (pickled): read it with dv_npy_load_pickled", what);
    size_t size = dv_npy_dtype_size(h->dtype);
    size_t bytes = (size_t)h->count * size;
    if (len < bytes) return ERRF("%s: truncated data (%zu of %zu bytes)", what, len, bytes);
    if (len > bytes) return ERRF("%s: %zu bytes after the data (shape says %zu)", what, len - bytes, bytes);
    out->dtype = h->dtype;
    out->ndim = h->ndim;
    memcpy(out->shape, h->shape, sizeof out->shape);
    out->count = h->count;
    bool plain = !h->swap && (!h->fortran || h->ndim <= 1);
    if (owner && plain && ((uintptr_t)data % size) == 0) {
        dv_npy_map_ref(owner);
        out->data = data;
        out->owner_ = owner;
        out->release_ = dv_npy_map_unref;
        return 0;
    }
    void *p = malloc(bytes ? bytes : 1);
    if (!p) return ERRF("%s: out of memory (%zu bytes)", what, bytes);
    dv_npy_convert(h, data, p);
    out->data = p;
    out->owner_ = p;
    out->release_ = malloc_release;
    return 0;
}

/* ---------------------------------------------------------------- mappings */

int dv_npy_map_file(const char *path, dv_npy_map **out, char *err, size_t errlen) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ERRF("%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return ERRF("%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return ERRF("%s: not a regular file", path);
    }
    dv_npy_map *m = calloc(1, sizeof *m);
    if (!m) {
        close(fd);
        return ERRF("%s: out of memory", path);
    }
    m->refs = 1;
    m->len = (size_t)st.st_size;
    if (m->len == 0) {
        m->base = (const uint8_t *)"";
    } else {
        void *p = mmap(NULL, m->len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p != MAP_FAILED) {
            m->base = p;
            m->mapped = true;
        } else { /* e.g. a file system without mmap: read it */
            uint8_t *b = malloc(m->len);
            size_t got = 0;
            while (b && got < m->len) {
                ssize_t r = pread(fd, b + got, m->len - got, (off_t)got);
                if (r <= 0) break;
                got += (size_t)r;
            }
            if (!b || got != m->len) {
                free(b);
                free(m);
                close(fd);
                return ERRF("%s: cannot read", path);
            }
            m->base = b;
        }
    }
    close(fd);
    *out = m;
    return 0;
}

void dv_npy_map_ref(dv_npy_map *m) { __atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED); }

void dv_npy_map_unref(void *p) {
    dv_npy_map *m = p;
    if (!m || __atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
    if (m->mapped) munmap((void *)m->base, m->len);
    else if (m->len) free((void *)m->base);
    free(m);
}

/* ---------------------------------------------------------------- loading */

int dv_npy_parse(const void *buf, size_t len, const char *what, dv_npy *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    dv_npy_header h;
    if (dv_npy_parse_header(buf, len, what, &h, err, errlen) != 0) return -1;
    return dv_npy_from_header(&h, (const uint8_t *)buf + h.data_offset, len - h.data_offset, what,
                              NULL, out, err, errlen);
}

int dv_npy_load(const char *path, dv_npy *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    dv_npy_map *m;
    if (dv_npy_map_file(path, &m, err, errlen) != 0) return -1;
    dv_npy_header h;
    int rc = dv_npy_parse_header(m->base, m->len, path, &h, err, errlen);
    if (rc == 0)
        rc = dv_npy_from_header(&h, m->base + h.data_offset, m->len - h.data_offset, path, m, out,
                                err, errlen);
    dv_npy_map_unref(m);
    return rc;
}

/* ---------------------------------------------------------------- writing */

size_t dv_npy_header_bytes(dv_npy_dtype dt, const char *descr, int ndim, const int64_t *shape,
                           char *buf, size_t cap) {
    /* numpy 1.24 format._write_array_header: the dict literal, 21 - len(repr(shape[0]))
     * spaces of room to grow the first axis in place, then spaces and '\n' up to a multiple
     * of 64 bytes (a whole 64 more when it is already a multiple) */
    char dict[1024];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < ndim; i++)
        n += snprintf(dict + n, sizeof dict - (size_t)n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    n += snprintf(dict + n, sizeof dict - (size_t)n, "%s), }", ndim == 1 ? "," : "");
    if (ndim > 0) {
        char d0[32];
        int len0 = snprintf(d0, sizeof d0, "%lld", (long long)shape[0]);
        for (int i = len0; i < 21; i++) dict[n++] = ' ';
    }
    (void)dt;
    size_t hlen = (size_t)n + 1, prefix = 10;
    size_t pad = 64 - (prefix + hlen) % 64;
    if (hlen + pad > 65535) { /* version 2.0: a 4-byte header length */
        prefix = 12;
        pad = 64 - (prefix + hlen) % 64;
    }
    size_t total = prefix + hlen + pad;
    if (total > cap) return 0;
    memcpy(buf, "\x93NUMPY", 6);
    size_t body = hlen + pad;
    if (prefix == 10) {
        buf[6] = 1, buf[7] = 0;
        buf[8] = (char)(body & 255), buf[9] = (char)(body >> 8);
    } else {
        buf[6] = 2, buf[7] = 0;
        for (int i = 0; i < 4; i++) buf[8 + i] = (char)(body >> (8 * i));
    }
    memcpy(buf + prefix, dict, (size_t)n);
    memset(buf + prefix + n, ' ', pad);
    buf[total - 1] = '\n';
    return total;
}

int dv_npy_atomic_open(dv_npy_atomic *w, const char *path, char *err, size_t errlen) {
    static int counter;
    memset(w, 0, sizeof *w);
    size_t n = strlen(path) + 64;
    w->path = strdup(path);
    w->tmp = malloc(n);
    if (!w->path || !w->tmp) {
        free(w->path), free(w->tmp);
        return ERRF("%s: out of memory", path);
    }
    snprintf(w->tmp, n, "%s.tmp.%ld.%d", path, (long)getpid(),
             __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
    w->f = fopen(w->tmp, "wb");
    if (!w->f) {
        int e = errno;
        ERRF("%s: cannot create %s: %s", path, w->tmp, strerror(e));
        free(w->path), free(w->tmp);
        memset(w, 0, sizeof *w);
        return -1;
    }
    return 0;
}

int dv_npy_atomic_write(dv_npy_atomic *w, const void *p, size_t n, char *err, size_t errlen) {
    if (w->failed) return -1;
    if (n && fwrite(p, 1, n, w->f) != n) {
        w->failed = true;
        return ERRF("%s: write failed: %s", w->tmp, strerror(errno));
    }
    return 0;
}

void dv_npy_atomic_abort(dv_npy_atomic *w) {
    if (w->f) fclose(w->f);
    if (w->tmp) unlink(w->tmp);
    free(w->path), free(w->tmp);
    memset(w, 0, sizeof *w);
}

int dv_npy_atomic_commit(dv_npy_atomic *w, char *err, size_t errlen) {
    if (w->failed) {
        dv_npy_atomic_abort(w);
        return -1;
    }
    int rc = 0;
    if (fflush(w->f) != 0 || fsync(fileno(w->f)) != 0) rc = ERRF("%s: write failed: %s", w->tmp, strerror(errno));
    if (fclose(w->f) != 0 && rc == 0) rc = ERRF("%s: close failed: %s", w->tmp, strerror(errno));
    w->f = NULL;
    if (rc == 0 && rename(w->tmp, w->path) != 0)
        rc = ERRF("%s: cannot rename %s into place: %s", w->path, w->tmp, strerror(errno));
    if (rc != 0) unlink(w->tmp);
    free(w->path), free(w->tmp);
    memset(w, 0, sizeof *w);
    return rc;
}

int dv_npy_save(const char *path, const dv_npy *a, char *err, size_t errlen) {
    if (a->dtype >= DV_NPY_OBJECT)
        return ERRF("%s: dv_npy_save writes numeric arrays (dtype %s): use dv_npy_save_pickled", path,
                    dv_npy_dtype_name(a->dtype));
    if (a->ndim < 0 || a->ndim > DV_NPY_MAX_DIMS) return ERRF("%s: ndim %d out of range", path, a->ndim);
    char hdr[4096];
    size_t hn = dv_npy_header_bytes(a->dtype, dv_npy_dtype_name(a->dtype), a->ndim, a->shape, hdr, sizeof hdr);
    if (!hn) return ERRF("%s: header too long", path);
    dv_npy_atomic w;
    if (dv_npy_atomic_open(&w, path, err, errlen) != 0) return -1;
    dv_npy_atomic_write(&w, hdr, hn, err, errlen);
    dv_npy_atomic_write(&w, a->data, (size_t)a->count * dv_npy_dtype_size(a->dtype), err, errlen);
    return dv_npy_atomic_commit(&w, err, errlen);
}
