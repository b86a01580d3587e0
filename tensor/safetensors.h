/* tensor/safetensors.h — read and write the safetensors format (Hugging Face's weight files).
 *
 * The format:  u64 N (little endian) | N bytes of JSON header | data buffer
 *   header = { "<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
 *              "__metadata__": {"<key>": "<value>", ...} }        (__metadata__ is optional)
 *   begin/end are byte offsets into the data buffer; the tensors tile the buffer exactly
 *   (no gaps, no overlaps, nothing after the last one). Data is row-major, little endian.
 *
 * Reading. dv_st_open maps the file (mmap, private copy-on-write) and checks the header with a
 * strict JSON parser of our own. The header is untrusted: every malformed input — truncated
 * file, absurd header length, bad JSON, unknown dtype, shape/size disagreement, offsets out of
 * range / overlapping / not covering the buffer, duplicate names, trailing bytes — returns an
 * error (never a crash) whose message names the file, the tensor or byte offset, and what was
 * expected. A path may also name a sharded checkpoint: a directory (with a
 * model.safetensors.index.json, or else every *.safetensors in it) or an index file
 * ({"metadata": {...}, "weight_map": {"<name>": "model-00001-of-00002.safetensors", ...}});
 * all shards are opened and names are looked up across them.
 *
 * Tensors come back as dv_tensor views straight over the mapping (zero copy) when the data is
 * aligned to its element size — the mapping stays alive while any such tensor does, so
 * dv_st_close may come first. Writing into a view changes this process's private copy of the
 * page, never the file. Options: widen f16/bf16 to f32 on load, or always copy.
 * dtypes the format has but dualvla does not (I8, U16, F8_E4M3, ...) are listed and
 * checked, but cannot be loaded (dv_st_load returns an error naming the dtype).
 * A file truncated by another process while mapped raises SIGBUS on access; write files
 * atomically (dv_st_save does) and this cannot happen.
 *
 * Writing. dv_st_save writes path.tmp.<pid>, fsyncs it, renames it over path and fsyncs the
 * directory: readers see the old file or the new one, never a half-written one, and a failed
 * save leaves the old file untouched and no temp file behind. The buffer starts at an 8-byte
 * boundary (the JSON is padded with spaces) and tensors are laid out widest dtype first, so
 * every tensor is aligned to its element size and loads zero-copy.
 *
 * Not done here: CUDA tensors (save/load through the CPU), big-endian hosts, tensors of more
 * than DV_MAX_DIMS dims (refused at open), sub-byte dtypes (F4, F6: refused as unknown).
 */
#ifndef DV_TENSOR_SAFETENSORS_H
#define DV_TENSOR_SAFETENSORS_H

#include "tensor/tensor.h"

/* limits on untrusted input */
#define DV_ST_MAX_HEADER (100 * 1000 * 1000) /* bytes of JSON, as the reference reader */
#define DV_ST_MAX_DEPTH 64                   /* JSON nesting */

typedef struct dv_st_file dv_st_file;

/* one tensor as the header describes it */
typedef struct {
    const char *name;
    const char *dtype_name;   /* as written in the file: "F32", "BF16", "I8", ... */
    int dtype;                /* the dv_dtype, or -1 when dualvla has no such dtype */
    int ndim;
    int64_t shape[DV_MAX_DIMS];
    int64_t begin, end;       /* byte range inside its file's data buffer */
    int64_t file_offset;      /* where begin lies in the file: 8 + N + begin */
    const char *file;         /* the file (shard) that holds it */
} dv_st_info;

/* path: a .safetensors file, a model.safetensors.index.json, or a directory holding either.
 * Returns 0 and *out, or -1 with a message in err (err may be NULL). */
int dv_st_open(const char *path, dv_st_file **out, char *err, size_t errlen);
/* frees the listing; tensors already loaded stay valid (they hold the mapping) */
void dv_st_close(dv_st_file *f);

int dv_st_count(const dv_st_file *f);                 /* tensors, in header (or weight_map) order */
const dv_st_info *dv_st_info_at(const dv_st_file *f, int i);
int dv_st_find(const dv_st_file *f, const char *name); /* index, or -1 */

/* load options (flags, or-ed) */
enum {
    DV_ST_WIDEN = 1, /* f16 and bf16 tensors come back as f32 copies */
    DV_ST_COPY = 2,  /* always copy into allocator memory (no view of the mapping) */
};
/* tensor i as a new reference in *out; -1 with a message when its dtype has no dv_dtype */
int dv_st_load(dv_st_file *f, int i, int flags, dv_tensor **out, char *err, size_t errlen);
/* the same by name; -1 with a message naming the file(s) when there is no such tensor */
int dv_st_get(dv_st_file *f, const char *name, int flags, dv_tensor **out, char *err, size_t errlen);

/* __metadata__ (for a sharded checkpoint: that of its first shard) */
typedef struct { const char *key, *value; } dv_st_kv;
int dv_st_meta_count(const dv_st_file *f);
dv_st_kv dv_st_meta_at(const dv_st_file *f, int i);
const char *dv_st_meta(const dv_st_file *f, const char *key); /* NULL when absent */

/* Writes tensors (any dtype of dv_dtype, any strides, CPU) under names, and meta (may be NULL
 * with n_meta 0), atomically as described above. Names must be distinct, non-empty, valid UTF-8
 * and not "__metadata__". Returns 0, or -1 with a message; on failure path is untouched. */
int dv_st_save(const char *path, const char *const *names, dv_tensor *const *tensors, int n,
               const dv_st_kv *meta, int n_meta, char *err, size_t errlen);

/* the format's name of a dtype ("F32", "BF16", ...) */
const char *dv_st_dtype_name(dv_dtype dt);

#endif
