/* data/calvin/npy.h — numpy's .npy and .npz files, read and written in plain C.
 *
 * CALVIN stores one .npz per frame (np.savez / np.savez_compressed) plus a few .npy files
 * (ep_start_end_ids.npy, scene_info.npy, lang_annotations/auto_lang_ann.npy — the last one a
 * pickled dict, see data/calvin/pickle.h). dualvla reads them as they are: no Python, no
 * conversion step, no zlib (deflated zip members are inflated by data/calvin/inflate.c, checked
 * against stb_image's decoder; members are compressed with stb_image_write's deflate).
 *
 * .npy: magic "\x93NUMPY", version 1.0 / 2.0 / 3.0, a Python-literal header
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (200, 200, 3), } padded to 64 bytes,
 *   then the raw data. dtypes: bool, u1, i1, i2, i4, i8, u2, u4, u8, f2, f4, f8, either byte
 *   order; C or Fortran order. Arrays come back in C order and host (little-endian) byte
 *   order: a big-endian or Fortran-order file is converted on load.
 * .npz: a zip archive of "<key>.npy" members, stored or deflated, zip64 when large.
 *
 * Zero copy: dv_npy_load of a C-order little-endian file and dv_npz_get of a stored
 * (np.savez) member give `data` pointing into a read-only mmap of the file when it is
 * aligned to the element size (numpy's own npz members often are not; dv_npz_writer aligns
 * them); the array holds a reference to the mapping, so the dv_npz may be closed first. A
 * deflated member is inflated once into the buffer the array keeps. Everything else is
 * converted into malloc'd memory owned by the array. Every npz member's CRC-32 is checked.
 *
 * Threads: different dv_npz / arrays may be used from different threads at once; one dv_npz
 * may be read (dv_npz_get) from several threads at once.
 *
 * Untrusted input: every malformed file — bad magic, truncated header or data, header that
 * is not the literal numpy writes, shape/size disagreement, unknown dtype, bad zip
 * directory, CRC mismatch, corrupt deflate stream, member larger than the file allows — is
 * an error whose message names the file (and the member/key) and what was wrong; never a
 * crash, never an out-of-bounds read.
 *
 * Errors follow the project's convention: functions return 0 on success, -1 on error with a
 * message in err[errlen] (err may be NULL).
 *
 * Writing: dv_npy_save and dv_npz_writer write <path>.tmp.<pid>.<n>, fsync, and rename over
 * <path>, so a failed or interrupted write never leaves a half-written file at <path>.
 * The output is what numpy writes (version 1.0 header, '<' byte order, C order) and loads
 * with np.load.
 */
#ifndef DV_DATA_CALVIN_NPY_H
#define DV_DATA_CALVIN_NPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DV_NPY_MAX_DIMS 16

typedef enum {
    DV_NPY_BOOL, DV_NPY_U8, DV_NPY_I8, DV_NPY_U16, DV_NPY_I16, DV_NPY_U32, DV_NPY_I32,
    DV_NPY_U64, DV_NPY_I64, DV_NPY_F16, DV_NPY_F32, DV_NPY_F64,
    DV_NPY_OBJECT, /* pickled Python objects: only through dv_npy_load_pickled (pickle.h) */
} dv_npy_dtype;

size_t dv_npy_dtype_size(dv_npy_dtype dt);        /* bytes per element (OBJECT: 0) */
const char *dv_npy_dtype_name(dv_npy_dtype dt);   /* numpy's descr, little endian: "<f4", "|u1", "|b1" */

/* an n-d array in C order and host byte order */
typedef struct dv_npy {
    dv_npy_dtype dtype;
    int ndim;                           /* 0 for a scalar array */
    int64_t shape[DV_NPY_MAX_DIMS];
    int64_t count;                      /* number of elements (1 for ndim 0) */
    const void *data;                   /* count * dv_npy_dtype_size bytes */
    /* private: who owns data (NULL = borrowed, e.g. from dv_npy_wrap) */
    void *owner_;
    void (*release_)(void *owner_);
} dv_npy;

/* an empty array (all zero) is a valid argument to dv_npy_free */
void dv_npy_free(dv_npy *a);

/* a borrowed view of caller memory, for writing (dv_npy_free does nothing to data) */
dv_npy dv_npy_wrap(dv_npy_dtype dt, int ndim, const int64_t *shape, const void *data);
/* a new zero-filled array owned by *a; -1 on bad shape or out of memory */
int dv_npy_alloc(dv_npy *a, dv_npy_dtype dt, int ndim, const int64_t *shape, char *err, size_t errlen);

/* element i (flat, C order) of any numeric or bool array converted to double / int64 */
double dv_npy_get_f64(const dv_npy *a, int64_t i);
int64_t dv_npy_get_i64(const dv_npy *a, int64_t i);
/* the whole array converted to float (count elements into dst) */
void dv_npy_to_f32(const dv_npy *a, float *dst);

/* .npy files */
int dv_npy_load(const char *path, dv_npy *out, char *err, size_t errlen);
/* parse an in-memory .npy image (always copies); `what` names it in errors */
int dv_npy_parse(const void *buf, size_t len, const char *what, dv_npy *out, char *err, size_t errlen);
int dv_npy_save(const char *path, const dv_npy *a, char *err, size_t errlen);

/* .npz archives */
typedef struct dv_npz dv_npz;
int dv_npz_open(const char *path, dv_npz **out, char *err, size_t errlen);
/* an archive image in memory (copied; `what` names it in errors) — for tests and fuzzing */
int dv_npz_open_buffer(const void *buf, size_t len, const char *what, dv_npz **out, char *err, size_t errlen);
void dv_npz_close(dv_npz *z);                   /* arrays already taken stay valid */
int dv_npz_count(const dv_npz *z);
const char *dv_npz_key(const dv_npz *z, int i); /* member name without ".npy" */
bool dv_npz_has(const dv_npz *z, const char *key);
/* member `key` (without ".npy"); a missing key is an error naming the file and the key */
int dv_npz_get(dv_npz *z, const char *key, dv_npy *out, char *err, size_t errlen);

typedef struct dv_npz_writer dv_npz_writer;
/* compress: deflate members (np.savez_compressed) or store them (np.savez) */
int dv_npz_writer_open(const char *path, bool compress, dv_npz_writer **out, char *err, size_t errlen);
int dv_npz_writer_add(dv_npz_writer *w, const char *key, const dv_npy *a, char *err, size_t errlen);
/* writes the directory, fsyncs, renames into place and frees w (also on error, then the
 * temporary file is removed and <path> is untouched) */
int dv_npz_writer_close(dv_npz_writer *w, char *err, size_t errlen);
void dv_npz_writer_abort(dv_npz_writer *w);    /* removes the temporary file, frees w */

#endif
