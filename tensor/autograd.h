/* tensor/autograd.h — what an op needs to take part in reverse-mode autograd.
 *
 * The pattern every differentiable op follows (see ops_unary.c for a short example):
 *
 *   dv_tensor *out = ...compute...;
 *   if (dv_ag_wanted(2, (dv_tensor *[]){a, b})) {
 *       dv_node *n = dv_ag_record(out, "mul", mul_backward, 2, (dv_tensor *[]){a, b});
 *       dv_node_save(n, ...);                  // extra tensors the backward needs
 *       n->iarg[0] = ...;                      // small integer / float arguments
 *   }
 *
 *   static void mul_backward(dv_node *n, dv_tensor *gout) {
 *       if (dv_ag_input_wants(n, 0)) dv_ag_give(n, 0, dv_mul(gout, n->in[1]));  // takes ref
 *       ...
 *   }
 *
 * Backward functions run with grad mode off (no double backward) and may use any op. They
 * compute a gradient only for inputs that want one (dv_ag_input_wants), so a frozen weight
 * costs no weight-gradient GEMM. dv_ag_give sums a broadcast gradient down to the input's
 * shape, casts to its dtype if needed, and accumulates it.
 */
#ifndef DV_TENSOR_AUTOGRAD_H
#define DV_TENSOR_AUTOGRAD_H

#include "tensor/tensor.h"

typedef struct dv_node dv_node;
typedef void (*dv_backward_fn)(dv_node *n, dv_tensor *gout);

#define DV_NODE_MAX_SAVED 6
struct dv_node {
    const char *op;
    dv_backward_fn backward;
    int n_in;
    dv_tensor **in;                         /* retained inputs (n_in of them) */
    int n_saved;
    dv_tensor *saved[DV_NODE_MAX_SAVED];    /* retained extras (e.g. the output, indices) */
    int64_t iarg[2 * DV_MAX_DIMS];          /* op arguments the backward needs */
    double farg[4];
    int out_ndim;                           /* the recorded output's shape and dtype */
    int64_t out_shape[DV_MAX_DIMS];
    dv_dtype out_dtype;
    /* backward bookkeeping */
    dv_tensor *gout;                        /* accumulated gradient of the output */
    int refcount;                           /* held by the output tensor */
    int mark;
    bool freed;                             /* inputs released after backward */
};

/* true when grad mode is on and any of the n inputs needs a gradient */
bool dv_ag_wanted(int n, dv_tensor *const *ins);
/* attach a node to out (marks out as needing grad); retains the inputs */
dv_node *dv_ag_record(dv_tensor *out, const char *op, dv_backward_fn bw, int n,
                      dv_tensor *const *ins);
void dv_node_save(dv_node *n, dv_tensor *t);          /* retains t */
bool dv_ag_input_wants(const dv_node *n, int i);
/* accumulate g (reference taken) into input i's gradient; g may have a broadcast shape */
void dv_ag_give(dv_node *n, int i, dv_tensor *g);

void dv_node_release(dv_node *n);

#endif
