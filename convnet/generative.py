"""Training and evaluating the generative models on MNIST.

The code behind ``convnet autoencoder train`` and ``experiments/autoencoders.py``: load MNIST
as float images in [0, 1], train one of :mod:`convnet.models.autoencoder`'s models with the
:class:`~convnet.solver.Solver` (the input is its own target), and write the pictures of
:mod:`convnet.viz.latent` with a small summary of the figures that measure the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from convnet.models.autoencoder import VAE, _AutoencoderBase, build_autoencoder, knn_accuracy
from convnet.viz import latent as figs


def load_mnist_unit(subset: int | None = None) -> dict[str, np.ndarray]:
    """MNIST as float32 images (N, 1, 28, 28) in [0, 1], with labels; training set 60000 digits
    (the validation split is folded back in: autoencoders need no model selection here)."""
    from convnet.data import load_mnist

    raw = load_mnist(validation=0)
    X_train = raw["X_train"].astype(np.float32) / 255.0
    X_test = raw["X_test"].astype(np.float32) / 255.0
    y_train, y_test = raw["y_train"], raw["y_test"]
    if subset is not None:
        if subset < 1:
            raise ValueError(f"--subset must be positive, got {subset}")
        X_train, y_train = X_train[:subset], y_train[:subset]
    return {"X_train": X_train, "y_train": y_train, "X_test": X_test, "y_test": y_test}


def train_autoencoder(
    kind: str,
    latent_dim: int = 2,
    epochs: int = 3,
    batch_size: int = 128,
    lr: float = 1e-3,
    beta: float = 1.0,
    course_loss: bool = False,
    subset: int | None = None,
    seed: int = 0,
    verbose: bool = True,
    data: dict[str, np.ndarray] | None = None,
    checkpoint_path: str | Path | None = None,
    resume: bool = False,
    divergence_factor: float | None = 10.0,
) -> tuple[_AutoencoderBase, dict[str, np.ndarray], dict[str, Any]]:
    """Train a ``kind`` ('dense' | 'conv' | 'vae') model with Adam; return model, data, history.

    With ``checkpoint_path`` the training state is written before the first step and after
    every epoch; ``resume=True`` continues from it (bit for bit; ``epochs`` may grow).
    ``divergence_factor`` goes to the Solver's loss guard (None disables it).
    """
    from convnet.solver import Solver

    if resume and checkpoint_path is None:
        raise ValueError("train_autoencoder: resume=True needs checkpoint_path")

    if data is None:
        data = load_mnist_unit(subset)
    kwargs: dict[str, Any] = {"latent_dim": latent_dim, "seed": seed}
    if kind == "vae":
        kwargs.update(beta=beta, course_loss=course_loss)
    model = build_autoencoder(kind, **kwargs)
    solver_data = {"X_train": data["X_train"], "y_train": data["X_train"],
                   "X_val": data["X_test"][:1000], "y_val": data["X_test"][:1000]}
    if resume:
        solver = Solver.resume(checkpoint_path, model, solver_data, verbose=verbose,
                               num_epochs=epochs)
        solver.train()
        return model, data, {"loss_history": list(solver.loss_history)}
    solver = Solver(
        model,
        solver_data,
        update_rule="adam",
        optim_config={"learning_rate": lr},
        batch_size=batch_size,
        num_epochs=epochs,
        unsupervised=True,
        checkpoint_path=checkpoint_path,
        seed=seed,
        verbose=verbose,
        divergence_factor=divergence_factor,
    )
    solver.train()
    return model, data, {"loss_history": list(solver.loss_history)}


def reconstruction_mse(model: _AutoencoderBase, X: np.ndarray) -> float:
    """Mean squared error per pixel between X and its reconstruction (through mean codes)."""
    return float(np.mean((model.reconstruct(X) - X) ** 2))


def evaluate(model: _AutoencoderBase, data: dict[str, np.ndarray], n_neighbours: int = 10000,
             k: int = 5) -> dict[str, float]:
    """The figures that measure a model on the test set.

    ``mse``: reconstruction error per pixel; ``knn_acc``: accuracy of a ``k``-NN vote on the
    test codes (VAE: means) with the codes of the first ``n_neighbours`` training digits as
    neighbours; for the VAE also per-image ``bce``, ``kl`` and ``neg_elbo``.
    """
    X_test, y_test = data["X_test"], data["y_test"]
    out = {"mse": reconstruction_mse(model, X_test)}
    train_codes = model.encode(data["X_train"][:n_neighbours])
    out["knn_acc"] = knn_accuracy(train_codes, data["y_train"][:n_neighbours],
                                  model.encode(X_test), y_test, k=k)
    if isinstance(model, VAE):
        out.update(model.elbo_terms(X_test))
    return out


def write_autoencoder_figures(model: _AutoencoderBase, data: dict[str, np.ndarray],
                              out: str | Path, grid: int = 15,
                              prefix: str = "") -> dict[str, Any]:
    """Write every picture that fits the model into ``out``; return the measured figures."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    X_test, y_test = data["X_test"], data["y_test"]
    summary: dict[str, Any] = evaluate(model, data)
    figs.reconstruction_grid(X_test[:12], model.reconstruct(X_test[:12]),
                             out / f"{prefix}reconstructions.png")
    codes = model.encode(X_test)
    if model.latent_dim == 2:
        figs.latent_scatter(codes, y_test, out / f"{prefix}latent_scatter.png",
                            title=f"{type(model).__name__}: test set in the latent space")
        radius = float(np.ceil(np.percentile(np.abs(codes), 99)))
        _, tiles = figs.manifold_grid(model.decode, out / f"{prefix}manifold_linear.png",
                                      n=grid, radius=radius)
        figs.manifold_grid(model.decode, out / f"{prefix}manifold_quantiles.png", n=grid,
                           quantiles=True)
        summary["manifold_std"] = float(tiles.std())
    else:
        figs.code_dims_scatter(codes, y_test, out / f"{prefix}code_dims.png", dims=(0, 1))
    # Interpolate between the first test 1 and the first test 7 (two digits whose shapes are close).
    i0, i1 = int(np.flatnonzero(y_test == 1)[0]), int(np.flatnonzero(y_test == 7)[0])
    figs.interpolation_strip(model.decode, codes[i0], codes[i1],
                             out / f"{prefix}interpolation.png")
    return summary
