"""Code written for the kit, with only ``cs231n.`` changed to ``convnet.cs231n.``, runs.

The snippets below are written the way the kit's exercise notebooks are: star imports of
the kit's modules, a local ``rel_error``, ``np.random.seed`` before each check, results
printed. They are executed with ``exec`` in a fresh namespace and their results read back.
"""

# The kit's exercises seed and draw from NumPy's global random state; so do these tests.
# ruff: noqa: NPY002

from __future__ import annotations

import importlib

import numpy as np
import pytest
from conftest import need_data

from convnet._threads import single_threaded_blas

PRELUDE = '''
import numpy as np
from convnet.cs231n.classifiers.fc_net import *
from convnet.cs231n.classifiers.cnn import *
from convnet.cs231n.data_utils import get_CIFAR10_data
from convnet.cs231n.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array
from convnet.cs231n.solver import Solver
from convnet.cs231n.layers import *
from convnet.cs231n.fast_layers import *
from convnet.cs231n.layer_utils import *
from convnet.cs231n.optim import *
from convnet.cs231n.vis_utils import visualize_grid

def rel_error(x, y):
    return np.max(np.abs(x - y) / (np.maximum(1e-8, np.abs(x) + np.abs(y))))

results = {}
'''

FULLY_CONNECTED = '''
num_inputs = 2
input_shape = (4, 5, 6)
output_dim = 3
input_size = num_inputs * np.prod(input_shape)
weight_size = output_dim * np.prod(input_shape)
x = np.linspace(-0.1, 0.5, num=input_size).reshape(num_inputs, *input_shape)
w = np.linspace(-0.2, 0.3, num=weight_size).reshape(np.prod(input_shape), output_dim)
b = np.linspace(-0.3, 0.1, num=output_dim)
out, _ = affine_forward(x, w, b)
correct_out = np.array([[ 1.49834967,  1.70660132,  1.91485297],
                        [ 3.25553199,  3.5141327,   3.77273342]])
print('Testing affine_forward function:')
print('difference: ', rel_error(out, correct_out))
results['affine_forward'] = rel_error(out, correct_out)

np.random.seed(231)
x = np.random.randn(2, 3, 4)
w = np.random.randn(12, 10)
b = np.random.randn(10)
dout = np.random.randn(2, 10)
out, cache = affine_relu_forward(x, w, b)
dx, dw, db = affine_relu_backward(dout, cache)
dx_num = eval_numerical_gradient_array(lambda x: affine_relu_forward(x, w, b)[0], x, dout)
dw_num = eval_numerical_gradient_array(lambda w: affine_relu_forward(x, w, b)[0], w, dout)
db_num = eval_numerical_gradient_array(lambda b: affine_relu_forward(x, w, b)[0], b, dout)
results['affine_relu'] = max(rel_error(dx_num, dx), rel_error(dw_num, dw),
                             rel_error(db_num, db))

np.random.seed(231)
N, D, H1, H2, C = 2, 15, 20, 30, 10
X = np.random.randn(N, D)
y = np.random.randint(C, size=(N,))
for reg in [0, 3.14]:
    print('Running check with reg = ', reg)
    model = FullyConnectedNet([H1, H2], input_dim=D, num_classes=C,
                              reg=reg, weight_scale=5e-2, dtype=np.float64)
    loss, grads = model.loss(X, y)
    print('Initial loss: ', loss)
    for name in sorted(grads):
        f = lambda _: model.loss(X, y)[0]
        grad_num = eval_numerical_gradient(f, model.params[name], verbose=False, h=1e-5)
        print('%s relative error: %.2e' % (name, rel_error(grad_num, grads[name])))
    results['fc_loss_reg_%s' % reg] = loss

N, D = 4, 5
w = np.linspace(-0.4, 0.6, num=N*D).reshape(N, D)
dw = np.linspace(-0.6, 0.4, num=N*D).reshape(N, D)
v = np.linspace(0.6, 0.9, num=N*D).reshape(N, D)
config = {'learning_rate': 1e-3, 'velocity': v}
next_w, _ = sgd_momentum(w, dw, config=config)
results['sgd_momentum_w00'] = next_w[0, 0]

num_train = 50
rng = np.random.RandomState(0)
small_data = {
  'X_train': rng.randn(num_train, 3, 8, 8), 'y_train': rng.randint(10, size=num_train),
  'X_val': rng.randn(20, 3, 8, 8), 'y_val': rng.randint(10, size=20),
}
np.random.seed(231)
model = FullyConnectedNet([100, 100], input_dim=3*8*8, weight_scale=1e-1, dtype=np.float64)
solver = Solver(model, small_data,
                print_every=10, num_epochs=20, batch_size=25,
                update_rule='sgd',
                optim_config={
                  'learning_rate': 1e-1,
                },
                lr_decay=0.95,
                checkpoint_name=checkpoint_name,
         )
solver.train()
results['train_acc_history'] = solver.train_acc_history
results['loss_history'] = solver.loss_history
'''

NORM_DROPOUT = '''
np.random.seed(231)
N, D1, D2, D3 = 200, 50, 60, 3
X = np.random.randn(N, D1)
W1 = np.random.randn(D1, D2)
W2 = np.random.randn(D2, D3)
a = np.maximum(0, X.dot(W1)).dot(W2)
gamma = np.asarray([1.0, 2.0, 3.0])
beta = np.asarray([11.0, 12.0, 13.0])
a_norm, _ = batchnorm_forward(a, gamma, beta, {'mode': 'train'})
print('  means: ', a_norm.mean(axis=0))
print('  stds:  ', a_norm.std(axis=0))
results['bn_means'] = a_norm.mean(axis=0)
results['bn_stds'] = a_norm.std(axis=0)

np.random.seed(231)
N, D = 100, 500
x = 5 * np.random.randn(N, D) + 12
gamma = np.random.randn(D)
beta = np.random.randn(D)
dout = np.random.randn(N, D)
bn_param = {'mode': 'train'}
out, cache = batchnorm_forward(x, gamma, beta, bn_param)
dx1, dgamma1, dbeta1 = batchnorm_backward(dout, cache)
dx2, dgamma2, dbeta2 = batchnorm_backward_alt(dout, cache)
results['bn_alt_dx'] = rel_error(dx1, dx2)

np.random.seed(231)
x = np.random.randn(500, 500) + 10
for p in [0.25, 0.4, 0.7]:
    out, _ = dropout_forward(x, {'mode': 'train', 'p': p})
    out_test, _ = dropout_forward(x, {'mode': 'test', 'p': p})
    results['dropout_zero_fraction_%s' % p] = (out == 0).mean()

np.random.seed(231)
x = np.random.randn(10, 10) + 10
dout = np.random.randn(*x.shape)
dropout_param = {'mode': 'train', 'p': 0.2, 'seed': 123}
out, cache = dropout_forward(x, dropout_param)
dx = dropout_backward(dout, cache)
dx_num = eval_numerical_gradient_array(lambda xx: dropout_forward(xx, dropout_param)[0], x, dout)
results['dropout_dx'] = rel_error(dx, dx_num)

np.random.seed(231)
N, D, H1, H2, C = 2, 15, 20, 30, 10
X = np.random.randn(N, D)
y = np.random.randint(C, size=(N,))
for dropout in [1, 0.75, 0.5]:
    model = FullyConnectedNet([H1, H2], input_dim=D, num_classes=C,
                              weight_scale=5e-2, dtype=np.float64,
                              dropout=dropout, seed=123)
    loss, grads = model.loss(X, y)
    f = lambda _: model.loss(X, y)[0]
    grad_num = eval_numerical_gradient(f, model.params['W3'], verbose=False, h=1e-5)
    results['dropout_W3_%s' % dropout] = rel_error(grad_num, grads['W3'])

model = FullyConnectedNet([H1, H2], input_dim=D, num_classes=C, weight_scale=5e-2,
                          normalization='layernorm', dtype=np.float64)
results['ln_params'] = sorted(model.params)
'''

CONVOLUTIONAL = '''
x_shape = (2, 3, 4, 4)
w_shape = (3, 3, 4, 4)
x = np.linspace(-0.1, 0.5, num=np.prod(x_shape)).reshape(x_shape)
w = np.linspace(-0.2, 0.3, num=np.prod(w_shape)).reshape(w_shape)
b = np.linspace(-0.1, 0.2, num=3)
conv_param = {'stride': 2, 'pad': 1}
out, _ = conv_forward_naive(x, w, b, conv_param)
correct_out = np.array([[[[-0.08759809, -0.10987781],
                           [-0.18387192, -0.2109216 ]],
                          [[ 0.21027089,  0.21661097],
                           [ 0.22847626,  0.23004637]],
                          [[ 0.50813986,  0.54309974],
                           [ 0.64082444,  0.67101435]]],
                         [[[-0.98053589, -1.03143541],
                           [-1.19128892, -1.24695841]],
                          [[ 0.69108355,  0.66880383],
                           [ 0.59480972,  0.56776003]],
                          [[ 2.36270298,  2.36904306],
                           [ 2.38090835,  2.38247847]]]])
results['conv_forward'] = rel_error(out, correct_out)

np.random.seed(231)
x = np.random.randn(4, 3, 31, 31)
w = np.random.randn(25, 3, 3, 3)
b = np.random.randn(25,)
dout = np.random.randn(4, 25, 16, 16)
conv_param = {'stride': 2, 'pad': 1}
out_naive, cache_naive = conv_forward_naive(x, w, b, conv_param)
out_fast, cache_fast = conv_forward_fast(x, w, b, conv_param)
dx_naive, dw_naive, db_naive = conv_backward_naive(dout, cache_naive)
dx_fast, dw_fast, db_fast = conv_backward_fast(dout, cache_fast)
results['conv_fast'] = max(rel_error(out_naive, out_fast), rel_error(dx_naive, dx_fast),
                           rel_error(dw_naive, dw_fast), rel_error(db_naive, db_fast))

np.random.seed(231)
x = np.random.randn(20, 3, 32, 32)
dout = np.random.randn(20, 3, 16, 16)
pool_param = {'pool_height': 2, 'pool_width': 2, 'stride': 2}
out_naive, cache_naive = max_pool_forward_naive(x, pool_param)
out_fast, cache_fast = max_pool_forward_fast(x, pool_param)
results['pool_fast'] = max(
    rel_error(out_naive, out_fast),
    rel_error(max_pool_backward_naive(dout, cache_naive), max_pool_backward_fast(dout, cache_fast)))

np.random.seed(231)
N, C, H, W = 2, 3, 4, 5
x = 4 * np.random.randn(N, C, H, W) + 10
gamma, beta = np.asarray([3, 4, 5]), np.asarray([6, 7, 8])
out, _ = spatial_batchnorm_forward(x, gamma, beta, {'mode': 'train'})
results['sbn_means'] = out.mean(axis=(0, 2, 3))

np.random.seed(231)
N, C, H, W = 2, 6, 4, 5
G = 2
x = 4 * np.random.randn(N, C, H, W) + 10
gamma = np.ones((1, C, 1, 1))
beta = np.zeros((1, C, 1, 1))
out, _ = spatial_groupnorm_forward(x, gamma, beta, G, {'mode': 'train'})
results['gn_stds'] = out.reshape((N * G, -1)).std(axis=1)

np.random.seed(231)
model = ThreeLayerConvNet(num_filters=3, filter_size=3, input_dim=(3, 16, 16),
                          hidden_dim=7, dtype=np.float64)
X = np.random.randn(2, 3, 16, 16)
y = np.random.randint(10, size=2)
loss, grads = model.loss(X, y)
f = lambda _: model.loss(X, y)[0]
param_grad_num = eval_numerical_gradient(f, model.params['W3'], verbose=False, h=1e-6)
results['cnn_W3'] = rel_error(param_grad_num, grads['W3'])
grid = visualize_grid(model.params['W1'].transpose(0, 2, 3, 1))
results['grid_shape'] = grid.shape
'''

CIFAR = '''
data = get_CIFAR10_data(num_training=500, num_validation=100, num_test=100)
for k, v in list(data.items()):
    print(('%s: ' % k, v.shape))
np.random.seed(231)
num_train = 50
small_data = {
  'X_train': data['X_train'][:num_train],
  'y_train': data['y_train'][:num_train],
  'X_val': data['X_val'],
  'y_val': data['y_val'],
}
weight_scale = 1e-2
learning_rate = 1e-2
model = FullyConnectedNet([100, 100],
              weight_scale=weight_scale, dtype=np.float64)
solver = Solver(model, small_data,
                print_every=10, num_epochs=20, batch_size=25,
                update_rule='sgd',
                optim_config={
                  'learning_rate': learning_rate,
                }
         )
solver.train()
results['train_acc'] = solver.train_acc_history[-1]
results['shapes'] = {k: v.shape for k, v in data.items()}
'''


def _run(*snippets: str, **names) -> dict:
    namespace = dict(names)
    with single_threaded_blas():
        exec(PRELUDE + "\n".join(snippets), namespace)  # noqa: S102 - our own test strings
    return namespace["results"]


def test_fully_connected_notebook_code(tmp_path, capsys):
    r = _run(FULLY_CONNECTED, checkpoint_name=str(tmp_path / "fc"))
    assert r["affine_forward"] < 1e-8
    assert r["affine_relu"] < 1e-8
    assert abs(r["fc_loss_reg_0"] - np.log(10)) < 0.5
    assert r["fc_loss_reg_3.14"] > r["fc_loss_reg_0"]
    assert abs(r["sgd_momentum_w00"] - 0.1406) < 1e-8
    assert len(r["train_acc_history"]) == 21 and len(r["loss_history"]) == 40
    assert r["train_acc_history"][-1] > 0.9  # 50 random inputs, memorised
    assert (tmp_path / "fc_epoch_20.npz").exists()
    out = capsys.readouterr().out
    assert "(Iteration 1 / 40) loss:" in out and "(Epoch 20 / 20) train acc:" in out


def test_normalization_and_dropout_notebook_code():
    r = _run(NORM_DROPOUT)
    assert np.allclose(r["bn_means"], [11, 12, 13], atol=1e-6)
    assert np.allclose(r["bn_stds"], [1, 2, 3], atol=1e-4)
    assert r["bn_alt_dx"] < 1e-10
    for p in (0.25, 0.4, 0.7):
        assert abs(r[f"dropout_zero_fraction_{p}"] - (1 - p)) < 0.01
    assert r["dropout_dx"] < 1e-10
    for dropout in (1, 0.75, 0.5):
        assert r[f"dropout_W3_{dropout}"] < 1e-6
    assert r["ln_params"] == ["W1", "W2", "W3", "b1", "b2", "b3", "beta1", "beta2",
                              "gamma1", "gamma2"]


def test_convolutional_notebook_code():
    r = _run(CONVOLUTIONAL)
    assert r["conv_forward"] < 1e-7
    assert r["conv_fast"] < 1e-9
    assert r["pool_fast"] < 1e-12
    assert np.allclose(r["sbn_means"], [6, 7, 8], atol=1e-6)
    assert np.allclose(r["gn_stds"], 1, atol=1e-4)
    assert r["cnn_W3"] < 1e-4
    assert r["grid_shape"] == (2 * 3 + 1, 2 * 3 + 1, 3)


def test_cifar_notebook_code():
    need_data("cifar-10-batches-py/data_batch_5")
    r = _run(CIFAR)
    assert r["shapes"]["X_train"] == (500, 3, 32, 32)
    assert r["shapes"]["y_val"] == (100,)
    assert r["train_acc"] == 1.0


LAYERS = {
    "affine_forward", "affine_backward", "relu_forward", "relu_backward", "batchnorm_forward",
    "batchnorm_backward", "batchnorm_backward_alt", "layernorm_forward", "layernorm_backward",
    "dropout_forward", "dropout_backward", "conv_forward_naive", "conv_backward_naive",
    "max_pool_forward_naive", "max_pool_backward_naive", "spatial_batchnorm_forward",
    "spatial_batchnorm_backward", "spatial_groupnorm_forward", "spatial_groupnorm_backward",
    "svm_loss", "softmax_loss"}
FAST = {
    "conv_forward_fast", "conv_backward_fast", "conv_forward_im2col", "conv_backward_im2col",
    "conv_forward_strides", "conv_backward_strides", "max_pool_forward_fast",
    "max_pool_backward_fast", "max_pool_forward_reshape", "max_pool_backward_reshape",
    "max_pool_forward_im2col", "max_pool_backward_im2col"}
SANDWICHES = {
    f"{name}_{d}" for name in ("affine_relu", "affine_bn_relu", "affine_ln_relu", "conv_relu",
                               "conv_bn_relu", "conv_relu_pool") for d in ("forward", "backward")}


@pytest.mark.parametrize("module,names", [
    ("layers", LAYERS),
    ("fast_layers", FAST),
    ("optim", {"sgd", "sgd_momentum", "rmsprop", "adam"}),
    # the kit's layer_utils and classifiers star-imported the layers, so they re-export them
    ("layer_utils", SANDWICHES | LAYERS | FAST),
    ("classifiers.fc_net", {"TwoLayerNet", "FullyConnectedNet"} | SANDWICHES | LAYERS | FAST),
    ("classifiers.cnn", {"ThreeLayerConvNet"} | SANDWICHES | LAYERS | FAST),
])
def test_star_imports_export_the_kit_names(module, names):
    namespace: dict = {}
    exec(f"from convnet.cs231n.{module} import *", namespace)  # noqa: S102
    exported = {k for k in namespace if not k.startswith("__")}
    assert exported == names
    mod = importlib.import_module(f"convnet.cs231n.{module}")
    assert all(callable(getattr(mod, n)) for n in names)
    with pytest.raises(AttributeError):
        mod.no_such_layer  # noqa: B018
