/* data/calvin/loader.c — seeded shuffling, batching and a multi-threaded prefetcher over the
 * samples of a CALVIN split (dataset.h for the contract).
 *
 * Determinism. The annotations are split into a training and a held-out part by a seeded
 * permutation (the first round(holdout·N) are held out), so two loaders with the same seed
 * and holdout see disjoint parts. The samples of the chosen part are listed once in a fixed
 * order. Sample position p = i·B + b of batch i lies in epoch e = p / n at offset p % n, and
 * is sample perm_e[p % n], perm_e a Fisher–Yates shuffle seeded by (seed, e); its random
 * augmentation is drawn from a stream seeded by (seed, p). Nothing depends on which thread
 * builds a batch or when, so batch i is a pure function of (seed, i).
 *
 * Prefetching. `threads` workers build whole batches into a fixed number of slots
 * (max_bytes / bytes per batch, at least one): after batch i is asked for they build
 * i+1, i+2, ... while slots are free. Asking for a batch that is neither ready nor being
 * built restarts the sequence there; batches built for the old sequence are dropped.
 *
 * Not here: distributed sharding (give each rank its own seed-compatible stride of i),
 * pinned-memory or GPU uploads.
 */
#include "data/calvin/samples.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { SLOT_FREE, SLOT_BUSY, SLOT_READY };

typedef union {
    dv_calvin_dit_batch dit;
    dv_calvin_3dda_batch dda;
    dv_calvin_mllm_batch mllm;
} any_batch;

typedef struct {
    int state;
    bool discard;     /* BUSY slot whose batch nobody wants any more */
    int64_t idx;
    int rc;
    char err[512];
    any_batch batch;
} slot;

struct dv_calvin_loader {
    dv_calvin *d;
    dv_calvin_loader_opts o;
    dv_calvin_sample *samples;
    int64_t n;
    /* the last two epochs' permutations */
    pthread_mutex_t perm_lock;
    int64_t perm_epoch[2];
    uint32_t *perm[2];
    int perm_next;
    /* prefetcher */
    pthread_mutex_t lock;
    pthread_cond_t cv;
    pthread_t *threads;
    int nthreads, nslots;
    slot *slots;
    int64_t cursor;       /* next batch to build; -1 until the first request */
    bool stop;
};

void dv_calvin_loader_defaults(dv_calvin_loader_opts *o, dv_calvin_kind kind) {
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->batch = kind == DV_CALVIN_DIT ? 64 : kind == DV_CALVIN_3DDA ? 15 : 16;
    o->seed = 0;
    o->threads = 0;
    o->max_bytes = 0;
    o->holdout = 0;
    o->heldout = false;
    o->dit = (dv_calvin_dit_opts){.chunk = 8, .gen_chunk = 8, .max_latency = 7, .static_frames = 1,
                                  .image_size = 224, .proprio_dim = 15};
    o->dda = (dv_calvin_3dda_opts){.nhist = 3, .traj_len = 20, .raw_traj = 16, .execute_every = 4,
                                   .relative = true, .augment = true, .rescale_lo = 0.75f,
                                   .rescale_hi = 1.25f, .crop = 20, .image_size = 0,
                                   .euler = DV_EULER_PYTORCH3D_XYZ, .quat_wxyz = 1};
    o->mllm_size = 224;
    o->mllm_every = 1;
}

static int check_opts(const dv_calvin_loader_opts *o, char *err, size_t errlen) {
    if (o->batch < 1) return dv_errf(err, errlen, "calvin loader: batch = %lld, must be >= 1", (long long)o->batch);
    if (o->threads < 0) return dv_errf(err, errlen, "calvin loader: threads = %d, must be >= 0", o->threads);
    if (!(o->holdout >= 0 && o->holdout < 1))
        return dv_errf(err, errlen, "calvin loader: holdout = %g, must be in [0, 1)", o->holdout);
    if (o->kind == DV_CALVIN_DIT) {
        const dv_calvin_dit_opts *p = &o->dit;
        if (p->chunk < 1 || p->gen_chunk < 1 || p->max_latency < 0 || p->image_size < 1 ||
            (p->static_frames != 1 && p->static_frames != 2) || (p->proprio_dim != 15 && p->proprio_dim != 7))
            return dv_errf(err, errlen, "calvin loader (dit): bad options chunk=%d gen_chunk=%d max_latency=%d "
                           "static_frames=%d (1|2) image_size=%d proprio_dim=%d (15|7)", p->chunk, p->gen_chunk,
                           p->max_latency, p->static_frames, p->image_size, p->proprio_dim);
    } else if (o->kind == DV_CALVIN_3DDA) {
        const dv_calvin_3dda_opts *p = &o->dda;
        if (p->nhist < 1 || p->traj_len < 1 || p->raw_traj < 1 || p->raw_traj > 256 || p->execute_every < 1 ||
            p->crop < 0 || p->image_size < 0 || (p->augment && !(p->rescale_lo > 0 && p->rescale_lo <= p->rescale_hi)))
            return dv_errf(err, errlen, "calvin loader (3dda): bad options nhist=%d traj_len=%d raw_traj=%d (1..256) "
                           "execute_every=%d crop=%d image_size=%d rescale=[%g, %g]", p->nhist, p->traj_len,
                           p->raw_traj, p->execute_every, p->crop, p->image_size, p->rescale_lo, p->rescale_hi);
    } else if (o->kind == DV_CALVIN_MLLM) {
        if (o->mllm_size < 1 || o->mllm_every < 1)
            return dv_errf(err, errlen, "calvin loader (mllm): bad options size=%d every=%d", o->mllm_size, o->mllm_every);
    } else {
        return dv_errf(err, errlen, "calvin loader: unknown kind %d", (int)o->kind);
    }
    return 0;
}

/* Fisher–Yates over 0..n-1 from the stream seeded by s */
static void shuffle(uint32_t *p, int64_t n, uint64_t s) {
    dv_srng r = {s};
    for (int64_t i = 0; i < n; i++) p[i] = (uint32_t)i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = dv_srng_int(&r, 0, i);
        uint32_t t = p[i]; p[i] = p[j]; p[j] = t;
    }
}

static const uint64_t SALT_SPLIT = 0x73706c6974ull, SALT_EPOCH = 0x65706f6368ull, SALT_SAMPLE = 0x73616d70ull;

/* sample index at position p (thread-safe) */
static int64_t sample_at(dv_calvin_loader *l, int64_t p) {
    int64_t e = p / l->n, r = p % l->n;
    pthread_mutex_lock(&l->perm_lock);
    int k = l->perm_epoch[0] == e ? 0 : l->perm_epoch[1] == e ? 1 : -1;
    if (k < 0) {
        k = l->perm_next;
        l->perm_next ^= 1;
        shuffle(l->perm[k], l->n, dv_mix64(l->o.seed ^ SALT_EPOCH) + (uint64_t)e);
        l->perm_epoch[k] = e;
    }
    int64_t s = l->perm[k][r];
    pthread_mutex_unlock(&l->perm_lock);
    return s;
}

static int build(dv_calvin_loader *l, int64_t i, any_batch *out, char *err, size_t errlen) {
    const int64_t B = l->o.batch;
    dv_calvin_sample *s = malloc(sizeof *s * (size_t)B);
    uint64_t *seeds = malloc(sizeof *seeds * (size_t)B);
    for (int64_t b = 0; b < B; b++) {
        int64_t p = i * B + b;
        s[b] = l->samples[sample_at(l, p)];
        seeds[b] = dv_mix64(dv_mix64(l->o.seed ^ SALT_SAMPLE) + (uint64_t)p);
    }
    int rc;
    switch (l->o.kind) {
    case DV_CALVIN_DIT: rc = dv_calvin_dit_build(l->d, &l->o.dit, s, seeds, B, &out->dit, err, errlen); break;
    case DV_CALVIN_3DDA: rc = dv_calvin_3dda_build(l->d, &l->o.dda, s, seeds, B, &out->dda, err, errlen); break;
    default: rc = dv_calvin_mllm_build(l->d, l->o.mllm_size, l->o.mllm_every, s, B, &out->mllm, err, errlen);
    }
    free(s);
    free(seeds);
    return rc;
}

static void *worker(void *arg) {
    dv_calvin_loader *l = arg;
    pthread_mutex_lock(&l->lock);
    while (!l->stop) {
        slot *free_slot = NULL;
        if (l->cursor >= 0)
            for (int k = 0; k < l->nslots && !free_slot; k++)
                if (l->slots[k].state == SLOT_FREE) free_slot = &l->slots[k];
        if (!free_slot) {
            pthread_cond_wait(&l->cv, &l->lock);
            continue;
        }
        slot *sl = free_slot;
        sl->state = SLOT_BUSY;
        sl->discard = false;
        sl->idx = l->cursor++;
        pthread_mutex_unlock(&l->lock);
        char err[512] = "";
        any_batch b;
        int rc = build(l, sl->idx, &b, err, sizeof err);
        pthread_mutex_lock(&l->lock);
        if (sl->discard) {
            if (rc == 0) dv_calvin_batch_free(l->o.kind, &b);
            sl->state = SLOT_FREE;
        } else {
            sl->rc = rc;
            if (rc == 0) sl->batch = b;
            snprintf(sl->err, sizeof sl->err, "%s", err);
            sl->state = SLOT_READY;
        }
        pthread_cond_broadcast(&l->cv);
    }
    pthread_mutex_unlock(&l->lock);
    return NULL;
}

int dv_calvin_loader_new(dv_calvin *d, const dv_calvin_loader_opts *o, dv_calvin_loader **out,
                         char *err, size_t errlen) {
    *out = NULL;
    if (check_opts(o, err, errlen)) return -1;
    /* the held-out split of the annotations */
    int64_t n_ann = dv_calvin_num_annotations(d);
    uint32_t *ann_perm = malloc(sizeof(uint32_t) * (size_t)n_ann);
    shuffle(ann_perm, n_ann, dv_mix64(o->seed ^ SALT_SPLIT));
    int64_t n_hold = (int64_t)llround(o->holdout * (double)n_ann);
    if (o->holdout > 0 && n_hold == 0) n_hold = 1;
    int64_t a0 = o->heldout ? 0 : n_hold, a1 = o->heldout ? n_hold : n_ann;
    if (a1 <= a0) {
        free(ann_perm);
        return dv_errf(err, errlen, "%s: the %s part of %lld annotations (holdout %g) is empty", dv_calvin_dir(d),
                       o->heldout ? "held-out" : "training", (long long)n_ann, o->holdout);
    }
    /* the chosen annotations in their on-disk order, then their samples */
    uint8_t *use = calloc((size_t)n_ann, 1);
    for (int64_t k = a0; k < a1; k++) use[ann_perm[k]] = 1;
    free(ann_perm);
    int64_t n = 0;
    for (int64_t a = 0; a < n_ann; a++) if (use[a]) n += dv_calvin_samples_of(d, o, (int32_t)a, NULL, 0);
    if (n > (int64_t)UINT32_MAX) {
        free(use);
        return dv_errf(err, errlen, "%s: %lld samples is more than this loader indexes", dv_calvin_dir(d), (long long)n);
    }
    dv_calvin_loader *l = calloc(1, sizeof *l);
    l->d = d;
    l->o = *o;
    l->n = n;
    l->samples = malloc(sizeof(dv_calvin_sample) * (size_t)n);
    int64_t k = 0;
    for (int64_t a = 0; a < n_ann; a++)
        if (use[a]) k += dv_calvin_samples_of(d, o, (int32_t)a, l->samples + k, n - k);
    free(use);
    pthread_mutex_init(&l->perm_lock, NULL);
    l->perm_epoch[0] = l->perm_epoch[1] = -1;
    l->perm[0] = malloc(sizeof(uint32_t) * (size_t)n);
    l->perm[1] = malloc(sizeof(uint32_t) * (size_t)n);

    l->nthreads = o->threads > 0 ? o->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (l->nthreads < 1) l->nthreads = 1;
    int64_t per = dv_calvin_batch_bytes(o), budget = o->max_bytes > 0 ? o->max_bytes : 4 * per;
    int64_t nslots = per > 0 ? budget / per : 1;
    l->nslots = (int)(nslots < 1 ? 1 : nslots > 64 ? 64 : nslots);
    l->slots = calloc((size_t)l->nslots, sizeof(slot));
    l->cursor = -1;
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->cv, NULL);
    l->threads = calloc((size_t)l->nthreads, sizeof(pthread_t));
    for (int t = 0; t < l->nthreads; t++)
        if (pthread_create(&l->threads[t], NULL, worker, l) != 0) {
            l->nthreads = t;
            dv_calvin_loader_free(l);
            return dv_errf(err, errlen, "calvin loader: cannot start prefetch thread %d", t);
        }
    *out = l;
    return 0;
}

void dv_calvin_loader_free(dv_calvin_loader *l) {
    if (!l) return;
    pthread_mutex_lock(&l->lock);
    l->stop = true;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->lock);
    for (int t = 0; t < l->nthreads; t++) pthread_join(l->threads[t], NULL);
    for (int k = 0; k < l->nslots; k++)
        if (l->slots[k].state == SLOT_READY && l->slots[k].rc == 0) dv_calvin_batch_free(l->o.kind, &l->slots[k].batch);
    pthread_mutex_destroy(&l->lock);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->perm_lock);
    free(l->threads);
    free(l->slots);
    free(l->perm[0]);
    free(l->perm[1]);
    free(l->samples);
    free(l);
}

int64_t dv_calvin_loader_num_samples(const dv_calvin_loader *l) { return l->n; }

static slot *find(dv_calvin_loader *l, int64_t i) {
    for (int k = 0; k < l->nslots; k++) {
        slot *s = &l->slots[k];
        if (s->idx == i && (s->state == SLOT_READY || (s->state == SLOT_BUSY && !s->discard))) return s;
    }
    return NULL;
}

/* drop what the sequence from i on will not ask for: batches before i, and (on a restart)
 * every other batch */
static void drop(dv_calvin_loader *l, int64_t i, bool all) {
    for (int k = 0; k < l->nslots; k++) {
        slot *s = &l->slots[k];
        if (s->idx == i || !(all || s->idx < i)) continue;
        if (s->state == SLOT_READY) {
            if (s->rc == 0) dv_calvin_batch_free(l->o.kind, &s->batch);
            s->state = SLOT_FREE;
        } else if (s->state == SLOT_BUSY) {
            s->discard = true;
        }
    }
}

int dv_calvin_loader_get(dv_calvin_loader *l, int64_t i, void *out, char *err, size_t errlen) {
    if (i < 0) return dv_errf(err, errlen, "calvin loader: batch index %lld < 0", (long long)i);
    pthread_mutex_lock(&l->lock);
    slot *s = find(l, i);
    if (!s) {
        drop(l, i, true);
        l->cursor = i;
        pthread_cond_broadcast(&l->cv);
    } else {
        drop(l, i, false);
    }
    while (!(s = find(l, i)) || s->state != SLOT_READY) pthread_cond_wait(&l->cv, &l->lock);
    int rc = s->rc;
    if (rc == 0) {
        switch (l->o.kind) {
        case DV_CALVIN_DIT: *(dv_calvin_dit_batch *)out = s->batch.dit; break;
        case DV_CALVIN_3DDA: *(dv_calvin_3dda_batch *)out = s->batch.dda; break;
        default: *(dv_calvin_mllm_batch *)out = s->batch.mllm;
        }
    } else {
        dv_errf(err, errlen, "%s", s->err);
    }
    s->state = SLOT_FREE;
    if (l->cursor <= i) l->cursor = i + 1;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->lock);
    return rc;
}
