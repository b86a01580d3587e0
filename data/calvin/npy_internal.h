/* data/calvin/npy_internal.h — what npy.c, npz.c, pickle.c and deflate.c share and nobody
 * else needs: the parsed .npy header, read-only file mappings with a reference count, the
 * atomic file writer, CRC-32 and raw deflate. Not a public interface.
 */
#ifndef DV_DATA_CALVIN_NPY_INTERNAL_H
#define DV_DATA_CALVIN_NPY_INTERNAL_H

#include "data/calvin/npy.h"

#include <stdio.h>

#include "tensor/tensor.h" /* dv_errf */

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "data/calvin assumes a little-endian host (arrays are handed over in host order)"
#endif

/* a parsed .npy header */
typedef struct {
    dv_npy_dtype dtype;
    bool swap;          /* file byte order differs from the host's */
    bool fortran;
    int ndim;
    int64_t shape[DV_NPY_MAX_DIMS];
    int64_t count;
    size_t data_offset; /* bytes from the start of the file to the data */
} dv_npy_header;

/* parses magic, version and the header literal of a .npy image of len bytes; checks that
 * count * itemsize fits in 63 bits (not that the data is all there) */
int dv_npy_parse_header(const uint8_t *buf, size_t len, const char *what, dv_npy_header *h,
                        char *err, size_t errlen);
/* numeric data of a parsed header (bytes after data_offset: exactly count*size) into *out:
 * zero copy when `owner` is non-NULL, the data aligned, C order and host order (out takes a
 * reference via dv_npy_map_ref), else converted into malloc'd memory */
struct dv_npy_map;
int dv_npy_from_header(const dv_npy_header *h, const uint8_t *data, size_t len, const char *what,
                       struct dv_npy_map *owner, dv_npy *out, char *err, size_t errlen);
/* C order, host byte order copy of n elements laid out as the file has them */
void dv_npy_convert(const dv_npy_header *h, const uint8_t *src, void *dst);

/* a read-only mapping of a whole file, shared by the arrays pointing into it */
typedef struct dv_npy_map {
    int refs;          /* atomic */
    const uint8_t *base;
    size_t len;
    bool mapped;       /* munmap (true) or free (false) */
} dv_npy_map;
int dv_npy_map_file(const char *path, dv_npy_map **out, char *err, size_t errlen);
void dv_npy_map_ref(dv_npy_map *m);
void dv_npy_map_unref(void *m); /* dv_npy release_ signature */

/* writes <path>.tmp.<pid>, then dv_npy_atomic_commit fsyncs and renames it into place */
typedef struct {
    FILE *f;
    char *path, *tmp;
    bool failed;
} dv_npy_atomic;
int dv_npy_atomic_open(dv_npy_atomic *w, const char *path, char *err, size_t errlen);
int dv_npy_atomic_write(dv_npy_atomic *w, const void *p, size_t n, char *err, size_t errlen);
int dv_npy_atomic_commit(dv_npy_atomic *w, char *err, size_t errlen); /* closes w */
void dv_npy_atomic_abort(dv_npy_atomic *w);                            /* removes the tmp file */

/* the .npy header numpy writes for shape/dtype (version 1.0, or 2.0 when it does not fit):
 * magic..'\n', its length a multiple of 64; returns the length, header into buf[cap] */
size_t dv_npy_header_bytes(dv_npy_dtype dt, const char *descr, int ndim, const int64_t *shape,
                           char *buf, size_t cap);

/* CRC-32 (zip's, polynomial 0xEDB88320), continuing from crc (0 to start) */
uint32_t dv_crc32(uint32_t crc, const void *p, size_t n);
uint32_t dv_crc32_portable(uint32_t crc, const void *p, size_t n); /* tables only: the reference */
/* raw deflate (no zlib header): inflate exactly dst_len bytes, -1 when the stream is corrupt,
 * ends early or has more output than dst_len. `slack`: how many bytes after src+src_len are
 * readable (inflate.c needs none; stb's decoder looks ahead, and with less than 8 the
 * stream is copied for it) */
int dv_inflate_raw(const uint8_t *src, size_t src_len, size_t slack, uint8_t *dst, size_t dst_len);
/* the same with stb_image's decoder (the reference; ~5x slower) */
int dv_inflate_raw_stb(const uint8_t *src, size_t src_len, size_t slack, uint8_t *dst, size_t dst_len);
/* raw deflate of src into a malloc'd buffer (*out, *out_len); -1 on out of memory / too big */
int dv_deflate_raw(const uint8_t *src, size_t src_len, uint8_t **out, size_t *out_len);

#endif
