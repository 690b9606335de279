"""Lesson 09's self-checks (checks.regularization and checks.regularization_layers): the right answers pass,
each typical mistake is named."""
import numpy as np
import pytest

from checks import CheckFailed
from checks.regularization import check_max_norm, check_penalty_grads
from checks.regularization_layers import check_batchnorm_layer, check_dropout_layer
from cnnlab import Module, Parameter
from cnnlab.rng import as_generator


# --- exercise 1: penalty gradients --------------------------------------------------------------------

def l2_right(theta, lam):
    return lam * theta


def l1_right(theta, lam):
    return lam * np.sign(theta)


def add_right(net, lam, grad_fn):
    for name, p in net.named_parameters():
        if name.endswith("weight"):
            p.grad += grad_fn(p.data, lam)


def test_the_right_penalty_gradients_pass(capsys):
    check_penalty_grads(l2_right, l1_right, add_right)
    assert "\u2713" in capsys.readouterr().out


def test_assigning_a_new_grad_array_also_passes(capsys):
    def add(net, lam, grad_fn):
        for name, p in net.named_parameters():
            if "weight" in name:
                p.grad = p.grad + grad_fn(p.data, lam)

    check_penalty_grads(l2_right, l1_right, add)
    assert "\u2713" in capsys.readouterr().out


@pytest.mark.parametrize("l2, message", [
    (lambda t, lam: ..., r"l2_grad.*still Ellipsis"),
    (lambda t, lam: None, r"still None \(did you forget `return`\?\)"),
    (lambda t, lam: 2 * lam * t, r"twice too large: the 1/2 in Omega"),
    (lambda t, lam: lam * t / 2, r"half the right value: d/dtheta of 1/2 theta\^2 is theta"),
    (lambda t, lam: lam / 2 * t ** 2, r"penalty's terms"),
    (lambda t, lam: t, r"forgot the strength lam"),
    (lambda t, lam: lam * np.sign(t), r"the L1 gradient"),
    (lambda t, lam: lam * t[:, :2], r"shape of its input, \(3, 4\), got \(3, 2\)"),
    (lambda t, lam: lam * t + 0.01, r"`l2_grad\(theta, lam\)`\[0, 0\] is .* but should be"),
    (lambda t, lam: 1 / 0, r"l2_grad\(theta, lam\) raised ZeroDivisionError"),
])
def test_l2_mistakes_are_named(l2, message):
    with pytest.raises(CheckFailed, match=message):
        check_penalty_grads(l2, l1_right, add_right)


def test_np_errstate_is_not_needed_for_the_nan_mistake():
    def l1_divide(t, lam):
        with np.errstate(invalid="ignore", divide="ignore"):
            return lam * t / np.abs(t)

    with pytest.raises(CheckFailed, match=r"NaN where theta == 0.*np.sign"):
        check_penalty_grads(l2_right, l1_divide, add_right)


@pytest.mark.parametrize("l1, message", [
    (lambda t, lam: lam * np.where(t >= 0, 1.0, -1.0), r"\+0.3 where theta == 0 \(the sign at 0\)"),
    (lambda t, lam: lam * np.where(t > 0, 1.0, -1.0), r"-0.3 where theta == 0 \(the sign at 0\)"),
    (lambda t, lam: lam / 2 * np.sign(t), r"half the right value: Veta's slide"),
    (lambda t, lam: 2 * lam * np.sign(t), r"twice too large"),
    (lambda t, lam: lam * np.abs(t), r"lam \* \|theta\|, the penalty's terms"),
    (lambda t, lam: np.sign(t), r"forgot the strength lam"),
    (lambda t, lam: lam * t, r"the L2 gradient"),
])
def test_l1_mistakes_are_named(l1, message):
    with pytest.raises(CheckFailed, match=message):
        check_penalty_grads(l2_right, l1, add_right)


def add_to_everything(net, lam, grad_fn):
    for p in net.parameters():
        p.grad += grad_fn(p.data, lam)


def add_overwrite(net, lam, grad_fn):
    for name, p in net.named_parameters():
        if name.endswith("weight"):
            p.grad = grad_fn(p.data, lam)


def add_to_a_copy(net, lam, grad_fn):
    for name, p in net.named_parameters():
        if name.endswith("weight"):
            g = p.grad.copy()
            g += grad_fn(p.data, lam)


def add_to_data(net, lam, grad_fn):
    for name, p in net.named_parameters():
        if name.endswith("weight"):
            p.data -= 0.1 * grad_fn(p.data, lam)


def add_twice(net, lam, grad_fn):
    add_right(net, lam, grad_fn)
    add_right(net, lam, grad_fn)


@pytest.mark.parametrize("add, message", [
    (add_to_everything, r"0.bias.grad was changed: the penalty applies to the weights only"),
    (add_overwrite, r"0.weight.grad holds only the penalty's gradient.*add to it"),
    (add_to_a_copy, r"0.weight.grad is unchanged"),
    (add_to_data, r"changed 0.weight's values: it must only add to p.grad"),
    (add_twice, r"data gradient plus lam \* weight"),
])
def test_adding_mistakes_are_named(add, message):
    with pytest.raises(CheckFailed, match=message):
        check_penalty_grads(l2_right, l1_right, add)


# --- exercise 2: max-norm -------------------------------------------------------------------------------

def max_norm_right(W, c):
    norms = np.linalg.norm(W, axis=1, keepdims=True)
    return W * np.minimum(1.0, c / norms)


def test_the_right_max_norm_passes(capsys):
    check_max_norm(max_norm_right)
    assert "\u2713" in capsys.readouterr().out


@pytest.mark.parametrize("project, message", [
    (lambda W, c: ..., r"still Ellipsis"),
    (lambda W, c: W * c / np.linalg.norm(W, axis=1, keepdims=True), r"also the short ones"),
    (lambda W, c: W * np.minimum(1, c / np.linalg.norm(W, axis=0, keepdims=True)), r"norms of the columns"),
    (lambda W, c: np.clip(W, -c, c), r"np.clip bounds each entry"),
    (lambda W, c: W * min(1, c / np.linalg.norm(W)), r"whole matrix by one factor"),
    (lambda W, c: W, r"row 0 still has norm .* > c = 1.5"),
    (lambda W, c: 0.5 * max_norm_right(W, c), r"`max_norm_\(W, c\)`\[0, 0\] is .* but should be"),
])
def test_max_norm_mistakes_are_named(project, message):
    with pytest.raises(CheckFailed, match=message):
        check_max_norm(project)


# --- exercise 3: a dropout layer ------------------------------------------------------------------------

class DropoutRight(Module):
    """Inverted dropout written another way: a 0/1 float mask, the factor kept for backward."""

    def __init__(self, p_keep=0.5, rng=None):
        self.p_keep, self.rng, self.mask = p_keep, as_generator(rng), None

    def factor(self):
        return self.mask * (1.0 / self.p_keep) if self.training else 1.0

    def draw(self, shape):
        return (self.rng.random(shape) < self.p_keep).astype(np.float64)

    def forward(self, x):
        if self.training:
            self.mask = self.draw(x.shape)
        return x * self.factor()

    def backward(self, dout):
        return dout * self.factor()


def dropout_variant(forward=None, backward=None, draw=None):
    """DropoutRight with one method replaced by a mistaken one."""
    methods = {k: v for k, v in (("forward", forward), ("backward", backward), ("draw", draw)) if v is not None}
    return type("MyDropout", (DropoutRight,), methods)


def test_the_right_dropout_layer_passes(capsys):
    check_dropout_layer(DropoutRight)
    assert "\u2713" in capsys.readouterr().out


def unscaled(self, x):
    if self.training:
        self.mask = self.draw(x.shape)
        return x * self.mask
    return x


def scaled_by_p(self, x):
    if self.training:
        self.mask = self.draw(x.shape)
        return x * self.mask * self.p_keep
    return x


def active_in_evaluation(self, x):
    self.mask = self.draw(x.shape)
    return x * self.mask / self.p_keep


def classic_at_test(self, x):
    if self.training:
        self.mask = self.draw(x.shape)
        return x * self.mask / self.p_keep
    return x * self.p_keep


def new_mask_in_backward(self, dout):
    if not self.training:
        return dout
    return dout * self.draw(dout.shape) / self.p_keep


def backward_unscaled(self, dout):
    return dout * self.mask if self.training else dout


def backward_in_evaluation_keeps_the_mask(self, dout):
    return dout * self.mask / self.p_keep


def draw_drop_probability(self, shape):
    return (self.rng.random(shape) >= self.p_keep).astype(np.float64)


def draw_from_global_state(self, shape):
    return (np.random.default_rng().random(shape) < self.p_keep).astype(np.float64)


def draw_once(self, shape):
    if self.mask is None or self.mask.shape != shape:
        self.mask = (self.rng.random(shape) < self.p_keep).astype(np.float64)
    return self.mask


def forward_keeps_no_mask(self, x):
    if self.training:
        mask = self.draw(x.shape)
        return x * mask / self.p_keep
    return x


@pytest.mark.parametrize("layer, message", [
    (dropout_variant(forward=lambda self, x: ...), r"still Ellipsis"),
    (dropout_variant(forward=unscaled), r"in training mode, the kept units are not rescaled"),
    (dropout_variant(forward=scaled_by_p), r"multiplied by p_keep, the classic TEST-time factor"),
    (dropout_variant(forward=lambda self, x: x), r"in training mode, the output is x itself"),
    (dropout_variant(forward=forward_keeps_no_mask), r"self.mask is None after a training-mode forward"),
    (dropout_variant(forward=active_in_evaluation), r"in evaluation mode units are still dropped"),
    (dropout_variant(forward=classic_at_test), r"output is p_keep \* x, classic dropout's test-time scaling"),
    (dropout_variant(backward=new_mask_in_backward), r"backward dropped other units than forward did \(a new mask\?\)"),
    (dropout_variant(backward=backward_unscaled), r"backward does not rescale"),
    (dropout_variant(backward=lambda self, dout: dout), r"backward returned dout unchanged"),
    (dropout_variant(backward=backward_in_evaluation_keeps_the_mask),
     r"in evaluation mode backward still applies the training mask"),
    (dropout_variant(draw=draw_drop_probability), r"about 1 - p_keep: True must have probability p_keep"),
    (dropout_variant(draw=draw_from_global_state), r"same rng=0 drew different masks"),
    (dropout_variant(draw=draw_once), r"two training-mode forwards dropped the same units"),
])
def test_dropout_layer_mistakes_are_named(layer, message):
    with pytest.raises(CheckFailed, match=message):
        check_dropout_layer(layer)


def test_a_dropout_layer_that_is_not_a_module_is_refused():
    class Plain:
        def __init__(self, p_keep, rng=None):
            pass

    with pytest.raises(CheckFailed, match=r"Plain should be a subclass of Module"):
        check_dropout_layer(Plain)


# --- exercise 4: a batch-norm layer -----------------------------------------------------------------------

class BatchNormRight(Module):
    """Batch norm of (N, C) written with explicit sums and the compact backward, unlike the lesson's."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        self.eps, self.momentum = eps, momentum
        self.weight = Parameter(np.ones(num_features))
        self.bias = Parameter(np.zeros(num_features))
        self.register_buffer("running_mean", np.zeros(num_features))
        self.register_buffer("running_var", np.ones(num_features))

    def statistics(self, x):
        m = len(x)
        mu = x.sum(axis=0) / m
        var = ((x - mu) ** 2).sum(axis=0) / m
        return mu, var

    def update(self, mu, var, m):
        k = self.momentum
        self.running_mean = self.running_mean + k * (mu - self.running_mean)
        self.running_var = self.running_var + k * (var * m / (m - 1) - self.running_var)

    def normalize(self, x, mu, var):
        return (x - mu) / np.sqrt(var + self.eps), 1 / np.sqrt(var + self.eps)

    def forward(self, x):
        if self.training:
            mu, var = self.statistics(x)
            self.update(mu, var, len(x))
        else:
            mu, var = self.running_mean, self.running_var
        self.xhat, self.inv_std = self.normalize(x, mu, var)
        return self.xhat * self.weight.data + self.bias.data

    def param_grads(self, dout):
        return (dout * self.xhat).sum(axis=0), dout.sum(axis=0)

    def input_grad(self, dout):
        scale = self.weight.data * self.inv_std
        if not self.training:
            return scale * dout
        m = len(dout)
        return scale / m * (m * dout - dout.sum(0) - self.xhat * (dout * self.xhat).sum(0))

    def backward(self, dout):
        self.weight.grad, self.bias.grad = self.param_grads(dout)
        return self.input_grad(dout)


def bn_variant(**methods):
    """BatchNormRight with some methods replaced by mistaken ones."""
    return type("MyBatchNorm1d", (BatchNormRight,), methods)


def test_the_right_batchnorm_layer_passes(capsys):
    check_batchnorm_layer(BatchNormRight)
    assert "\u2713" in capsys.readouterr().out


def running_in_training(self, x):
    if self.training:
        self.update(*self.statistics(x), len(x))
    self.xhat, self.inv_std = self.normalize(x, self.running_mean, self.running_var)
    return self.xhat * self.weight.data + self.bias.data


def batch_in_evaluation(self, x):
    mu, var = self.statistics(x)
    if self.training:
        self.update(mu, var, len(x))
    self.xhat, self.inv_std = self.normalize(x, mu, var)
    return self.xhat * self.weight.data + self.bias.data


def biased_running_var(self, mu, var, m):
    k = self.momentum
    self.running_mean = (1 - k) * self.running_mean + k * mu
    self.running_var = (1 - k) * self.running_var + k * var


def unbiased_normalization(self, x):
    m = len(x)
    return x.mean(0), x.var(0) * m / (m - 1)


def swapped_variances(self, x):  # unbiased in the normalisation, biased in the running average
    if self.training:
        mu, var = self.statistics(x)
        biased_running_var(self, mu, var, len(x))
        var = var * len(x) / (len(x) - 1)
    else:
        mu, var = self.running_mean, self.running_var
    self.xhat, self.inv_std = self.normalize(x, mu, var)
    return self.xhat * self.weight.data + self.bias.data


def eps_outside(self, x, mu, var):
    return (x - mu) / (np.sqrt(var) + self.eps), 1 / (np.sqrt(var) + self.eps)


def momentum_swapped(self, mu, var, m):
    k = self.momentum
    self.running_mean = k * self.running_mean + (1 - k) * mu
    self.running_var = k * self.running_var + (1 - k) * var * m / (m - 1)


def constants_mu_sigma(self, dout):
    return self.weight.data * self.inv_std * dout


def no_variance_term(self, dout):
    g = self.weight.data * dout
    return (g - g.mean(0)) * self.inv_std if self.training else g * self.inv_std


def no_mean_term(self, dout):
    g = self.weight.data * dout
    return (g - self.xhat * (g * self.xhat).mean(0)) * self.inv_std if self.training else g * self.inv_std


def not_summed(self, dout):
    return dout * self.xhat, dout


def averaged(self, dout):
    return (dout * self.xhat).mean(0), dout.mean(0)


def swapped_parameter_grads(self, dout):
    return dout.sum(0), (dout * self.xhat).sum(0)


def accumulating(self, dout):
    dgamma, dbeta = self.param_grads(dout)
    self.weight.grad += dgamma
    self.bias.grad += dbeta
    return self.input_grad(dout)


def training_formula_in_evaluation(self, dout):
    scale, m = self.weight.data * self.inv_std, len(dout)
    return scale / m * (m * dout - dout.sum(0) - self.xhat * (dout * self.xhat).sum(0))


def no_gamma_beta(self, x):
    BatchNormRight.forward(self, x)
    return self.xhat


def no_eps(self, x, mu, var):
    return (x - mu) / np.sqrt(var), 1 / np.sqrt(var)


def per_example_statistics(self, x):
    if self.training:
        self.update(*self.statistics(x), len(x))
    mu, var = x.mean(axis=1, keepdims=True), x.var(axis=1, keepdims=True)
    self.xhat, self.inv_std = self.normalize(x, mu, var)
    return self.xhat * self.weight.data + self.bias.data


def no_gamma_in_dx(self, dout):
    m = len(dout)
    return self.inv_std / m * (m * dout - dout.sum(0) - self.xhat * (dout * self.xhat).sum(0))


def sums_not_means(self, dout):
    return self.weight.data * self.inv_std * (len(dout) * dout - dout.sum(0) - self.xhat * (dout * self.xhat).sum(0))


@pytest.mark.parametrize("layer, message", [
    (bn_variant(forward=lambda self, x: ...), r"still Ellipsis"),
    (bn_variant(forward=running_in_training),
     r"in training mode, x is normalised with the running statistics: training uses the batch"),
    (bn_variant(forward=batch_in_evaluation), r"in evaluation mode x is normalised with the batch's statistics"),
    (bn_variant(update=biased_running_var), r"running_var averages the biased variance.* unbiased"),
    (bn_variant(statistics=unbiased_normalization), r"normalised with the unbiased variance \(divided by m - 1\)"),
    (bn_variant(forward=swapped_variances), r"the biased and the unbiased variance are swapped"),
    (bn_variant(normalize=eps_outside), r"eps is added outside the square root"),
    (bn_variant(update=momentum_swapped), r"momentum is the weight of the NEW batch"),
    (bn_variant(update=lambda self, mu, var, m: None), r"after a training-mode forward, running_mean was not updated"),
    (bn_variant(forward=no_gamma_beta), r"gamma and beta are not applied"),
    (bn_variant(input_grad=constants_mu_sigma), r"dx treats mu and sigma as constants"),
    (bn_variant(input_grad=no_variance_term), r"dx misses the term through the variance"),
    (bn_variant(input_grad=no_mean_term), r"dx misses the term through the mean"),
    (bn_variant(param_grads=not_summed), r"weight.grad \(gamma\) has shape \(5, 3\), one row per example"),
    (bn_variant(param_grads=averaged), r"weight.grad \(gamma\) is the mean over the batch; it must be the sum"),
    (bn_variant(param_grads=swapped_parameter_grads), r"gradients of gamma and beta are swapped"),
    (bn_variant(backward=accumulating), r"after a second backward the gradients doubled"),
    (bn_variant(input_grad=training_formula_in_evaluation), r"in evaluation mode backward uses the training formula"),
    (bn_variant(normalize=no_eps), r"in training mode, eps is missing"),
    (bn_variant(forward=per_example_statistics), r"statistics are taken over the features of each example"),
    (bn_variant(input_grad=no_gamma_in_dx), r"gamma is missing from dx"),
    (bn_variant(input_grad=sums_not_means), r"dx is m times too large"),
])
def test_batchnorm_layer_mistakes_are_named(layer, message):
    with pytest.raises(CheckFailed, match=message):
        check_batchnorm_layer(layer)


def test_batchnorm_with_eps_outside_only_in_evaluation_is_still_caught():
    def forward(self, x):
        if self.training:
            return BatchNormRight.forward(self, x)
        self.xhat = (x - self.running_mean) / (np.sqrt(self.running_var) + self.eps)
        self.inv_std = 1 / (np.sqrt(self.running_var) + self.eps)
        return self.xhat * self.weight.data + self.bias.data

    with pytest.raises(CheckFailed, match=r"forward\(x\) in evaluation mode`\[0, \d\] is .* but should be"):
        check_batchnorm_layer(bn_variant(forward=forward))


def mask_kept_as_text(self, x):
    out = DropoutRight.forward(self, x)
    self.mask = "keep" if self.training else self.mask
    return out


def mask_kept_per_example(self, x):
    out = DropoutRight.forward(self, x)
    self.mask = self.mask[:, 0] if self.training else self.mask
    return out


@pytest.mark.parametrize("check, layer, message", [
    (check_dropout_layer, dropout_variant(forward=lambda self, x: "out"), r"should be a numeric array, got str"),
    (check_dropout_layer, dropout_variant(forward=lambda self, x: x[:1]), r"should have shape \(2, 7\), got \(1, 7\)"),
    (check_dropout_layer, dropout_variant(backward=lambda self, dout: None), r"still None \(did you forget `return`"),
    (check_dropout_layer, dropout_variant(forward=mask_kept_as_text),
     r"self.mask should be a boolean array \(True = keep\), got str"),
    (check_dropout_layer, dropout_variant(forward=mask_kept_per_example),
     r"self.mask should have the shape of x, \(2, 7\) \(one entry per unit\), got \(2,\)"),
    (check_dropout_layer, dropout_variant(backward=lambda self, dout: 1 / 0), r"backward\(dout\) .* raised Zero"),
    (check_batchnorm_layer, bn_variant(backward=lambda self, dout: ...), r"backward\(dout\) .* still Ellipsis"),
    (check_batchnorm_layer, bn_variant(forward=lambda self, x: x.mean(0)), r"should have shape \(5, 3\), got \(3,\)"),
    (check_batchnorm_layer, bn_variant(statistics=lambda self, x: (x.mean(1), x.var(1))),
     r"raised ValueError: operands could not be broadcast.* over the batch, axis 0"),
])
def test_answers_of_the_wrong_kind_fail_with_a_message(check, layer, message):
    with pytest.raises(CheckFailed, match=message):
        check(layer)
