/* data/calvin/npz.c — numpy's .npz archives: zip files (PKWARE APPNOTE 6.3) of "<key>.npy"
 * members, as written by np.savez (stored) and np.savez_compressed (deflated).
 *
 * Reading maps the whole file read-only and trusts only the central directory (found from
 * the end-of-central-directory record, or its zip64 twin when a zip64 locator precedes it);
 * every offset and size is checked against the file before use, and every member's CRC-32
 * is checked. A stored member aligned in the file comes back as a view into the mapping
 * (zero copy); a deflated one is inflated in one pass into the buffer the array keeps.
 *
 * Writing produces what zipfile produces for np.savez / np.savez_compressed, except that
 * timestamps are fixed at 1980-01-01 00:00 (outputs are reproducible), a member that deflate
 * would not shrink is stored even in a compressed archive (stb's deflate uses fixed Huffman
 * codes only and cannot shrink noise-like images; np.load reads mixed archives), sizes go in the
 * local header (no data descriptors), and the local header of a stored member carries a
 * padding extra field (id 0xD935, as Android's zipalign) so that its array data starts at a
 * multiple of 64 bytes in the file — what makes the zero-copy read possible. zip64 records
 * are written only when a size, an offset or the member count needs them.
 *
 * Not here: encryption, multi-disk archives, compression methods other than store and
 * deflate, members of 2 GiB or more when deflated (stb's int sizes).
 */
#include "data/calvin/npy_internal.h"

#include <stdlib.h>
#include <string.h>

#define ERRF(...) dv_errf(err, errlen, __VA_ARGS__)

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOC64 0x07064b50u
#define U32_MAX_FIELD 0xFFFFFFFFu

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) {
    return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

typedef struct {
    char *name, *key;
    uint64_t csize, usize, local;
    uint32_t crc;
    uint16_t method, flags;
} npz_entry;

struct dv_npz {
    char *path;
    dv_npy_map *map;
    npz_entry *e;
    int n;
};

void dv_npz_close(dv_npz *z) {
    if (!z) return;
    for (int i = 0; i < z->n; i++) free(z->e[i].name);
    free(z->e);
    if (z->map) dv_npy_map_unref(z->map);
    free(z->path);
    free(z);
}

int dv_npz_count(const dv_npz *z) { return z->n; }
const char *dv_npz_key(const dv_npz *z, int i) { return i >= 0 && i < z->n ? z->e[i].key : NULL; }

static int find(const dv_npz *z, const char *key) {
    for (int i = z->n - 1; i >= 0; i--) /* the last of duplicate names wins, as in zipfile */
        if (strcmp(z->e[i].key, key) == 0) return i;
    return -1;
}

bool dv_npz_has(const dv_npz *z, const char *key) { return find(z, key) >= 0; }

/* the zip64 extended information extra field: replaces the fields that are 0xFFFFFFFF */
static int zip64_extra(const uint8_t *x, size_t xn, uint64_t *usize, uint64_t *csize, uint64_t *local) {
    size_t i = 0;
    while (i + 4 <= xn) {
        uint16_t id = rd16(x + i), n = rd16(x + i + 2);
        if (i + 4 + n > xn) return -1;
        if (id == 1) {
            const uint8_t *p = x + i + 4, *end = p + n;
            uint64_t *f[3] = {usize, csize, local};
            for (int k = 0; k < 3; k++) {
                if (!f[k] || *f[k] != U32_MAX_FIELD) continue;
                if (p + 8 > end) return -1;
                *f[k] = rd64(p);
                p += 8;
            }
            return 0;
        }
        i += 4 + (size_t)n;
    }
    return 0;
}

/* reads the directory of z->map (path: z->path) */
static int npz_index(dv_npz *z, char *err, size_t errlen) {
    const char *path = z->path;
    const uint8_t *b = z->map->base;
    size_t len = z->map->len;

    /* end of central directory: 22 bytes + a comment of up to 65535 */
    if (len < 22) {
        return ERRF("%s: not a zip archive (%zu bytes)", path, len);
    }
    size_t eocd = (size_t)-1;
    size_t lo = len > 22 + 65535 ? len - 22 - 65535 : 0;
    for (size_t p = len - 22 + 1; p-- > lo;)
        if (rd32(b + p) == SIG_EOCD && p + 22 + rd16(b + p + 20) <= len) {
            eocd = p;
            break;
        }
    if (eocd == (size_t)-1) {
        return ERRF("%s: not a zip archive (no end of central directory record)", path);
    }
    uint64_t count = rd16(b + eocd + 10), cd_size = rd32(b + eocd + 12), cd_off = rd32(b + eocd + 16);
    if (rd16(b + eocd + 4) != 0 || rd16(b + eocd + 6) != 0 || rd16(b + eocd + 8) != count) {
        return ERRF("%s: multi-disk zip archives are not supported", path);
    }
    if (eocd >= 20 && rd32(b + eocd - 20) == SIG_LOC64) {
        uint64_t e64 = rd64(b + eocd - 20 + 8);
        if (e64 > len || len - e64 < 56 || rd32(b + e64) != SIG_EOCD64) {
            return ERRF("%s: bad zip64 end of central directory (offset %llu)", path, (unsigned long long)e64);
        }
        count = rd64(b + e64 + 32);
        cd_size = rd64(b + e64 + 40);
        cd_off = rd64(b + e64 + 48);
    }
    if (cd_off > len || cd_size > len - cd_off) {
        return ERRF("%s: central directory (offset %llu, %llu bytes) lies outside the file", path,
                    (unsigned long long)cd_off, (unsigned long long)cd_size);
    }
    if (count > cd_size / 46) {
        return ERRF("%s: central directory too small for %llu entries", path, (unsigned long long)count);
    }
    z->e = calloc(count ? count : 1, sizeof *z->e);
    if (!z->e) {
        return ERRF("%s: out of memory", path);
    }
    const uint8_t *p = b + cd_off, *end = b + cd_off + cd_size;
    for (uint64_t i = 0; i < count; i++) {
        if (end - p < 46 || rd32(p) != SIG_CENTRAL) {
            return ERRF("%s: bad central directory entry %llu (offset %zu)", path, (unsigned long long)i,
                        (size_t)(p - b));
        }
        npz_entry *e = &z->e[z->n];
        e->flags = rd16(p + 8);
        e->method = rd16(p + 10);
        e->crc = rd32(p + 16);
        e->csize = rd32(p + 20);
        e->usize = rd32(p + 24);
        size_t nn = rd16(p + 28), xn = rd16(p + 30), cn = rd16(p + 32);
        e->local = rd32(p + 42);
        if ((size_t)(end - p) < 46 + nn + xn + cn) {
            return ERRF("%s: central directory entry %llu runs past the directory", path, (unsigned long long)i);
        }
        if (zip64_extra(p + 46 + nn, xn, &e->usize, &e->csize, &e->local) != 0) {
            return ERRF("%s: bad zip64 extra field in entry %llu", path, (unsigned long long)i);
        }
        e->name = malloc(2 * nn + 2);
        if (!e->name) {
            return ERRF("%s: out of memory", path);
        }
        memcpy(e->name, p + 46, nn);
        e->name[nn] = 0;
        if (strlen(e->name) != nn) {
            free(e->name);
            e->name = NULL;
            return ERRF("%s: member name with a NUL byte in entry %llu", path, (unsigned long long)i);
        }
        e->key = e->name + nn + 1;
        memcpy(e->key, e->name, nn + 1);
        if (nn > 4 && strcmp(e->key + nn - 4, ".npy") == 0) e->key[nn - 4] = 0;
        z->n++;
        p += 46 + nn + xn + cn;
    }
    return 0;
}

static int npz_finish(dv_npz *z, dv_npz **out, char *err, size_t errlen) {
    if (npz_index(z, err, errlen) != 0) {
        dv_npz_close(z);
        return -1;
    }
    *out = z;
    return 0;
}

int dv_npz_open(const char *path, dv_npz **out, char *err, size_t errlen) {
    *out = NULL;
    dv_npz *z = calloc(1, sizeof *z);
    if (!z || !(z->path = strdup(path))) {
        free(z);
        return ERRF("%s: out of memory", path);
    }
    if (dv_npy_map_file(path, &z->map, err, errlen) != 0) {
        dv_npz_close(z);
        return -1;
    }
    return npz_finish(z, out, err, errlen);
}

int dv_npz_open_buffer(const void *buf, size_t len, const char *what, dv_npz **out, char *err, size_t errlen) {
    *out = NULL;
    dv_npz *z = calloc(1, sizeof *z);
    dv_npy_map *m = calloc(1, sizeof *m);
    uint8_t *copy = malloc(len ? len : 1);
    if (!z || !m || !copy || !(z->path = strdup(what))) {
        free(z), free(m), free(copy);
        return ERRF("%s: out of memory", what);
    }
    if (len) memcpy(copy, buf, len);
    m->refs = 1, m->base = copy, m->len = len, m->mapped = false;
    if (!len) free(copy), m->base = (const uint8_t *)"";
    z->map = m;
    return npz_finish(z, out, err, errlen);
}

static void free_release(void *p) { free(p); }

int dv_npz_get(dv_npz *z, const char *key, dv_npy *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    int i = find(z, key);
    if (i < 0) return ERRF("%s: no key '%s' in the archive", z->path, key);
    const npz_entry *e = &z->e[i];
    char what[1024];
    snprintf(what, sizeof what, "%s: member '%s'", z->path, e->name);
    const uint8_t *b = z->map->base;
    size_t len = z->map->len;
    if (e->flags & 1) return ERRF("%s: encrypted", what);
    if (e->method != 0 && e->method != 8)
        return ERRF("%s: compression method %d (only stored and deflate are supported)", what, e->method);
    if (e->local > len || len - e->local < 30 || rd32(b + e->local) != SIG_LOCAL)
        return ERRF("%s: bad local header (offset %llu)", what, (unsigned long long)e->local);
    uint64_t data = e->local + 30 + rd16(b + e->local + 26) + rd16(b + e->local + 28);
    if (data > len || e->csize > len - data)
        return ERRF("%s: data (%llu bytes at offset %llu) runs past the end of the file", what,
                    (unsigned long long)e->csize, (unsigned long long)data);
    const uint8_t *src = b + data;

    if (e->method == 0) {
        if (e->csize != e->usize) return ERRF("%s: stored member with different sizes", what);
        if (dv_crc32(0, src, e->csize) != e->crc) return ERRF("%s: CRC-32 mismatch", what);
        dv_npy_header h;
        if (dv_npy_parse_header(src, e->usize, what, &h, err, errlen) != 0) return -1;
        return dv_npy_from_header(&h, src + h.data_offset, e->usize - h.data_offset, what, z->map, out, err,
                                  errlen);
    }
    /* deflated: inflate header + data into one buffer; the array keeps it when the data can
     * be used in place */
    if (e->usize > (uint64_t)1 << 31) return ERRF("%s: deflated member of %llu bytes is too large", what,
                                                  (unsigned long long)e->usize);
    if (e->usize > e->csize * 1032 + 64) /* deflate cannot expand more than 1032:1 */
        return ERRF("%s: %llu bytes cannot inflate to %llu", what, (unsigned long long)e->csize,
                    (unsigned long long)e->usize);
    uint8_t *buf = malloc(e->usize ? e->usize : 1);
    if (!buf) return ERRF("%s: out of memory (%llu bytes)", what, (unsigned long long)e->usize);
    if (dv_inflate_raw(src, e->csize, len - data - e->csize, buf, e->usize) != 0) {
        free(buf);
        return ERRF("%s: corrupt deflate stream (or not %llu bytes long)", what, (unsigned long long)e->usize);
    }
    if (dv_crc32(0, buf, e->usize) != e->crc) {
        free(buf);
        return ERRF("%s: CRC-32 mismatch", what);
    }
    dv_npy_header h;
    if (dv_npy_parse_header(buf, e->usize, what, &h, err, errlen) != 0) {
        free(buf);
        return -1;
    }
    size_t size = dv_npy_dtype_size(h.dtype);
    bool plain = h.dtype != DV_NPY_OBJECT && !h.swap && (!h.fortran || h.ndim <= 1) &&
                 h.data_offset % (size ? size : 1) == 0;
    if (plain) {
        size_t bytes = (size_t)h.count * size;
        size_t have = e->usize - h.data_offset;
        if (have != bytes) {
            free(buf);
            return ERRF("%s: %s (%zu bytes of data, shape says %zu)", what,
                        have < bytes ? "truncated data" : "extra data", have, bytes);
        }
        out->dtype = h.dtype;
        out->ndim = h.ndim;
        memcpy(out->shape, h.shape, sizeof out->shape);
        out->count = h.count;
        out->data = buf + h.data_offset;
        out->owner_ = buf;
        out->release_ = free_release;
        return 0;
    }
    int rc = dv_npy_from_header(&h, buf + h.data_offset, e->usize - h.data_offset, what, NULL, out, err, errlen);
    free(buf);
    return rc;
}

/* ---------------------------------------------------------------- writing */

typedef struct {
    char *name;
    uint64_t csize, usize, local;
    uint32_t crc;
    uint16_t method;
} wentry;

struct dv_npz_writer {
    dv_npy_atomic f;
    bool compress;
    uint64_t off;
    wentry *e;
    int n, cap;
};

static void put16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, v & 0xffff), put16(p + 2, v >> 16); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v), put32(p + 4, (uint32_t)(v >> 32)); }

#define DOS_DATE 0x0021 /* 1980-01-01 */
#define DOS_TIME 0

int dv_npz_writer_open(const char *path, bool compress, dv_npz_writer **out, char *err, size_t errlen) {
    *out = NULL;
    dv_npz_writer *w = calloc(1, sizeof *w);
    if (!w) return ERRF("%s: out of memory", path);
    if (dv_npy_atomic_open(&w->f, path, err, errlen) != 0) {
        free(w);
        return -1;
    }
    w->compress = compress;
    *out = w;
    return 0;
}

static void writer_free(dv_npz_writer *w) {
    for (int i = 0; i < w->n; i++) free(w->e[i].name);
    free(w->e);
    free(w);
}

void dv_npz_writer_abort(dv_npz_writer *w) {
    if (!w) return;
    dv_npy_atomic_abort(&w->f);
    writer_free(w);
}

static int wr(dv_npz_writer *w, const void *p, size_t n, char *err, size_t errlen) {
    if (dv_npy_atomic_write(&w->f, p, n, err, errlen) != 0) return -1;
    w->off += n;
    return 0;
}

int dv_npz_writer_add(dv_npz_writer *w, const char *key, const dv_npy *a, char *err, size_t errlen) {
    const char *path = w->f.path;
    if (w->f.failed) return ERRF("%s: an earlier write failed", path);
    size_t kn = strlen(key);
    if (kn == 0 || kn > 60000) return ERRF("%s: bad key '%.40s' (empty or too long)", path, key);
    if (a->dtype >= DV_NPY_OBJECT)
        return ERRF("%s: key '%s': npz members must be numeric (dtype %s)", path, key, dv_npy_dtype_name(a->dtype));
    if (a->ndim < 0 || a->ndim > DV_NPY_MAX_DIMS) return ERRF("%s: key '%s': bad ndim %d", path, key, a->ndim);
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 16;
        wentry *e = realloc(w->e, (size_t)cap * sizeof *e);
        if (!e) return ERRF("%s: out of memory", path);
        w->e = e, w->cap = cap;
    }
    char hdr[4096];
    size_t hn = dv_npy_header_bytes(a->dtype, dv_npy_dtype_name(a->dtype), a->ndim, a->shape, hdr, sizeof hdr);
    if (!hn) return ERRF("%s: key '%s': header too long", path, key);
    size_t dn = (size_t)a->count * dv_npy_dtype_size(a->dtype);

    wentry e = {.usize = hn + dn, .local = w->off, .method = w->compress ? 8 : 0};
    e.name = malloc(kn + 5);
    if (!e.name) return ERRF("%s: out of memory", path);
    memcpy(e.name, key, kn);
    memcpy(e.name + kn, ".npy", 5);
    uint8_t *packed = NULL, *z = NULL;
    if (w->compress) {
        packed = malloc(e.usize);
        if (!packed) {
            free(e.name);
            return ERRF("%s: out of memory", path);
        }
        memcpy(packed, hdr, hn);
        if (dn) memcpy(packed + hn, a->data, dn);
        e.crc = dv_crc32(0, packed, e.usize);
        size_t zn;
        if (dv_deflate_raw(packed, e.usize, &z, &zn) != 0) {
            free(packed), free(e.name);
            return ERRF("%s: key '%s': deflate failed (out of memory or over 1 GiB)", path, key);
        }
        free(packed);
        e.csize = zn;
        if (zn >= e.usize) { /* deflate did not help (noise-like data): store the member */
            free(z);
            z = NULL;
            e.method = 0;
            e.csize = e.usize;
        }
    } else {
        e.crc = dv_crc32(dv_crc32(0, hdr, hn), a->data, dn);
        e.csize = e.usize;
    }

    /* local header [+ zip64 sizes] [+ alignment padding] */
    bool big = e.usize >= U32_MAX_FIELD || e.csize >= U32_MAX_FIELD;
    size_t xn = big ? 20 : 0;
    size_t pad = 0;
    if (e.method == 0) {
        size_t at = (size_t)((w->off + 30 + kn + 4 + xn + 4) % 64);
        pad = 4 + (64 - at) % 64;
    }
    uint8_t lh[30 + 20 + 4 + 64];
    put32(lh, SIG_LOCAL);
    put16(lh + 4, big ? 45 : 20);
    put16(lh + 6, 0);
    put16(lh + 8, e.method);
    put16(lh + 10, DOS_TIME);
    put16(lh + 12, DOS_DATE);
    put32(lh + 14, e.crc);
    put32(lh + 18, big ? U32_MAX_FIELD : (uint32_t)e.csize);
    put32(lh + 22, big ? U32_MAX_FIELD : (uint32_t)e.usize);
    put16(lh + 26, (uint32_t)kn + 4);
    put16(lh + 28, (uint32_t)(xn + pad));
    size_t ln = 30;
    uint8_t *x = lh + 30;
    if (big) {
        put16(x, 1), put16(x + 2, 16), put64(x + 4, e.usize), put64(x + 12, e.csize);
        x += 20, ln += 20;
    }
    if (pad) {
        put16(x, 0xD935), put16(x + 2, (uint32_t)pad - 4);
        memset(x + 4, 0, pad - 4);
        ln += pad;
    }
    int rc = wr(w, lh, 30, err, errlen);
    if (rc == 0) rc = wr(w, e.name, kn + 4, err, errlen);
    if (rc == 0) rc = wr(w, lh + 30, ln - 30, err, errlen);
    if (e.method == 8) {
        if (rc == 0) rc = wr(w, z, e.csize, err, errlen);
        free(z);
    } else {
        if (rc == 0) rc = wr(w, hdr, hn, err, errlen);
        if (rc == 0) rc = wr(w, a->data, dn, err, errlen);
    }
    if (rc != 0) {
        free(e.name);
        return -1;
    }
    w->e[w->n++] = e;
    return 0;
}

int dv_npz_writer_close(dv_npz_writer *w, char *err, size_t errlen) {
    if (w->f.failed) {
        dv_npz_writer_abort(w);
        return ERRF("dv_npz_writer_close: an earlier write failed");
    }
    uint64_t cd_off = w->off;
    int rc = 0;
    for (int i = 0; i < w->n && rc == 0; i++) {
        const wentry *e = &w->e[i];
        size_t kn = strlen(e->name);
        bool bu = e->usize >= U32_MAX_FIELD, bc = e->csize >= U32_MAX_FIELD, bo = e->local >= U32_MAX_FIELD;
        uint8_t c[46 + 28];
        put32(c, SIG_CENTRAL);
        put16(c + 4, (3u << 8) | 45);                 /* made by: unix, 4.5 */
        put16(c + 6, bu || bc || bo ? 45 : 20);       /* needed */
        put16(c + 8, 0);
        put16(c + 10, e->method);
        put16(c + 12, DOS_TIME);
        put16(c + 14, DOS_DATE);
        put32(c + 16, e->crc);
        put32(c + 20, bc ? U32_MAX_FIELD : (uint32_t)e->csize);
        put32(c + 24, bu ? U32_MAX_FIELD : (uint32_t)e->usize);
        put16(c + 28, (uint32_t)kn);
        size_t xn = (bu || bc || bo) ? 4 + 8 * (bu + bc + bo) : 0;
        put16(c + 30, (uint32_t)xn);
        put16(c + 32, 0);
        put16(c + 34, 0);
        put16(c + 36, 0);
        put32(c + 38, 0100644u << 16);                 /* -rw-r--r-- */
        put32(c + 42, bo ? U32_MAX_FIELD : (uint32_t)e->local);
        uint8_t *x = c + 46;
        if (xn) {
            put16(x, 1), put16(x + 2, (uint32_t)xn - 4);
            x += 4;
            if (bu) put64(x, e->usize), x += 8;
            if (bc) put64(x, e->csize), x += 8;
            if (bo) put64(x, e->local), x += 8;
        }
        rc = wr(w, c, 46, err, errlen);
        if (rc == 0) rc = wr(w, e->name, kn, err, errlen);
        if (rc == 0) rc = wr(w, c + 46, xn, err, errlen);
    }
    uint64_t cd_size = w->off - cd_off;
    bool z64 = w->n >= 0xFFFF || cd_off >= U32_MAX_FIELD || cd_size >= U32_MAX_FIELD;
    if (rc == 0 && z64) {
        uint8_t r[56 + 20];
        uint64_t at = w->off;
        put32(r, SIG_EOCD64);
        put64(r + 4, 44);
        put16(r + 12, (3u << 8) | 45);
        put16(r + 14, 45);
        put32(r + 16, 0);
        put32(r + 20, 0);
        put64(r + 24, (uint64_t)w->n);
        put64(r + 32, (uint64_t)w->n);
        put64(r + 40, cd_size);
        put64(r + 48, cd_off);
        put32(r + 56, SIG_LOC64);
        put32(r + 60, 0);
        put64(r + 64, at);
        put32(r + 72, 1);
        rc = wr(w, r, sizeof r, err, errlen);
    }
    if (rc == 0) {
        uint8_t r[22];
        put32(r, SIG_EOCD);
        put16(r + 4, 0);
        put16(r + 6, 0);
        put16(r + 8, w->n >= 0xFFFF ? 0xFFFF : (uint32_t)w->n);
        put16(r + 10, w->n >= 0xFFFF ? 0xFFFF : (uint32_t)w->n);
        put32(r + 12, cd_size >= U32_MAX_FIELD ? U32_MAX_FIELD : (uint32_t)cd_size);
        put32(r + 16, cd_off >= U32_MAX_FIELD ? U32_MAX_FIELD : (uint32_t)cd_off);
        put16(r + 20, 0);
        rc = wr(w, r, sizeof r, err, errlen);
    }
    if (rc != 0) {
        dv_npz_writer_abort(w);
        return -1;
    }
    rc = dv_npy_atomic_commit(&w->f, err, errlen);
    writer_free(w);
    return rc;
}
