"""The core contract: Parameter, Module, Sequential (DESIGN.md, "cnnlab: the contract")."""
import numpy as np
import pytest

from cnnlab import Module, Parameter, Sequential
from cnnlab.module import run_backward


class Affine(Module):
    """y = x W^T + b, written here so the core is tested without depending on cnnlab.layers."""

    def __init__(self, n_in, n_out, seed=0):
        rng = np.random.default_rng(seed)
        self.weight = Parameter(rng.standard_normal((n_out, n_in)).astype(np.float32))
        self.bias = Parameter(rng.standard_normal(n_out).astype(np.float32))

    def forward(self, x):
        self.x = x
        return x @ self.weight.data.T + self.bias.data

    def backward(self, dout):
        self.weight.grad = dout.T @ self.x
        self.bias.grad = dout.sum(axis=0)
        return dout @ self.weight.data

    def extra_repr(self):
        return f"in_features={self.weight.shape[1]}, out_features={self.weight.shape[0]}"


class Square(Module):
    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, dout):
        return 2 * self.x * dout


class RunningMean(Module):
    """A module with a buffer, like BatchNorm's running statistics."""

    def __init__(self, n):
        self.scale = Parameter(np.ones(n, np.float32))
        self.register_buffer("running_mean", np.zeros(n, np.float32))
        self.register_buffer("num_batches", np.zeros((), np.int64))

    def forward(self, x):
        if self.training:
            self.running_mean += x.mean(axis=0)
            self.num_batches += 1
        return x * self.scale.data

    def backward(self, dout):
        return dout * self.scale.data


def make_net():
    return Sequential([Affine(3, 5, seed=1), Square(), Affine(5, 2, seed=2)])


# --- Parameter -----------------------------------------------------------------------------------
def test_parameter_has_zero_grad_of_same_shape_and_copies_its_data():
    source = np.arange(6, dtype=np.float32).reshape(2, 3)
    p = Parameter(source)
    source[0, 0] = 100
    assert p.data[0, 0] == 0
    assert p.grad.shape == (2, 3) and p.grad.dtype == np.float32 and not p.grad.any()
    assert p.requires_grad and p.size == 6


def test_parameter_refuses_non_numeric_data():
    with pytest.raises(TypeError, match="numeric"):
        Parameter(np.array(["a", "b"]))


# --- the tree ------------------------------------------------------------------------------------
def test_parameters_are_listed_weight_first_then_bias_in_layer_order():
    net = make_net()
    names = [name for name, _ in net.named_parameters()]
    assert names == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert [p.shape for p in net.parameters()] == [(5, 3), (5,), (2, 5), (2,)]


def test_a_module_referenced_twice_lists_its_parameters_once_so_an_optimizer_accepts_the_net():
    from cnnlab.optim import SGD

    class WithAlias(Module):  # keeps a second name for its last layer, used once in forward
        def __init__(self):
            self.body = Sequential([Affine(4, 4), Affine(4, 4, seed=1)])
            self.last = self.body[1]

    net = WithAlias()
    assert [n for n, _ in net.named_parameters()] == ["body.0.weight", "body.0.bias", "body.1.weight",
                                                      "body.1.bias", "last.weight", "last.bias"]
    assert len(net.parameters()) == 4
    assert [id(p) for p in net.parameters()[2:]] == [id(net.last.weight), id(net.last.bias)]
    SGD(net.parameters(), lr=0.1)  # would refuse a parameter listed twice


def test_sequential_indexing_len_iteration_and_slicing():
    net = make_net()
    assert len(net) == 3
    assert isinstance(net[1], Square)
    assert list(net) == net.layers
    head = net[:2]
    assert isinstance(head, Sequential) and len(head) == 2 and head[0] is net[0]
    assert Sequential(Affine(2, 2), Square()).__len__() == 2  # varargs form too


def test_sequential_refuses_non_modules_with_the_offending_item():
    with pytest.raises(TypeError, match="item 1 is int"):
        Sequential([Square(), 3])


def test_nested_modules_get_dotted_names():
    class Block(Module):
        def __init__(self):
            self.body = Sequential([Affine(2, 2), Square()])
            self.head = Affine(2, 1)

        def forward(self, x):
            return self.head(self.body(x))

        def backward(self, dout):
            return self.body.backward(self.head.backward(dout))

    names = [name for name, _ in Block().named_parameters()]
    assert names == ["body.0.weight", "body.0.bias", "head.weight", "head.bias"]


# --- forward / backward ----------------------------------------------------------------------------
def test_calling_a_module_is_forward():
    net, x = make_net(), np.ones((4, 3), np.float32)
    np.testing.assert_array_equal(net(x), net.forward(x))


def test_sequential_backward_is_the_chain_rule_checked_by_finite_differences():
    net = make_net().astype(np.float64)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3))
    g = rng.standard_normal((4, 2))  # random upstream gradient: L = sum(net(x) * g)
    net(x)
    dx = net.backward(g)
    eps = 1e-6
    num_dx = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        up = np.sum(net(x) * g)
        x[i] = old - eps
        down = np.sum(net(x) * g)
        x[i] = old
        num_dx[i] = (up - down) / (2 * eps)
    np.testing.assert_allclose(dx, num_dx, rtol=1e-7, atol=1e-8)
    w = net[2].weight
    net(x)
    net.backward(g)
    analytic = w.grad.copy()
    numeric = np.zeros_like(w.data)
    for i in np.ndindex(w.shape):
        old = w.data[i]
        w.data[i] = old + eps
        up = np.sum(net(x) * g)
        w.data[i] = old - eps
        down = np.sum(net(x) * g)
        w.data[i] = old
        numeric[i] = (up - down) / (2 * eps)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-7, atol=1e-8)


def test_backward_overwrites_gradients_instead_of_accumulating():
    net, x = make_net(), np.ones((2, 3), np.float32)
    g = np.ones((2, 2), np.float32)
    net(x)
    net.backward(g)
    first = [p.grad.copy() for p in net.parameters()]
    net(x)
    net.backward(g)
    for before, p in zip(first, net.parameters()):
        np.testing.assert_array_equal(p.grad, before)


def test_backward_before_forward_is_a_clear_runtime_error():
    with pytest.raises(RuntimeError, match=r"Affine.backward\(\) was called before Affine.forward\(\)"):
        Affine(3, 2).backward(np.ones((1, 2), np.float32))


def test_backward_with_a_wrongly_shaped_gradient_names_both_shapes():
    """Checked where a container runs the backward (run_backward, as Sequential does)."""
    layer = Affine(3, 2)
    layer(np.ones((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"Affine.backward\(\) expected dout of shape \(4, 2\).*got \(4, 3\)"):
        run_backward(layer, np.ones((4, 3), np.float32))
    with pytest.raises(TypeError, match="numpy array"):
        run_backward(layer, [[1.0, 2.0]] * 4)
    net = Sequential(layer, Square())
    net(np.ones((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"Square.backward\(\) expected dout of shape \(4, 2\)"):
        net.backward(np.ones((4, 1), np.float32))     # would broadcast silently without the check


def test_zero_grad_clears_every_gradient():
    net = make_net()
    net(np.ones((2, 3), np.float32))
    net.backward(np.ones((2, 2), np.float32))
    assert any(p.grad.any() for p in net.parameters())
    net.zero_grad()
    assert not any(p.grad.any() for p in net.parameters())


# --- modes and dtypes ----------------------------------------------------------------------------------
def test_train_and_eval_set_the_mode_of_every_submodule():
    net = Sequential([make_net(), RunningMean(2)])
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())


def test_astype_casts_parameters_gradients_and_float_buffers_only():
    net = Sequential([Affine(2, 2), RunningMean(2)]).astype(np.float64)
    for p in net.parameters():
        assert p.data.dtype == np.float64 and p.grad.dtype == np.float64
    assert net[1].running_mean.dtype == np.float64
    assert net[1].num_batches.dtype == np.int64
    assert net(np.ones((1, 2))).dtype == np.float64
    with pytest.raises(TypeError, match="floating dtype"):
        net.astype(np.int32)


# --- state_dict ------------------------------------------------------------------------------------------
def test_state_dict_round_trip_restores_parameters_and_buffers():
    net = Sequential([Affine(3, 2, seed=5), RunningMean(2)])
    net(np.full((4, 3), 2.0, np.float32))  # moves the buffer
    state = net.state_dict()
    assert list(state) == ["0.weight", "0.bias", "1.scale", "1.running_mean", "1.num_batches"]
    other = Sequential([Affine(3, 2, seed=9), RunningMean(2)])
    other.load_state_dict(state)
    x = np.random.default_rng(1).standard_normal((5, 3)).astype(np.float32)
    other.eval(), net.eval()
    np.testing.assert_array_equal(other(x), net(x))
    np.testing.assert_array_equal(other[1].running_mean, net[1].running_mean)
    assert other[1].num_batches == 1


def test_state_dict_holds_copies():
    net = Sequential([Affine(3, 2)])
    state = net.state_dict()
    state["0.weight"][...] = 7
    assert not np.all(net[0].weight.data == 7)


def test_load_state_dict_names_missing_unexpected_and_misshapen_entries_and_changes_nothing():
    net = Sequential([Affine(3, 2)])
    before = net[0].weight.data.copy()
    bad = net.state_dict()
    del bad["0.bias"]
    bad["extra"] = np.zeros(1)
    with pytest.raises(KeyError, match=r"missing keys \['0.bias'\], unexpected keys \['extra'\]"):
        net.load_state_dict(bad)
    wrong = net.state_dict()
    wrong["0.weight"] = np.zeros((9, 9))
    wrong["0.bias"] = np.full(2, 5.0)
    with pytest.raises(ValueError, match=r"'0.weight' has shape \(2, 3\) in the module but \(9, 9\)"):
        net.load_state_dict(wrong)
    np.testing.assert_array_equal(net[0].weight.data, before)
    assert not np.any(net[0].bias.data == 5.0)


@pytest.mark.parametrize("last, bad, error, message", [
    ("1.running_mean", np.array(["a", "b"]), TypeError, r"'1.running_mean' is float32 in the module, so the state "
                                                         r"dict must hold real numbers; got dtype <U1"),
    ("1.running_mean", np.array([None, None]), TypeError, r"must hold real numbers; got dtype object"),
    ("1.running_mean", np.array([1 + 2j, 0j]), TypeError, r"must hold real numbers; got dtype complex128"),
    ("1.running_mean", np.array([1.0, 1e300]), ValueError, r"'1.running_mean' holds values up to 1e\+300, too large "
                                                            r"for the module's float32 \(they would become inf\)"),
    ("1.running_mean", np.zeros(3), ValueError, r"'1.running_mean' has shape \(2,\) in the module but \(3,\)"),
    ("1.running_mean", [[1.0], [2.0, 3.0]], TypeError, r"'1.running_mean' must be an array of numbers, got list"),
    ("1.num_batches", np.array(1.5), TypeError, r"'1.num_batches' is int64 in the module, so the state dict must "
                                                r"hold integers; got dtype float64"),
    ("1.num_batches", np.array(np.nan), TypeError, r"must hold integers; got dtype float64"),
    ("1.num_batches", np.array(2**64 - 1, np.uint64), ValueError, r"'1.num_batches' holds values outside the range "
                                                                   r"of the module's int64"),
])
def test_load_state_dict_with_a_bad_last_entry_changes_nothing(last, bad, error, message):
    net = Sequential([Affine(3, 2, seed=5), RunningMean(2)])
    before = {k: v.copy() for k, v in net.state_dict().items()}
    source = Sequential([Affine(3, 2, seed=9), RunningMean(2)])
    source(np.full((4, 2), 2.0, np.float32) @ np.ones((2, 3), np.float32))  # moves the buffers
    state = source.state_dict()
    assert all(np.any(state[k] != before[k]) for k in ("0.weight", "0.bias", "1.running_mean", "1.num_batches"))
    del state[last]
    state[last] = bad  # now the LAST entry: every valid one before it must stay unapplied
    with pytest.raises(error, match=message):
        net.load_state_dict(state)
    for name, value in net.state_dict().items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)
        assert value.dtype == before[name].dtype


def test_load_state_dict_converts_to_the_module_dtype_and_refuses_a_non_mapping():
    net = Sequential([RunningMean(2)])
    net.load_state_dict({"0.scale": np.array([2, 3]), "0.running_mean": np.array([0.5, 0.25]),
                         "0.num_batches": np.array(4, np.int32)})
    assert net[0].scale.data.dtype == np.float32 and net[0].scale.data.tolist() == [2.0, 3.0]
    assert net[0].running_mean.dtype == np.float32 and net[0].running_mean.tolist() == [0.5, 0.25]
    assert net[0].num_batches.dtype == np.int64 and int(net[0].num_batches) == 4
    with pytest.raises(TypeError, match="expects a mapping name -> array"):
        net.load_state_dict([("0.scale", np.ones(2))])


# --- display ---------------------------------------------------------------------------------------------
def test_repr_lists_children_like_pytorch():
    text = repr(make_net())
    assert text.splitlines()[0] == "Sequential("
    assert "(0): Affine(in_features=3, out_features=5)" in text
    assert "(1): Square()" in text


def test_summary_reports_output_shapes_and_parameter_counts():
    net = make_net()
    net[2].bias.requires_grad = False
    s = net.summary((3,))
    rows = {r.name: r for r in s.rows}
    assert rows["0"].output_shape == (-1, 5) and rows["0"].params == 3 * 5 + 5
    assert rows["1"].output_shape == (-1, 5) and rows["1"].params == 0
    assert rows["2"].output_shape == (-1, 2) and rows["2"].params == 5 * 2 + 2
    assert s.total_params == 15 + 5 + 10 + 2 and s.trainable_params == s.total_params - 2
    text = str(s)
    assert "total parameters: 32 (30 trainable, 2 frozen)" in text
    assert "(-1, 5)" in text


def test_summary_runs_in_eval_mode_and_restores_the_mode():
    net = Sequential([Affine(2, 2), RunningMean(2)])
    net.summary((2,))
    assert net[1].num_batches == 0  # eval mode: the running statistics did not move
    assert net.training and net[1].training


def test_eval_mode_gives_every_sub_module_back_its_own_mode_even_after_an_error():
    from cnnlab import eval_mode

    net = make_net()
    net.train()
    net[2].eval()  # a layer frozen on purpose inside a training network
    with pytest.raises(RuntimeError, match="inside"):
        with eval_mode(net) as inside:
            assert inside is net and not any(m.training for m in net.modules())
            raise RuntimeError("inside the block")
    assert [m.training for m in net.modules()] == [True, True, True, False]


def test_predict_evaluate_and_summary_keep_a_frozen_layer_frozen():
    from cnnlab.losses import MSELoss
    from cnnlab.metrics import predict
    from cnnlab.train import evaluate

    net = make_net().train()
    net[0].eval()
    X = np.ones((4, 3), dtype=np.float32)
    predict(net, X)
    evaluate(net, MSELoss(), X, np.zeros((4, 2), dtype=np.float32))
    net.summary((3,))
    assert [m.training for m in net.modules()] == [True, False, True, True]



def test_sequential_refuses_a_layer_used_twice_or_a_shared_weight_naming_both_places():
    from cnnlab.layers import Linear, ReLU, Sigmoid

    lin, act = Linear(3, 3, rng=0), ReLU()
    with pytest.raises(ValueError, match=r"2 \(Linear\) is the same object as 0; .* create a second Linear"):
        Sequential([lin, Sigmoid(), lin])
    with pytest.raises(ValueError, match=r"3 \(ReLU\) is the same object as 1"):
        Sequential([Linear(3, 3, rng=0), act, Linear(3, 3, rng=1), act])
    with pytest.raises(ValueError, match=r"1\.0 \(Linear\) is the same object as 0"):
        Sequential([lin, Sequential([lin])])
    a, b = Linear(3, 3, rng=0), Linear(3, 3, rng=1)
    b.weight = a.weight
    with pytest.raises(ValueError, match=r"2\.weight and 0\.weight are the same Parameter \(tied weights\)"):
        Sequential([a, Sigmoid(), b])
    Sequential([Linear(3, 3, rng=0), ReLU(), Linear(3, 3, rng=1), ReLU()])  # separate layers are fine
