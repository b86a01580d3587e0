/* tests/test_resume.c — a resumed training run is bitwise identical to an uninterrupted one.
 *
 * A small model built from dv_nn layers (Linear -> LayerNorm -> GELU MLP -> dropout -> Linear)
 * is trained on random regression data with AdamW (two parameter groups: with and without
 * weight decay), a cosine schedule with warm-up, global-norm gradient clipping, dropout drawn
 * from its own rng and an EMA of the weights:
 *   A: N steps in one go;
 *   B: N/2 steps, a checkpoint (tensor/checkpoint.h: parameters, AdamW moments and step
 *      counts, EMA shadows, the data and dropout rngs, the step), everything freed; then a
 *      model, optimiser and EMA rebuilt from scratch in this process with a DIFFERENT init
 *      seed, the checkpoint loaded, N/2 more steps.
 * Every parameter, moment and shadow of A and B must be equal byte for byte (memcmp). A third
 * run that restores everything but the dropout rng must differ, so the comparison can fail.
 */
#define _GNU_SOURCE /* nftw */
#include "nn/module.h"
#include "optim/optim.h"
#include "tensor/checkpoint.h"
#include "tensor/ops.h"
#include "tests/util.h"

#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { IN = 8, HID = 24, OUT = 4, BATCH = 16, NSTEPS = 10 };

typedef struct {
    dv_registry reg;
    dv_nn_linear in, out;
    dv_nn_layer_norm ln;
    dv_nn_mlp mlp;
    dv_adamw *opt;
    dv_ema *ema;
    dv_lr_schedule sched;
    dv_rng data, drop;
    int64_t step;
    /* the checkpoint's table (names owned here) */
    dv_ckpt_tensor *ck;
    int nck;
} run;

static void run_build(run *r, uint64_t init_seed) {
    memset(r, 0, sizeof *r);
    dv_rng init = dv_rng_new(init_seed);
    dv_nn_linear_init(&r->in, &r->reg, "in_proj", IN, HID, true, DV_F32, &init);
    dv_nn_layer_norm_init(&r->ln, &r->reg, "norm", HID, 1e-5, true, true, DV_F32);
    dv_nn_mlp_init(&r->mlp, &r->reg, "mlp", HID, 2 * HID, HID, DV_ACT_GELU, true, DV_F32, &init);
    dv_nn_linear_init(&r->out, &r->reg, "out_proj", HID, OUT, true, DV_F32, &init);
    dv_params all = {0}, decay = {0}, no_decay = {0};
    dv_reg_trainable(&r->reg, &all);
    dv_params_split_decay(&all, NULL, NULL, &decay, &no_decay);
    dv_adamw_config cfg = dv_adamw_config_default();
    cfg.lr = 3e-3, cfg.weight_decay = 0.05;
    r->opt = dv_adamw_new();
    dv_adamw_add_group(r->opt, &decay, cfg);
    cfg.weight_decay = 0.0;
    dv_adamw_add_group(r->opt, &no_decay, cfg);
    r->ema = dv_ema_new(&all, 0.9);
    dv_params_free(&all), dv_params_free(&decay), dv_params_free(&no_decay);
    r->sched = dv_lr_warmup_cosine(3, NSTEPS);
    r->data = dv_rng_new(100);
    r->drop = dv_rng_new(200);
    /* checkpoint table: parameters, optimiser state, EMA shadows */
    const char *const *an, *const *en;
    dv_tensor *const *at, *const *et;
    int na = dv_adamw_state(r->opt, &an, &at), ne = dv_ema_state(r->ema, &en, &et), np = dv_reg_count(&r->reg);
    r->nck = np + na + ne;
    r->ck = calloc((size_t)r->nck, sizeof *r->ck);
    for (int i = 0; i < np; i++) r->ck[i] = (dv_ckpt_tensor){dv_reg_name(&r->reg, i), dv_reg_tensor(&r->reg, i)};
    for (int i = 0; i < na; i++) r->ck[np + i] = (dv_ckpt_tensor){an[i], at[i]};
    for (int i = 0; i < ne; i++) r->ck[np + na + i] = (dv_ckpt_tensor){en[i], et[i]};
}

static void run_free(run *r) {
    free(r->ck);
    dv_ema_free(r->ema);
    dv_adamw_free(r->opt);
    dv_reg_free(&r->reg);
    memset(r, 0, sizeof *r);
}

static void run_step(run *r) {
    dv_pool pool = {0};
    dv_tensor *x = dv_pool_add(&pool, dv_randn(&r->data, DV_F32, DV_SHAPE(BATCH, IN)));
    dv_tensor *y = dv_pool_add(&pool, dv_randn(&r->data, DV_F32, DV_SHAPE(BATCH, OUT)));
    dv_tensor *h = dv_pool_add(&pool, dv_nn_linear_forward(&r->in, x));
    h = dv_pool_add(&pool, dv_nn_layer_norm_forward(&r->ln, h));
    h = dv_pool_add(&pool, dv_nn_mlp_forward(&r->mlp, h));
    h = dv_pool_add(&pool, dv_nn_dropout(h, 0.2, true, &r->drop));
    dv_tensor *p = dv_pool_add(&pool, dv_nn_linear_forward(&r->out, h));
    dv_tensor *loss = dv_pool_add(&pool, dv_mse_loss(p, y));
    dv_backward(loss);
    dv_clip_grad_norm(&r->opt->params, 0.5);
    dv_adamw_step(r->opt, dv_lr_schedule_at(&r->sched, r->step));
    dv_optim_zero_grad(&r->opt->params);
    dv_ema_update(r->ema);
    r->step++;
    dv_pool_release(&pool);
}

static int run_save(run *r, const char *path, char *err, size_t n) {
    dv_ckpt_rng rs[2] = {{"data", &r->data}, {"dropout", &r->drop}};
    dv_checkpoint ck = {.step = r->step, .tensors = r->ck, .n_tensors = r->nck, .rngs = rs, .n_rngs = 2,
                        .config = "test_resume"};
    return dv_checkpoint_save(path, &ck, err, n);
}

/* restore; with skip_drop the dropout rng is read into a scratch rng (left fresh) */
static int run_load(run *r, const char *path, bool skip_drop, char *err, size_t n) {
    dv_rng scratch = dv_rng_new(0);
    dv_ckpt_rng rs[2] = {{"data", &r->data}, {"dropout", skip_drop ? &scratch : &r->drop}};
    dv_checkpoint ck = {.tensors = r->ck, .n_tensors = r->nck, .rngs = rs, .n_rngs = 2};
    char *config = NULL;
    int rc = dv_checkpoint_load(path, &ck, &config, err, n);
    if (rc == 0) {
        r->step = ck.step;
        CHECK(config && strcmp(config, "test_resume") == 0);
    }
    free(config);
    return rc;
}

/* every checkpointed tensor of a equal byte for byte to b's */
static bool same_state(const run *a, const run *b) {
    if (a->nck != b->nck) return false;
    for (int i = 0; i < a->nck; i++) {
        const dv_tensor *x = a->ck[i].tensor, *y = b->ck[i].tensor;
        if (strcmp(a->ck[i].name, b->ck[i].name) || !dv_same_shape(x, y) || x->dtype != y->dtype) return false;
        size_t bytes = (size_t)dv_numel(x) * dv_dtype_size(x->dtype);
        if (memcmp(dv_data(x), dv_data(y), bytes)) {
            if (dv_test_verbose) fprintf(stderr, "  differs: %s\n", a->ck[i].name);
            return false;
        }
    }
    return true;
}

static void mk_tmpdir(char *dir, size_t n) {
    snprintf(dir, n, "/dev/shm/dv_resume_test_XXXXXX");
    if (mkdtemp(dir)) return;
    snprintf(dir, n, "/tmp/dv_resume_test_XXXXXX");
    if (!mkdtemp(dir)) { perror("mkdtemp"); abort(); }
}
static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f) { return remove(p); }

TEST(resume_is_bitwise_identical) {
    char dir[256], path[320], err[1024];
    mk_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/ckpt.safetensors", dir);

    run a;
    run_build(&a, 1);
    for (int s = 0; s < NSTEPS; s++) run_step(&a);

    /* B: half, checkpoint, free everything */
    run b;
    run_build(&b, 1);
    for (int s = 0; s < NSTEPS / 2; s++) run_step(&b);
    CHECK_MSG(run_save(&b, path, err, sizeof err) == 0, "save: %s", err);
    CHECK(!same_state(&a, &b)); /* not trivially equal halfway */
    run_free(&b);

    /* rebuilt from scratch (another init seed: the load must overwrite every value) */
    run_build(&b, 999);
    CHECK_MSG(run_load(&b, path, false, err, sizeof err) == 0, "load: %s", err);
    CHECK(b.step == NSTEPS / 2);
    for (int s = NSTEPS / 2; s < NSTEPS; s++) run_step(&b);
    CHECK_MSG(same_state(&a, &b), "resumed run differs from the uninterrupted one");
    CHECK(b.data.offset == a.data.offset && b.drop.offset == a.drop.offset);
    run_free(&b);

    /* everything but the dropout rng restored: must differ (the comparison can fail) */
    run_build(&b, 1);
    CHECK_MSG(run_load(&b, path, true, err, sizeof err) == 0, "load: %s", err);
    for (int s = NSTEPS / 2; s < NSTEPS; s++) run_step(&b);
    CHECK(!same_state(&a, &b));
    run_free(&b);

    run_free(&a);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}
