/* optim.c — SGD and AdamW with PyTorch's update rules, gradient clipping,
 * and the learning-rate schedules. */
#include "dojo/optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct dj_optim_param {
    int id;
    dj_tensor *value, *grad;
    int decay; /* weight decay applies */
    dj_tensor state[2];
    char *state_name[2];
} dj_optim_param;

struct dj_optimizer {
    dj_optim_config cfg;
    dj_graph *g; /* told after each step that its parameters changed (bf16 copies) */
    dj_optim_param *params;
    int n_params;
    int n_state_per_param;
    int64_t steps;
    size_t bytes;
};

dj_optim_config dj_optim_defaults(dj_optim_kind kind) {
    dj_optim_config c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.decay_norms_and_biases = 1;
    c.beta1 = 0.9;
    c.beta2 = 0.999;
    c.eps = 1e-8;
    c.weight_decay = kind == DJ_OPTIM_ADAMW ? 0.01 : 0.0;
    return c;
}

const char *dj_optim_name(dj_optim_kind kind) { return kind == DJ_OPTIM_ADAMW ? "adamw" : "sgd"; }

static dj_status dj_optim_check(const dj_optim_config *c) {
    if (c->kind != DJ_OPTIM_SGD && c->kind != DJ_OPTIM_ADAMW)
        return dj_error_set(DJ_ERR_INVALID, "optimizer", "unknown kind %d", (int)c->kind);
    if (!(c->weight_decay >= 0) || !(c->momentum >= 0 && c->momentum < 1) || !(c->dampening >= 0 && c->dampening <= 1))
        return dj_error_set(DJ_ERR_INVALID, "optimizer",
                            "weight_decay must be >= 0, momentum in [0, 1), dampening in [0, 1]");
    if (c->nesterov && (c->momentum <= 0 || c->dampening != 0))
        return dj_error_set(DJ_ERR_INVALID, "optimizer", "nesterov needs momentum > 0 and zero dampening");
    if (c->kind == DJ_OPTIM_ADAMW &&
        (!(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1) || !(c->eps > 0)))
        return dj_error_set(DJ_ERR_INVALID, "optimizer", "adamw needs betas in [0, 1) and eps > 0");
    if (!(c->clip_grad_norm >= 0))
        return dj_error_set(DJ_ERR_INVALID, "optimizer", "clip_grad_norm must be >= 0");
    return DJ_OK;
}

void dj_optimizer_free(dj_optimizer *opt) {
    if (!opt)
        return;
    for (int i = 0; i < opt->n_params; i++)
        for (int k = 0; k < 2; k++) {
            dj_tensor_free(&opt->params[i].state[k]);
            free(opt->params[i].state_name[k]);
        }
    free(opt->params);
    free(opt);
}

dj_status dj_optimizer_create(dj_graph *g, const dj_optim_config *cfg, dj_optimizer **out) {
    *out = NULL;
    DJ_TRY(dj_optim_check(cfg));
    dj_optimizer *opt = calloc(1, sizeof *opt);
    if (!opt)
        return dj_error_set(DJ_ERR_NOMEM, "optimizer", "cannot allocate");
    opt->cfg = *cfg;
    opt->g = g;
    opt->n_state_per_param = cfg->kind == DJ_OPTIM_ADAMW ? 2 : (cfg->momentum > 0 ? 1 : 0);
    int n = dj_graph_num_tensors(g);
    opt->params = calloc((size_t)(n > 0 ? n : 1), sizeof *opt->params);
    if (!opt->params) {
        dj_optimizer_free(opt);
        return dj_error_set(DJ_ERR_NOMEM, "optimizer", "cannot allocate");
    }
    static const char *sgd_names[1] = {"momentum_buffer"};
    static const char *adam_names[2] = {"exp_avg", "exp_avg_sq"};
    const char **names = cfg->kind == DJ_OPTIM_ADAMW ? adam_names : sgd_names;
    for (int id = 0; id < n; id++) {
        if (dj_graph_kind(g, id) != DJ_KIND_PARAM)
            continue;
        dj_optim_param *p = &opt->params[opt->n_params];
        p->id = id;
        p->value = dj_graph_tensor(g, id);
        p->grad = dj_graph_grad(g, id);
        if (!p->grad) {
            dj_optimizer_free(opt);
            return dj_error_set(DJ_ERR_INVALID, dj_graph_name(g, id),
                                "parameter has no gradient: plan the graph for training first");
        }
        p->decay = cfg->weight_decay > 0 && (cfg->decay_norms_and_biases || p->value->ndim >= 2);
        opt->n_params++;
        for (int k = 0; k < opt->n_state_per_param; k++) {
            dj_status s = dj_tensor_create(DJ_DTYPE_F32, p->value->ndim, p->value->shape, &p->state[k]);
            size_t len = strlen(dj_graph_name(g, id)) + strlen(names[k]) + 2;
            p->state_name[k] = malloc(len);
            if (s != DJ_OK || !p->state_name[k]) {
                dj_optimizer_free(opt);
                return dj_error_set(DJ_ERR_NOMEM, "optimizer", "cannot allocate the state of %s", dj_graph_name(g, id));
            }
            snprintf(p->state_name[k], len, "%s.%s", dj_graph_name(g, id), names[k]);
            opt->bytes += dj_tensor_nbytes(&p->state[k]);
        }
    }
    *out = opt;
    return DJ_OK;
}

typedef struct dj_update_job {
    const dj_optimizer *opt;
    const dj_optim_param *p;
    float lr, grad_scale, bc1, bc2;
    int first_step;
} dj_update_job;

static void dj_sgd_range(void *arg, int64_t begin, int64_t end, int thread) {
    const dj_update_job *j = arg;
    const dj_optim_config *c = &j->opt->cfg;
    float *w = j->p->value->data;
    const float *g = j->p->grad->data;
    float *buf = j->opt->n_state_per_param ? j->p->state[0].data : NULL;
    const float wd = j->p->decay ? (float)c->weight_decay : 0.0f;
    const float mom = (float)c->momentum, damp = 1.0f - (float)c->dampening, lr = j->lr;
    for (int64_t i = begin; i < end; i++) {
        float d = g[i] * j->grad_scale + wd * w[i];
        if (buf) {
            buf[i] = j->first_step ? d : mom * buf[i] + damp * d;
            d = c->nesterov ? d + mom * buf[i] : buf[i];
        }
        w[i] -= lr * d;
    }
}

static void dj_adamw_range(void *arg, int64_t begin, int64_t end, int thread) {
    const dj_update_job *j = arg;
    const dj_optim_config *c = &j->opt->cfg;
    float *w = j->p->value->data;
    const float *g = j->p->grad->data;
    float *m = j->p->state[0].data, *v = j->p->state[1].data;
    const float decay = j->p->decay ? 1.0f - j->lr * (float)c->weight_decay : 1.0f;
    const float b1 = (float)c->beta1, b2 = (float)c->beta2, eps = (float)c->eps;
    const float step_size = j->lr / j->bc1;
    const float bc2_sqrt = sqrtf(j->bc2);
    for (int64_t i = begin; i < end; i++) {
        float gi = g[i] * j->grad_scale;
        w[i] *= decay;
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        w[i] -= step_size * m[i] / denom;
    }
}

static double dj_global_grad_norm(const dj_optimizer *opt) {
    double total = 0.0;
    for (int i = 0; i < opt->n_params; i++) {
        const float *g = opt->params[i].grad->data;
        int64_t n = dj_tensor_numel(opt->params[i].grad);
        double s = 0.0;
        for (int64_t k = 0; k < n; k++)
            s += (double)g[k] * g[k];
        total += s;
    }
    return sqrt(total);
}

dj_status dj_optimizer_step(dj_optimizer *opt, const dj_exec *ex, double lr, double *grad_norm) {
    if (!(lr >= 0) || !isfinite(lr))
        return dj_error_set(DJ_ERR_INVALID, "optimizer", "learning rate %g is not a finite number >= 0", lr);
    double norm = dj_global_grad_norm(opt);
    if (grad_norm)
        *grad_norm = norm;
    if (!isfinite(norm))
        return dj_error_set(DJ_ERR_RANGE, "optimizer", "gradient norm is %g: update skipped", norm);
    float scale = 1.0f;
    if (opt->cfg.clip_grad_norm > 0) {
        double coef = opt->cfg.clip_grad_norm / (norm + 1e-6); /* as torch's clip_grad_norm_ */
        if (coef < 1.0)
            scale = (float)coef;
    }
    opt->steps++;
    dj_update_job job;
    memset(&job, 0, sizeof job);
    job.opt = opt;
    job.lr = (float)lr;
    job.grad_scale = scale;
    job.first_step = opt->steps == 1;
    job.bc1 = (float)(1.0 - pow(opt->cfg.beta1, (double)opt->steps));
    job.bc2 = (float)(1.0 - pow(opt->cfg.beta2, (double)opt->steps));
    dj_threadpool *pool = ex ? ex->pool : NULL;
    for (int i = 0; i < opt->n_params; i++) {
        job.p = &opt->params[i];
        dj_range_fn fn = opt->cfg.kind == DJ_OPTIM_ADAMW ? dj_adamw_range : dj_sgd_range;
        dj_parallel_for(pool, dj_tensor_numel(job.p->value), 16384, fn, &job);
    }
    dj_graph_params_changed(opt->g);
    return DJ_OK;
}

int64_t dj_optimizer_steps(const dj_optimizer *opt) { return opt->steps; }
void dj_optimizer_set_steps(dj_optimizer *opt, int64_t steps) { opt->steps = steps; }

int dj_optimizer_num_states(const dj_optimizer *opt) { return opt->n_params * opt->n_state_per_param; }

dj_tensor *dj_optimizer_state(dj_optimizer *opt, int i, const char **name) {
    if (i < 0 || i >= dj_optimizer_num_states(opt))
        return NULL;
    dj_optim_param *p = &opt->params[i / opt->n_state_per_param];
    int k = i % opt->n_state_per_param;
    if (name)
        *name = p->state_name[k];
    return &p->state[k];
}

size_t dj_optimizer_bytes(const dj_optimizer *opt) { return opt->bytes; }

/* ---- schedules ---- */

const char *dj_schedule_name(dj_schedule_kind kind) {
    switch (kind) {
    case DJ_SCHEDULE_CONSTANT: return "constant";
    case DJ_SCHEDULE_STEP: return "step";
    case DJ_SCHEDULE_COSINE: return "cosine";
    }
    return "?";
}

dj_status dj_schedule_check(const dj_schedule *s) {
    if (!(s->base_lr >= 0) || !isfinite(s->base_lr))
        return dj_error_set(DJ_ERR_INVALID, "schedule", "learning rate must be a finite number >= 0");
    if (s->warmup_steps < 0 || !(s->warmup_start_factor >= 0 && s->warmup_start_factor <= 1))
        return dj_error_set(DJ_ERR_INVALID, "schedule", "warm-up needs steps >= 0 and a start factor in [0, 1]");
    if (s->kind == DJ_SCHEDULE_STEP && (s->step_size <= 0 || !(s->gamma > 0)))
        return dj_error_set(DJ_ERR_INVALID, "schedule", "step schedule needs step_size > 0 and gamma > 0");
    if (s->kind == DJ_SCHEDULE_COSINE && (s->total_steps <= 0 || !(s->min_lr >= 0)))
        return dj_error_set(DJ_ERR_INVALID, "schedule", "cosine schedule needs total_steps > 0 and min_lr >= 0");
    if (s->kind != DJ_SCHEDULE_CONSTANT && s->kind != DJ_SCHEDULE_STEP && s->kind != DJ_SCHEDULE_COSINE)
        return dj_error_set(DJ_ERR_INVALID, "schedule", "unknown kind %d", (int)s->kind);
    return DJ_OK;
}

double dj_schedule_lr(const dj_schedule *s, int64_t step) {
    if (step < 0)
        step = 0;
    if (step < s->warmup_steps) {
        double f = s->warmup_start_factor + (1.0 - s->warmup_start_factor) * (double)step / (double)s->warmup_steps;
        return s->base_lr * f;
    }
    int64_t t = step - s->warmup_steps;
    switch (s->kind) {
    case DJ_SCHEDULE_CONSTANT:
        return s->base_lr;
    case DJ_SCHEDULE_STEP:
        return s->base_lr * pow(s->gamma, (double)(t / s->step_size));
    case DJ_SCHEDULE_COSINE: {
        int64_t span = s->total_steps - s->warmup_steps;
        if (span <= 0 || t >= span)
            return s->min_lr;
        double progress = (double)t / (double)span;
        return s->min_lr + 0.5 * (s->base_lr - s->min_lr) * (1.0 + cos(3.14159265358979323846 * progress));
    }
    }
    return s->base_lr;
}
