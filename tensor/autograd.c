/* tensor/autograd.c — define-by-run reverse-mode autograd.
 *
 * Ops attach a dv_node to their result (tensor/autograd.h). dv_backward():
 *   1. collects the nodes reachable from the loss by depth-first search (reverse postorder is
 *      a topological order: a node comes before every node that produced its inputs),
 *   2. seeds the loss node with d loss / d loss = 1 and runs each node's backward once, with
 *      grad mode off; a node's backward hands each wanted input gradient to dv_ag_give, which
 *      adds it to the producer node's ->gout, or to a leaf's ->grad,
 *   3. frees the graph: every node releases its inputs and saved tensors, so intermediates
 *      die as soon as the user lets go of them. A second backward through the same graph
 *      aborts with a clear message.
 * Gradient mode is per thread. No double backward, no in-place version counters: ops never
 * modify their inputs, and dv_copy_/dv_fill_ are not recorded.
 */
#include "tensor/autograd.h"
#include "tensor/cuda.h"
#include "tensor/internal.h"
#include "tensor/ops.h"

#include <stdlib.h>
#include <string.h>

static _Thread_local int g_grad_off; /* 0 = grad mode on */

bool dv_grad_enabled(void) { return g_grad_off == 0; }
bool dv_set_grad_enabled(bool on) {
    bool prev = g_grad_off == 0;
    g_grad_off = on ? 0 : 1;
    return prev;
}

void dv_set_requires_grad(dv_tensor *t, bool on) {
    if (t->grad_fn) dv_panic("requires_grad: %s is the result of an op (%s), not a leaf", dv_shape_str(t, NULL, 0), t->grad_fn->op);
    if (on && !dv_dtype_is_float(t->dtype)) dv_panic("requires_grad: %s tensors cannot have gradients", dv_dtype_name(t->dtype));
    t->requires_grad = on;
}

bool dv_needs_grad(const dv_tensor *t) { return t && (t->requires_grad || t->grad_fn); }

bool dv_ag_wanted(int n, dv_tensor *const *ins) {
    if (g_grad_off) return false;
    for (int i = 0; i < n; i++)
        if (dv_needs_grad(ins[i])) return true;
    return false;
}

dv_node *dv_ag_record(dv_tensor *out, const char *op, dv_backward_fn bw, int n, dv_tensor *const *ins) {
    DV_ASSERT(!out->grad_fn, "%s: output already has a node", op);
    dv_node *nd = calloc(1, sizeof *nd);
    nd->in = calloc((size_t)(n ? n : 1), sizeof *nd->in);
    if (!nd || !nd->in) dv_panic("out of memory");
    nd->op = op;
    nd->backward = bw;
    nd->n_in = n;
    for (int i = 0; i < n; i++) nd->in[i] = dv_retain(ins[i]);
    nd->out_ndim = out->ndim;
    memcpy(nd->out_shape, out->shape, sizeof nd->out_shape);
    nd->out_dtype = out->dtype;
    nd->refcount = 1;
    out->grad_fn = nd;
    out->requires_grad = true;
    return nd;
}

void dv_node_save(dv_node *n, dv_tensor *t) {
    DV_ASSERT(n->n_saved < DV_NODE_MAX_SAVED, "%s: too many saved tensors", n->op);
    n->saved[n->n_saved++] = dv_retain(t);
}

bool dv_ag_input_wants(const dv_node *n, int i) { return i < n->n_in && dv_needs_grad(n->in[i]); }

static void free_node_graph_refs(dv_node *n) {
    for (int i = 0; i < n->n_in; i++) dv_release(n->in[i]);
    for (int i = 0; i < n->n_saved; i++) dv_release(n->saved[i]);
    n->n_in = 0;
    n->n_saved = 0;
    dv_release(n->gout);
    n->gout = NULL;
    n->freed = true;
}

void dv_node_release(dv_node *n) {
    if (--n->refcount > 0) return;
    free_node_graph_refs(n);
    free(n->in);
    free(n);
}

/* acc <- acc + g, or acc = g; both same shape; acc ends up contiguous and owned */
static void accumulate(dv_tensor **acc, dv_tensor *g, dv_dtype dt) {
    if (g->dtype != dt) {
        dv_tensor *c = dv_cast(g, dt);
        dv_release(g);
        g = c;
    }
    if (!*acc) {
        /* own a private contiguous buffer: g may alias a view of someone else's storage */
        if (dv_is_contiguous(g) && g->storage->refcount == 1 && g->refcount == 1 && !g->grad_fn) {
            *acc = g;
        } else {
            *acc = dv_clone(g);
            dv_release(g);
        }
        return;
    }
    dv_tensor *a = *acc;
    dv_tensor *gc = dv_contiguous(g);
    int64_t n = dv_numel(a);
    if (a->device.type == DV_CUDA) {
        int64_t one = 1;
        dv_require_kernel("backward (gradient sum)", a);
        dv_cuda_binary(DV_BINARY_ADD, 1, &n, a, &one, gc, &one, a); /* in place, elementwise */
    } else if (dt == DV_F32) {
        float *pa = dv_data(a);
        const float *pg = dv_data(gc);
        for (int64_t i = 0; i < n; i++) pa[i] += pg[i];
    } else if (dt == DV_F64) {
        double *pa = dv_data(a);
        const double *pg = dv_data(gc);
        for (int64_t i = 0; i < n; i++) pa[i] += pg[i];
    } else {
        for (int64_t i = 0; i < n; i++) dv_flat_set(a, i, dv_flat_get(a, i) + dv_flat_get(gc, i));
    }
    dv_release(gc);
    dv_release(g);
}

void dv_ag_give(dv_node *n, int i, dv_tensor *g) {
    DV_ASSERT(i < n->n_in, "%s backward: input %d of %d", n->op, i, n->n_in);
    dv_tensor *x = n->in[i];
    if (!dv_needs_grad(x)) { dv_release(g); return; }
    if (!dv_same_shape(g, x)) {
        dv_tensor *r = dv_sum_to_shape(g, x->shape, x->ndim);
        dv_release(g);
        g = r;
    }
    if (x->grad_fn) {
        dv_node *p = x->grad_fn;
        if (p->freed) dv_panic("backward: the graph through '%s' was already freed by an earlier backward", p->op);
        accumulate(&p->gout, g, p->out_dtype);
    } else {
        accumulate(&x->grad, g, x->dtype);
    }
}

/* ---- graph walk ---- */
typedef struct { dv_node **v; int n, cap; } node_list;
static void push(node_list *l, dv_node *n) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->v = realloc(l->v, (size_t)l->cap * sizeof *l->v);
        if (!l->v) dv_panic("out of memory");
    }
    l->v[l->n++] = n;
}

/* iterative DFS (graphs of 7B models are thousands of nodes deep); postorder into `order` */
static void topo_sort(dv_node *root, node_list *order) {
    node_list marked = {0};
    typedef struct { dv_node *n; int next; } frame;
    frame *fr = malloc(sizeof *fr * 256);
    int cap = 256, top = 0;
    if (!fr) dv_panic("out of memory");
    fr[top++] = (frame){root, 0};
    root->mark = 1;
    push(&marked, root);
    while (top) {
        frame *f = &fr[top - 1];
        if (f->next < f->n->n_in) {
            dv_tensor *x = f->n->in[f->next++];
            dv_node *c = x->grad_fn;
            if (c && !c->mark && !c->freed) {
                c->mark = 1;
                push(&marked, c);
                if (top == cap) { cap *= 2; fr = realloc(fr, sizeof *fr * cap); if (!fr) dv_panic("out of memory"); }
                fr[top++] = (frame){c, 0};
            }
        } else {
            push(order, f->n);
            top--;
        }
    }
    for (int i = 0; i < marked.n; i++) marked.v[i]->mark = 0;
    free(marked.v);
    free(fr);
}

void dv_backward_with(dv_tensor *out, dv_tensor *gout) {
    dv_check_same_shape("backward", out, gout);
    if (!out->grad_fn) {
        if (!out->requires_grad) dv_panic("backward: tensor %s does not require grad", dv_shape_str(out, NULL, 0));
        bool prev = dv_set_grad_enabled(false);
        accumulate(&out->grad, dv_retain(gout), out->dtype);
        dv_set_grad_enabled(prev);
        return;
    }
    dv_node *root = out->grad_fn;
    if (root->freed) dv_panic("backward: the graph of this %s tensor was already freed by an earlier backward", root->op);
    node_list order = {0};
    topo_sort(root, &order);
    bool prev = dv_set_grad_enabled(false);
    accumulate(&root->gout, dv_retain(gout), root->out_dtype);
    for (int k = order.n - 1; k >= 0; k--) {
        dv_node *n = order.v[k];
        if (!n->gout) continue; /* no path from the loss carried a gradient here */
        dv_tensor *g = n->gout;
        n->gout = NULL;
        n->backward(n, g);
        dv_release(g);
    }
    dv_set_grad_enabled(prev);
    /* hold every node while the graph is cut, since releasing one node's inputs can free
     * another node of the list */
    for (int k = 0; k < order.n; k++) order.v[k]->refcount++;
    for (int k = 0; k < order.n; k++) free_node_graph_refs(order.v[k]);
    for (int k = 0; k < order.n; k++) dv_node_release(order.v[k]);
    free(order.v);
}

void dv_backward(dv_tensor *loss) {
    if (dv_numel(loss) != 1) dv_panic("backward: loss %s has %lld elements; give an output gradient with dv_backward_with", dv_shape_str(loss, NULL, 0), (long long)dv_numel(loss));
    dv_tensor *one = dv_empty_on(loss->dtype, loss->shape, loss->ndim, loss->device);
    dv_fill_(one, 1.0);
    dv_backward_with(loss, one);
    dv_release(one);
}

void dv_zero_grad(dv_tensor *t) {
    dv_release(t->grad);
    t->grad = NULL;
}
