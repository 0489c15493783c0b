"""TELL: interpretable neural clustering (Peng et al., JMLR 23, 2022) as a scikit-learn model.

The cluster layer holds K unit-norm centers Omega_j and weights W_j = 2 Omega_j. A point is
mapped to features z = normalize(f(x)) (f = identity without an encoder) and assigned to
argmax_j W_j . z, which on unit vectors is argmin_j ||z - Omega_j||^2. The clustering loss is
mean_i ||z_i - Omega_c(i)||^2 = mean_i (2 - W_c(i) . z_i) (DESIGN.md section 3).

Training follows the paper: the gradient of every center is rescaled to a fixed fraction
(``center_step``, 10%) of the center's norm before the optimizer step, and the centers are
re-normalised after each step. Additions: k-means++ initialisation on the current features
and ``n_init`` restarts, trained side by side as one (n_init, K, d) tensor and chosen by the
lowest clustering loss.
"""

from __future__ import annotations

import copy
import math
import numbers
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted, check_random_state
from torch import nn
from torch.nn import functional as F

from whyclust._batches import is_array_like, iter_batches
from whyclust._validation import as_float_array, feature_names_of
from whyclust.io import finite_array, register_format
from whyclust.networks import (
    EncodedClusterNetwork,
    KMeansNetwork,
    L2Normalize,
    register_neuralizer,
)

__all__ = ["TELL"]

_OPTIMIZERS = ("sgd", "adadelta", "adam")
_DEFAULT_LR = {"sgd": 5.0, "adadelta": 1.0, "adam": 1e-3}
_ENCODERS = ("mlp", "conv")
_CLUSTER_LOSSES = ("kl", "hard")
_BLOCK_BYTES = 1 << 24  # rows read at once from a memmap / zarr / dask array: ~16 MB


# --------------------------------------------------------------------------------------
# data: an in-memory array or a stream of row batches
# --------------------------------------------------------------------------------------


def _is_stream(X: Any) -> bool:
    """True for sources read batch by batch: memmap, zarr, dask, iterables of batches."""
    import scipy.sparse

    if isinstance(X, np.memmap):
        return True
    if scipy.sparse.issparse(X):  # refused by scikit-learn's validation, with its message
        return False
    if isinstance(X, (np.ndarray, list, tuple, torch.Tensor)) or hasattr(X, "columns"):
        return False
    if is_array_like(X):
        return True
    return isinstance(X, Iterable) and not isinstance(X, (str, bytes))


class _Data:
    """Validated access to training / prediction data, one bounded batch at a time.

    Attributes
    ----------
    array : numpy array or None
        The data, when it is in memory.
    n : int or None
        Number of rows, when known before reading (arrays of any kind).
    once : bool
        True for a one-shot iterator: it can be read a single time.
    """

    def __init__(
        self, X: Any, *, ndim: int | tuple[int, ...], n_features: int | None = None
    ) -> None:
        self.ndim = ndim
        self.n_features = n_features
        self.array: np.ndarray | None = None
        self.source: Any = None
        self.once = False
        self.n: int | None = None
        self.dtype: np.dtype | None = None
        self._pending: list[np.ndarray] = []
        if not _is_stream(X):
            self.array = as_float_array(X, ndim=ndim, n_features=n_features)
            self.n = self.array.shape[0]
            self.dtype = self.array.dtype
            self.shape = self.array.shape[1:]
        elif is_array_like(X):
            shape = tuple(int(s) for s in X.shape)
            allowed = (ndim,) if isinstance(ndim, int) else ndim
            if len(shape) not in allowed:
                raise ValueError(f"X must be a {' or '.join(f'{d}-D' for d in allowed)} "
                                 f"array, got shape {shape}")
            if shape[0] < 1:
                raise ValueError("X has 0 samples, at least 1 required")
            self.source = X
            self.n = shape[0]
            self.shape = shape[1:]
            self.dtype = np.dtype(np.float64) if np.dtype(X.dtype) == np.float64 else np.dtype(
                np.float32
            )
        else:
            self.source = X
            self.once = iter(X) is X
            first = self._peek()
            self.shape = first.shape[1:]
            self.dtype = first.dtype

    def _check(self, block: Any) -> np.ndarray:
        return as_float_array(block, ndim=self.ndim, n_features=self.n_features)

    def _peek(self) -> np.ndarray:
        """First batch of a stream (kept, so that a one-shot iterator loses nothing)."""
        it = iter(self.source)
        if self.once:
            self._iterator = it
        for block in it:
            block = self._check(block)
            if self.once:
                self._pending.append(block)
            return block
        raise ValueError("X is an empty iterable: no batches to read")

    def blocks(self) -> Iterator[np.ndarray]:
        """The stream's blocks in order, validated (one at a time)."""
        if self.once:
            if self._iterator is None:
                raise ValueError("the iterator of batches was already consumed")
            pending, self._pending = self._pending, []
            yield from pending
            it, self._iterator = self._iterator, None
            for block in it:
                yield self._check(block)
            return
        row_bytes = 4 * max(1, int(np.prod(self.shape)))
        for block in iter_batches(self.source, max(1, _BLOCK_BYTES // row_bytes)):
            yield self._check(block)

    def batches(
        self, batch_size: int, rng: np.random.RandomState | None = None
    ) -> Iterator[np.ndarray]:
        """Row batches of at most ``batch_size`` rows; in-memory data are shuffled by ``rng``."""
        if self.array is not None:
            order = rng.permutation(self.n) if rng is not None else None
            for start in range(0, self.n, batch_size):
                if order is None:
                    yield self.array[start : start + batch_size]
                else:
                    yield self.array[np.sort(order[start : start + batch_size])]
            return
        for block in self.blocks():
            for start in range(0, block.shape[0], batch_size):
                yield block[start : start + batch_size]

    def head(self, n_rows: int) -> np.ndarray:
        """At least ``n_rows`` leading rows when available (for initialisation)."""
        if self.array is not None:
            return self.array[:n_rows]
        if self.once:
            # pull blocks into the pending list so that training still sees them
            rows = sum(b.shape[0] for b in self._pending)
            while rows < n_rows:
                block = next(self._iterator, None)
                if block is None:
                    break
                block = self._check(block)
                self._pending.append(block)
                rows += block.shape[0]
            return np.concatenate(self._pending)
        parts, rows = [], 0
        for block in self.blocks():
            parts.append(block)
            rows += block.shape[0]
            if rows >= n_rows:
                break
        return np.concatenate(parts)


# --------------------------------------------------------------------------------------
# the cluster layer: n_init restarts trained side by side
# --------------------------------------------------------------------------------------


def _normalize(z: torch.Tensor) -> torch.Tensor:
    z = z.reshape(z.shape[0], -1)
    return z / z.norm(dim=1, keepdim=True).clamp_min(1e-12)


class _CenterTrainer:
    """Centers of shape (R, K, d) for R restarts with the paper's normalised updates.

    Plain SGD on the rescaled gradient is done in place (no optimizer object: it converges
    best, see :class:`TELL`); Adadelta and Adam use ``torch.optim``.
    """

    def __init__(self, centers: torch.Tensor, optimizer: str, lr: float, step: float) -> None:
        self.centers = nn.Parameter(_unit_rows(centers))
        self.optimizer_name = optimizer
        self.lr = float(lr)
        self.step_fraction = float(step)
        self.opt: torch.optim.Optimizer | None = None
        if optimizer == "adadelta":
            self.opt = torch.optim.Adadelta([self.centers], lr=self.lr)
        elif optimizer == "adam":
            self.opt = torch.optim.Adam([self.centers], lr=self.lr)

    @torch.no_grad()
    def step(self, z: torch.Tensor, lr_scale: float = 1.0) -> torch.Tensor:
        """One update on unit-norm features ``z`` (B, d); returns the (R,) batch losses."""
        c = self.centers
        r, k, d = c.shape
        # one GEMM for all restarts: scores (B, R*K) -> best center per restart
        best, labels = torch.matmul(z, c.reshape(r * k, d).T).reshape(-1, r, k).max(-1)
        loss = 2.0 - 2.0 * best.mean(0)  # (R,)
        # dL/dOmega_j = -2/B * (sum of the z assigned to j), summed by index_add
        offsets = labels + torch.arange(r, device=z.device) * k  # (B, R)
        grad = torch.zeros(r * k, d, dtype=z.dtype, device=z.device)
        grad.index_add_(0, offsets.T.reshape(-1), z.repeat(r, 1))
        grad = grad.reshape(r, k, d).mul_(-2.0 / z.shape[0])
        scale = self.step_fraction * c.norm(dim=-1, keepdim=True)
        grad.mul_(scale / grad.norm(dim=-1, keepdim=True).clamp_min(1e-30))
        if self.opt is None:
            c.add_(grad, alpha=-self.lr * lr_scale)
        else:
            for group in self.opt.param_groups:
                group["lr"] = self.lr * lr_scale
            c.grad = grad
            self.opt.step()
            c.grad = None
        c.copy_(_unit_rows(c))
        return loss

    def select(self, r: int) -> None:
        """Keep restart ``r`` only, with its optimizer state."""
        old = self.centers
        self.centers = nn.Parameter(old.detach()[r : r + 1].clone())
        if self.opt is not None:
            state = self.opt.state.get(old, {})
            new_state = {
                key: (v[r : r + 1].clone() if torch.is_tensor(v) and v.shape == old.shape else v)
                for key, v in state.items()
            }
            cls = type(self.opt)
            self.opt = cls([self.centers], **{
                k: v for k, v in self.opt.defaults.items() if k in ("lr", "rho", "eps", "betas")
            })
            if new_state:
                self.opt.state[self.centers] = new_state


def _soft_assign(z: torch.Tensor, centers: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """DEC's Student-t soft assignments of unit features z (B, d) to unit centers (K, d).

    q_ij ∝ 1 / (1 + ||z_i - Omega_j||^2 / scale); on unit vectors the squared distance is
    2 - 2 z_i . Omega_j, which is at most 4, so ``scale`` sets how sharp q is.
    """
    sq = (2.0 - 2.0 * z @ centers.T).clamp_min(0.0)
    q = 1.0 / (1.0 + sq / scale)
    return q / q.sum(1, keepdim=True)


@torch.no_grad()
def _kl_target(Z: torch.Tensor, centers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """DEC's target p_ij ∝ q_ij^2 / sum_i q_ij for all features Z (n, d), and its scale.

    The scale is the mean squared distance of the points to their nearest center, so the
    kernel adapts to how spread the clusters are instead of to a fixed constant.
    """
    sq = (2.0 - 2.0 * Z @ centers.T).clamp_min(0.0)
    scale = sq.min(1).values.mean().clamp_min(1e-12)
    q = _soft_assign(Z, centers, scale)
    p = q * q / q.sum(0).clamp_min(1e-30)
    return p / p.sum(1, keepdim=True), scale


def _unit_rows(c: torch.Tensor) -> torch.Tensor:
    norm = c.norm(dim=-1, keepdim=True)
    return torch.where(norm > 0, c / norm.clamp_min(1e-30), c)


@torch.no_grad()
def _kmeans_pp(Z: torch.Tensor, k: int, n_init: int, rng: np.random.RandomState) -> torch.Tensor:
    """(n_init, K, d) unit-norm greedy k-means++ seeds on the features ``Z`` (n, d).

    The n_init seedings run side by side on Z's device (one matmul per step); candidates
    are drawn on the CPU from ``rng`` so that a seed gives the same centers everywhere.
    scikit-learn's ``kmeans_plusplus`` does the same on one seeding at a time in numpy,
    several times slower here and never on a GPU.
    """
    n = Z.shape[0]
    trials = 2 + int(math.log(k))  # as scikit-learn's greedy k-means++
    gen = torch.Generator().manual_seed(int(rng.randint(np.iinfo(np.int32).max)))
    sq = (Z * Z).sum(1)
    rows = torch.arange(n_init, device=Z.device)

    def dist(idx: torch.Tensor) -> torch.Tensor:  # squared distances of Z to Z[idx], (..., n)
        c = Z[idx]
        return (sq[idx][..., None] + sq - 2.0 * c @ Z.T).clamp_min(0.0)

    chosen = [torch.randint(n, (n_init,), generator=gen).to(Z.device)]
    closest = dist(chosen[0])  # (R, n)
    for _ in range(1, k):
        weights = closest.double().cpu()
        empty = weights.sum(1) <= 0  # every point is already a center: sample uniformly
        weights[empty] = 1.0
        cand = torch.multinomial(weights, trials, replacement=True, generator=gen).to(Z.device)
        new = torch.minimum(closest[:, None, :], dist(cand))  # (R, trials, n)
        best = new.sum(-1).argmin(1)
        chosen.append(cand[rows, best])
        closest = new[rows, best]
    centers = Z[torch.stack(chosen, 1)]  # (R, K, d)
    norm = centers.norm(dim=-1, keepdim=True)
    if bool((norm == 0).any()):  # an all-zero input row: use a random direction instead
        noise = torch.randn(centers.shape, generator=gen, dtype=centers.dtype).to(Z.device)
        centers = torch.where(norm == 0, noise, centers)
    return _unit_rows(centers)


# --------------------------------------------------------------------------------------
# the estimator
# --------------------------------------------------------------------------------------


class TELL(TransformerMixin, ClusterMixin, BaseEstimator):
    """Interpretable neural clustering: k-means as a trainable, explainable network layer.

    Points are mapped to unit-norm features z = normalize(f(x)), with f the identity
    (``encoder=None``) or a learned encoder, and clustered by K unit-norm centers
    (cosine / spherical k-means in feature space). See DESIGN.md section 3.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters K, any K >= 1 (:func:`whyclust.networks` and
        :func:`whyclust.explain` need K >= 2).
    encoder : None, "mlp", "conv" or (encoder, decoder) pair of torch modules, default=None
        ``None`` clusters the L2-normalised inputs. ``"mlp"`` is the paper's autoencoder
        d-500-500-2000-``n_latent``; ``"conv"`` its convolutional autoencoder for images of
        shape (n, C, H, W) with values in [0, 1]. A user pair is copied, never modified;
        the decoder must map encoder outputs back to the input shape.
    n_init : int, default=4
        k-means++ restarts. In raw mode they are trained side by side (one tensor), and
        the one with the lowest clustering loss is kept.
    max_iter : int, default=10
        Raw mode: maximum number of epochs (passes over the data). Encoder mode: number of
        clustering epochs, alternating center (even) and network (odd) updates; the
        learning rates of both fall linearly to zero over these epochs.
    tol : float, default=1e-4
        Raw mode: stop when no restart improves its epoch loss by more than ``tol``
        (relative). Not used in encoder mode.
    batch_size : int, default=256
        Rows per mini-batch.
    optimizer : {"sgd", "adadelta", "adam"}, default="sgd"
        Optimizer of the centers. The paper used Adadelta; on the normalised updates
        plain SGD with a linearly decaying rate reaches the spherical k-means optimum in a
        few epochs, while the per-coordinate optimizers stall far above it (measured:
        digits, 30 epochs, loss 0.174 vs 0.25 for Adadelta, 0.40 for Adam).
    lr : float, optional
        Learning rate of the centers; default 5.0 for SGD (a step of
        ``lr * center_step`` = half a unit), 1.0 for Adadelta, 1e-3 for Adam. ``fit``
        decays it linearly to 0 over ``max_iter`` epochs.
    center_step : float, default=0.1
        Each center's gradient is rescaled to this fraction of the center's norm.
    partial_lr : float, optional
        Constant learning rate of :meth:`partial_fit`; default ``lr / 10``.
    init_size : int, optional
        Rows used for k-means++ (default: all rows, at most 20,000).
    pretrain_epochs : int, default=50
        Encoder mode: autoencoder epochs before clustering.
    cluster_weight : float, default=0.01
        Encoder mode: lambda in L = L_rec + lambda * L_clu.
    cluster_loss : {"kl", "hard"}, default="kl"
        Encoder mode: the clustering loss L_clu of the network epochs (the center epochs
        always use TELL's update). ``"hard"`` is the paper's: mean_i ||z_i - Omega_c(i)||^2,
        each feature pulled to its nearest center. It has a trivial minimum, all features
        in one cluster, which the encoder reaches within a few Adam steps on some data:
        measured on digits with the MLP autoencoder and the other defaults, 3 of 3 seeds
        ended with one or two clusters (ACC 0.10-0.20; ``"kl"``: all 10, 0.63-0.68).
        ``"kl"`` is self-training against a sharpened target (DEC, Xie et al. 2016): soft
        assignments q_ij ∝ (1 + ||z_i - Omega_j||^2 / s^2)^-1, with s^2 the mean squared
        distance of the points to their nearest center, a target p_ij ∝ q_ij^2 / sum_i q_ij computed
        once per network epoch from the untransformed inputs, and L_clu = KL(p || q). The
        division by the soft cluster size keeps a large cluster from absorbing a
        neighbour, the failure of the hard loss on MNIST-5k (two digits merged while
        another splits). Measured there (BENCHMARKS.md) with ``augment="affine"``,
        ``cluster_weight=1``, 150 + 40 epochs at batch 128: median ACC 0.922 over 5
        seeds (0.83-0.96), under 10 CPU minutes per seed. Either way predictions stay
        argmin_j ||z - Omega_j||, so neuralization and explanations are unchanged.
    encoder_lr : float, default=1e-3
        Encoder mode: Adam learning rate of the encoder and decoder in pretraining.
    cluster_encoder_lr : float, default=3e-4
        Encoder mode: their Adam rate in the network epochs of clustering, falling
        linearly to zero over the clustering epochs. Lower than ``encoder_lr`` because
        Adam moves every weight of a wide layer by about the rate per step whatever the
        loss weight, and the clustering gradient points the same way for all points of a
        cluster: at 1e-3 the MLP autoencoder on digits mapped all points into one or two
        clusters within a few steps, with either loss (10 pretraining epochs, 3 of 3
        seeds); at 3e-4 all 10 clusters stayed. Conv on MNIST-5k (BENCHMARKS.md): median
        ACC 0.922 over 5 seeds at 3e-4, 0.888 at 1e-3.
    n_latent : int, default=10
        Feature size of the built-in encoders.
    augment : None, "affine" or callable, default=None
        Encoder mode: train on randomly transformed copies of each batch. The autoencoder
        reconstructs each original from its transformed copy (a denoising autoencoder,
        which measured better than reconstructing the copy itself); in the network epochs
        of clustering, the features of a transformed image are pulled to the center its
        original is assigned to, so that the clusters become invariant to the
        transformation (as in DEC-DA, Guo et al. 2018). ``"affine"`` shifts images by up
        to 10% and rotates them by up to 10 degrees
        (:func:`whyclust.models.autoencoders.random_affine`; inputs (n, C, H, W)); a
        callable maps a batch tensor to a transformed batch of the same shape. Measured
        (BENCHMARKS.md) on MNIST-5k with the hard loss: median ACC 0.82 over 5 seeds
        with it, 0.70 in an earlier run without it (constant encoder rate);
        Fashion-MNIST-70k (seed 0, KL loss, 8 + 4 epochs): 0.554 with it, 0.550
        without; the median over 5 seeds with it is 0.515.
    device : str or torch.device, default="cpu"
        Where training and inference run ("cpu", "cuda", "cuda:1", ...).
    verbose : int, default=0
        0 is silent; 1 shows tqdm progress bars.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, shuffling and network weights. Results are deterministic for
        a fixed seed on CPU.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (K, d_z)
        Unit-norm centers Omega_j in feature space (the normalised input space in raw
        mode). The layer weights are W = 2 * cluster_centers_.
    labels_ : ndarray of shape (n_samples,)
        Cluster of each training point (for a one-shot iterator: assigned when the point
        was seen; after :meth:`partial_fit`: of the last batch).
    loss_ : float
        Final clustering loss mean_i ||z_i - Omega_c(i)||^2 on the training data.
    n_iter_ : int
        Epochs run by ``fit`` (plus one per :meth:`partial_fit` call).
    n_steps_ : int
        Center updates done so far.
    n_features_in_ : int
        Number of input features (C*H*W for images).
    input_shape_ : tuple of int
        Shape of one input row, e.g. (1, 28, 28).
    prototypes_ : ndarray
        Centers mapped back to input space (see the property).
    encoder_, decoder_ : torch modules or None
        The trained networks (encoder mode).
    feature_scale_ : ndarray of shape (K,)
        Encoder mode: mean norm of f(x) over each cluster, used to decode prototypes.

    Notes
    -----
    ``whyclust.save`` / ``whyclust.load`` write one safetensors file with a JSON header.
    Built-in encoders are rebuilt from their name and sizes. User-supplied modules are saved
    only when both are ``nn.Sequential`` of standard layers that the file format can
    describe (Linear, Conv2d, BatchNorm, activations, Flatten, ...); anything else raises
    ``TypeError`` on save, because a file never names code to run.

    Training and inference run on the device chosen at ``fit`` time; a loaded model runs
    on the CPU.
    """

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        encoder: Any = None,
        n_init: int = 4,
        max_iter: int = 10,
        tol: float = 1e-4,
        batch_size: int = 256,
        optimizer: str = "sgd",
        lr: float | None = None,
        center_step: float = 0.1,
        partial_lr: float | None = None,
        init_size: int | None = None,
        pretrain_epochs: int = 50,
        cluster_weight: float = 0.01,
        cluster_loss: str = "kl",
        encoder_lr: float = 1e-3,
        cluster_encoder_lr: float = 3e-4,
        n_latent: int = 10,
        augment: Any = None,
        device: str | torch.device = "cpu",
        verbose: int = 0,
        random_state: Any = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.encoder = encoder
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.lr = lr
        self.center_step = center_step
        self.partial_lr = partial_lr
        self.init_size = init_size
        self.pretrain_epochs = pretrain_epochs
        self.cluster_weight = cluster_weight
        self.cluster_loss = cluster_loss
        self.encoder_lr = encoder_lr
        self.cluster_encoder_lr = cluster_encoder_lr
        self.n_latent = n_latent
        self.augment = augment
        self.device = device
        self.verbose = verbose
        self.random_state = random_state

    # ---- parameter checks -----------------------------------------------------------

    def _check_params(self) -> None:
        k = self.n_clusters
        if isinstance(k, bool) or not isinstance(k, numbers.Integral):
            raise TypeError(f"n_clusters must be an integer, got {type(k).__name__}")
        if k < 1:
            raise ValueError(f"n_clusters must be >= 1, got {k}")
        for name in ("n_init", "max_iter", "batch_size", "n_latent"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        value = self.pretrain_epochs
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            raise ValueError(f"pretrain_epochs must be a non-negative integer, got {value!r}")
        if self.init_size is not None and (
            isinstance(self.init_size, bool)
            or not isinstance(self.init_size, numbers.Integral)
            or self.init_size < 1
        ):
            raise ValueError(
                f"init_size must be a positive integer or None, got {self.init_size!r}"
            )
        if not (isinstance(self.cluster_loss, str) and self.cluster_loss in _CLUSTER_LOSSES):
            raise ValueError(
                f"cluster_loss must be one of {_CLUSTER_LOSSES}, got {self.cluster_loss!r}"
            )
        if self.optimizer not in _OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {_OPTIMIZERS}, got {self.optimizer!r}")
        for name in (
            "lr", "partial_lr", "center_step", "encoder_lr", "cluster_encoder_lr",
            "cluster_weight", "tol",
        ):  # fmt: skip
            value = getattr(self, name)
            if value is None and name in ("lr", "partial_lr"):
                continue
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
                math.isfinite(value) and value >= 0
            ):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not (self.augment is None or _is_affine(self.augment) or callable(self.augment)):
            raise ValueError(f"augment must be None, 'affine' or a callable, got {self.augment!r}")
        if isinstance(self.encoder, str) and self.encoder not in _ENCODERS:
            raise ValueError(
                f"encoder must be None, 'mlp', 'conv' or an (encoder, decoder) pair of torch "
                f"modules, got {self.encoder!r}"
            )
        if not (self.encoder is None or isinstance(self.encoder, str)):
            pair = self.encoder
            if not (
                isinstance(pair, (tuple, list))
                and len(pair) == 2
                and all(isinstance(m, nn.Module) for m in pair)
            ):
                raise TypeError(
                    "encoder must be None, 'mlp', 'conv' or an (encoder, decoder) pair of "
                    f"torch modules, got {type(pair).__name__}"
                )

    def _device(self) -> torch.device:
        try:
            device = torch.device(self.device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"invalid device {self.device!r}: {exc}") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("device='cuda' was requested but no CUDA GPU is available")
        return device

    def _lr(self) -> float:
        return float(_DEFAULT_LR[self.optimizer] if self.lr is None else self.lr)

    def _partial_lr(self) -> float:
        return self._lr() / 10.0 if self.partial_lr is None else float(self.partial_lr)

    def _input_ndim(self) -> int | tuple[int, ...]:
        if self.encoder == "conv":
            return 4
        if self.encoder is None or self.encoder == "mlp":
            return 2
        return (2, 3, 4)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.non_deterministic = False
        return tags

    # ---- data -----------------------------------------------------------------------

    def _data(self, X: Any, *, reset: bool) -> _Data:
        if not _is_stream(X):
            X = self._validate_in_memory(X, reset=reset)
        elif reset and hasattr(self, "feature_names_in_"):
            del self.feature_names_in_  # streams carry no column names
        n_features = None if reset else self.n_features_in_
        data = _Data(X, ndim=self._input_ndim(), n_features=n_features)
        if reset:
            self.input_shape_ = tuple(int(s) for s in data.shape)
            self.n_features_in_ = int(np.prod(self.input_shape_))
        return data

    def _validate_in_memory(self, X: Any, *, reset: bool) -> Any:
        """scikit-learn's checks and messages (sparse, complex, feature names, counts)."""
        from sklearn.utils.validation import check_array, validate_data

        if torch.is_tensor(X):
            X = X.detach().cpu().numpy()
        if self._input_ndim() == 2:
            return validate_data(self, X, reset=reset, dtype="numeric")
        self._check_feature_names(X, reset=reset)
        X = check_array(X, dtype="numeric", allow_nd=True)
        if not reset and int(np.prod(X.shape[1:])) != self.n_features_in_:
            raise ValueError(
                f"X has {int(np.prod(X.shape[1:]))} features, but {type(self).__name__} is "
                f"expecting {self.n_features_in_} features as input."
            )
        return X

    def _check_feature_names(self, X: Any, *, reset: bool) -> None:
        from sklearn.utils.validation import _check_feature_names

        _check_feature_names(self, X, reset=reset)
        if reset and feature_names_of(X) is None and hasattr(self, "feature_names_in_"):
            del self.feature_names_in_

    def _to_device(self, block: np.ndarray) -> torch.Tensor:
        block = np.ascontiguousarray(block)
        if not block.flags.writeable:  # torch refuses to wrap read-only memory silently
            block = block.copy()
        t = torch.from_numpy(block)
        return t.to(device=self._device_, dtype=self._dtype_, non_blocking=True)

    # ---- features -------------------------------------------------------------------

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        """Unit-norm features z (n, d_z) of a batch already on the device."""
        if self.encoder_ is None:
            return _normalize(x)
        return _normalize(self.encoder_(x))

    @torch.no_grad()
    def _feature_batches(self, data: _Data, batch_size: int) -> Iterator[torch.Tensor]:
        if self.encoder_ is not None:
            self.encoder_.eval()
        for block in data.batches(batch_size):
            yield self._features(self._to_device(block))

    # ---- fit ------------------------------------------------------------------------

    def fit(self, X: Any, y: Any = None) -> TELL:
        """Train the clustering model.

        Parameters
        ----------
        X : array-like of shape (n, d) or (n, C, H, W), or a stream
            numpy / pandas / torch data, an ``np.memmap``, a zarr or dask array (read in
            batches, never loaded whole), or an iterable of batches (an iterator is read
            once, so ``fit`` makes a single pass over it).
        y : ignored

        Returns
        -------
        self
        """
        self._check_params()
        self._device_ = self._device()
        data = self._data(X, reset=True)
        self._dtype_ = (
            torch.float64 if data.dtype == np.float64 and self.encoder is None else torch.float32
        )
        rng = check_random_state(self.random_state)
        if data.n is not None and data.n < self.n_clusters:
            raise ValueError(f"n_samples={data.n} should be >= n_clusters={self.n_clusters}.")
        if self.encoder is None:
            self.encoder_ = self.decoder_ = None
            self._fit_raw(data, rng)
        else:
            self._fit_encoded(data, rng)
            self._warn_if_collapsed()
        return self

    def _warn_if_collapsed(self) -> None:
        used, k = np.unique(self.labels_).size, self.n_clusters
        if used < min(k, self.labels_.shape[0]):
            hint = " or cluster_loss='kl'" if self.cluster_loss == "hard" else ""
            warnings.warn(
                f"TELL: only {used} of {k} clusters hold points after training: the encoder "
                "mapped the data onto fewer clusters. Try more pretrain_epochs or a lower "
                f"cluster_encoder_lr{hint}.",
                ConvergenceWarning,
                stacklevel=3,
            )

    def _init_size(self, n: int | None) -> int:
        limit = 20_000 if self.init_size is None else int(self.init_size)
        return limit if n is None else min(n, limit)

    def _init_sample(self, Z: torch.Tensor, rng: np.random.RandomState) -> torch.Tensor:
        """A random subset of ``init_size`` rows of in-memory features, for seeding."""
        size = self._init_size(Z.shape[0])
        if size >= Z.shape[0]:
            return Z
        idx = np.sort(rng.choice(Z.shape[0], size, replace=False))
        return Z[torch.from_numpy(idx).to(Z.device)]

    def _seed_centers(self, Z: torch.Tensor, rng: np.random.RandomState) -> torch.Tensor:
        if Z.shape[0] < self.n_clusters:
            raise ValueError(
                f"n_samples={Z.shape[0]} should be >= n_clusters={self.n_clusters}."
            )
        return _kmeans_pp(Z, self.n_clusters, self.n_init, rng)

    def _fit_raw(self, data: _Data, rng: np.random.RandomState) -> None:
        in_memory = None
        if data.array is not None:  # normalise once, then index batches on the device
            in_memory = torch.cat(list(self._feature_batches(data, 65536)))
            Zh = self._init_sample(in_memory, rng)
        else:  # a stream: seed on its leading rows
            with torch.no_grad():
                Zh = self._features(self._to_device(data.head(self._init_size(data.n))))
        trainer = _CenterTrainer(
            self._seed_centers(Zh, rng), self.optimizer, self._lr(), self.center_step
        )
        seen_labels: list[torch.Tensor] = []
        self._train_centers(
            trainer, data, in_memory, rng, epochs=self.max_iter, tol=self.tol,
            labels_out=seen_labels if data.once else None,
        )
        self._finish_raw(trainer, data, in_memory, seen_labels)

    def _train_centers(
        self,
        trainer: _CenterTrainer,
        data: _Data | None,
        Z: torch.Tensor | None,
        rng: np.random.RandomState,
        *,
        epochs: int,
        tol: float,
        labels_out: list | None = None,
    ) -> None:
        """Epochs of center updates on features (in memory ``Z`` or streamed ``data``)."""
        from tqdm.auto import tqdm

        epochs = 1 if data is not None and data.once else epochs
        n = Z.shape[0] if Z is not None else data.n
        steps_per_epoch = math.ceil(n / self.batch_size) if n else None
        total = steps_per_epoch * epochs if steps_per_epoch else None
        prev = None
        step = 0
        self.n_iter_ = 0
        self.n_steps_ = 0
        bar = tqdm(range(epochs), desc="TELL", disable=not self.verbose, leave=False)
        for _ in bar:
            if Z is not None:  # shuffle once per epoch, then contiguous slices
                Zp = Z[torch.from_numpy(rng.permutation(Z.shape[0])).to(Z.device)]
                batches: Iterable[torch.Tensor] = (
                    Zp[s : s + self.batch_size] for s in range(0, Z.shape[0], self.batch_size)
                )
            else:
                batches = self._feature_batches(data, self.batch_size)
            tot = None
            seen = 0
            for z in batches:
                scale = max(0.0, 1.0 - step / total) if total else 1.0
                if labels_out is not None:  # a one-shot stream: label points as they pass
                    labels_out.append(self._assign(z, trainer.centers.detach())[0].cpu())
                loss = trainer.step(z, scale) * z.shape[0]
                tot = loss if tot is None else tot + loss
                seen += z.shape[0]
                step += 1
            self.n_iter_ += 1
            self.n_steps_ = step
            epoch_loss = (tot / max(seen, 1)).cpu().numpy()
            bar.set_postfix(loss=float(epoch_loss.min()))
            if prev is not None and np.all(prev - epoch_loss <= tol * np.abs(prev)):
                break
            prev = epoch_loss
            if total is None:  # a stream of unknown length: the first epoch counts it
                total = step * epochs
        self._epoch_loss = prev

    @torch.no_grad()
    def _assign(self, z: torch.Tensor, centers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Labels and per-point losses of ``z`` (B, d) for centers (R, K, d): (R, B) each."""
        sq = (centers * centers).sum(-1)  # 1 up to rounding; kept so predict == neuralize
        scores = 2.0 * torch.matmul(z, centers.transpose(1, 2)) - sq[:, None, :]
        best, labels = scores.max(-1)
        return labels, ((z * z).sum(1) - best).clamp_min(0.0)

    @torch.no_grad()
    def _finish_raw(
        self,
        trainer: _CenterTrainer,
        data: _Data,
        Z: torch.Tensor | None,
        seen_labels: list[torch.Tensor],
    ) -> None:
        centers = trainer.centers.detach()
        if data.once:  # cannot re-read: pick by the loss of the single pass
            best = int(np.argmin(self._epoch_loss))
            labels = None
        else:
            source = [Z] if Z is not None else self._feature_batches(data, 65536)
            losses = torch.zeros(centers.shape[0], dtype=torch.float64, device=centers.device)
            parts = []
            for z in source:
                lab, loss = self._assign(z, centers)
                losses += loss.sum(1, dtype=torch.float64)
                parts.append(lab.cpu())
            best = int(losses.argmin())
            labels = torch.cat(parts, 1)[best].numpy()
            self.loss_ = float(losses[best]) / labels.shape[0]
        trainer.select(best)
        self._trainer = trainer
        self.cluster_centers_ = trainer.centers.detach().cpu().numpy()[0]
        if labels is None:
            labels = torch.cat(seen_labels, 1)[best].numpy()
            self.loss_ = float(self._epoch_loss[best])
        self.labels_ = labels.astype(np.int64)

    # ---- encoder mode ---------------------------------------------------------------

    def _build_networks(self, data: _Data) -> tuple[nn.Module, nn.Module]:
        from whyclust.models.autoencoders import conv_autoencoder, mlp_autoencoder

        if self.encoder == "mlp":
            return mlp_autoencoder(self.n_features_in_, n_latent=self.n_latent)
        if self.encoder == "conv":
            return conv_autoencoder(self.input_shape_, n_latent=self.n_latent)
        enc, dec = self.encoder
        return copy.deepcopy(enc), copy.deepcopy(dec)

    def _fit_encoded(self, data: _Data, rng: np.random.RandomState) -> None:
        from tqdm.auto import tqdm

        if data.once:
            raise ValueError(
                "encoder mode trains for several epochs and cannot use a one-shot iterator; "
                "pass an array, a dask / zarr array or a re-iterable of batches"
            )
        seed = int(rng.randint(np.iinfo(np.int32).max))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            encoder, decoder = self._build_networks(data)
        encoder = encoder.to(self._device_, torch.float32)
        decoder = decoder.to(self._device_, torch.float32)
        # oneDNN trains the conv AE ~1.5x faster on one CPU thread with channels-last
        # weights (activations follow them); the standard layout comes back after fit
        channels_last = self._device_.type == "cpu" and len(self.input_shape_) == 3
        if channels_last:
            encoder.to(memory_format=torch.channels_last)
            decoder.to(memory_format=torch.channels_last)
        self.encoder_, self.decoder_ = encoder, decoder
        params = [*encoder.parameters(), *decoder.parameters()]
        net_opt = torch.optim.Adam(params, lr=self.encoder_lr)
        X_dev = self._to_device(data.array) if data.array is not None else None

        def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
            """(row indices, rows) of each training batch."""
            if X_dev is not None:
                perm = torch.from_numpy(rng.permutation(X_dev.shape[0])).to(self._device_)
                for s in range(0, X_dev.shape[0], self.batch_size):
                    rows = perm[s : s + self.batch_size]
                    if rows.shape[0] > 1:  # BatchNorm needs two rows
                        yield rows, X_dev[rows]
            else:
                start = 0
                for block in data.batches(self.batch_size):
                    rows = torch.arange(start, start + block.shape[0], device=self._device_)
                    start += block.shape[0]
                    if block.shape[0] > 1:
                        yield rows, self._to_device(block)

        def rec_loss(xb: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
            return F.mse_loss(decoder(h).reshape(xb.shape), xb)

        augment = self._augmenter()

        def cluster_term(
            xb: torch.Tensor,
            centers: torch.Tensor,
            target: tuple[torch.Tensor, torch.Tensor] | None,
            rows: torch.Tensor,
        ) -> tuple[torch.Tensor, torch.Tensor]:
            """Encoder output h of the training view of ``xb`` and L_clu on its features."""
            if target is None and augment is not None:
                # the transformed copy joins the cluster of its original
                with torch.no_grad():
                    encoder.eval()
                    own = (self._features(xb) @ centers.T).argmax(1)
                    encoder.train()
            h = encoder(xb if augment is None else augment(xb))
            z = _normalize(h)
            if target is not None:
                p, scale = target
                q = _soft_assign(z, centers, scale)
                return h, F.kl_div(q.clamp_min(1e-30).log(), p[rows], reduction="batchmean")
            if augment is None:
                similarity = (z @ centers.T).max(1).values
            else:
                similarity = (z * centers[own]).sum(1)
            return h, (2.0 - 2.0 * similarity).mean()

        total = self.pretrain_epochs + self.max_iter
        bar = tqdm(total=total, desc="TELL", disable=not self.verbose, leave=False)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + 1)
            for _ in range(self.pretrain_epochs):
                encoder.train()
                decoder.train()
                for _, xb in batches():
                    # with augment: a denoising autoencoder that undoes the transformation
                    inputs = xb if augment is None else augment(xb)
                    loss = rec_loss(xb, encoder(inputs))
                    net_opt.zero_grad(set_to_none=True)
                    loss.backward()
                    net_opt.step()
                bar.update(1)
                bar.set_postfix(rec=float(loss.detach()))

            # centers: k-means++ restarts on the pretrained features, refined, best kept
            Z = torch.cat(list(self._feature_batches(data, 4096)))
            Zh = self._init_sample(Z, rng)
            trainer = _CenterTrainer(
                self._seed_centers(Zh, rng),
                self.optimizer,
                self._lr(),
                self.center_step,
            )
            self._train_centers(trainer, None, Z, rng, epochs=10, tol=self.tol)
            _, loss = self._assign(Z, trainer.centers.detach())
            trainer.select(int(loss.mean(1).argmin()))

            for epoch in range(self.max_iter):
                # centers and networks both settle: their rates fall linearly to zero
                lr_scale = 1.0 - epoch / max(self.max_iter, 1)
                if epoch % 2 == 0:  # centers, features detached
                    encoder.eval()
                    for _, xb in batches():
                        with torch.no_grad():
                            z = self._features(xb)
                        trainer.step(z, lr_scale)
                else:  # networks, centers fixed
                    for group in net_opt.param_groups:
                        group["lr"] = self.cluster_encoder_lr * lr_scale
                    centers = trainer.centers.detach()[0]
                    target = None
                    if self.cluster_loss == "kl":  # from the untransformed inputs
                        features = torch.cat(list(self._feature_batches(data, 4096)))
                        target = _kl_target(features, centers)
                    encoder.train()
                    decoder.train()
                    for rows, xb in batches():
                        h, clu = cluster_term(xb, centers, target, rows)
                        loss = rec_loss(xb, h) + self.cluster_weight * clu
                        net_opt.zero_grad(set_to_none=True)
                        loss.backward()
                        net_opt.step()
                bar.update(1)
        bar.close()
        if channels_last:
            encoder.to(memory_format=torch.contiguous_format)
            decoder.to(memory_format=torch.contiguous_format)
        encoder.eval()
        decoder.eval()
        self._trainer = trainer
        self.n_iter_ = self.pretrain_epochs + self.max_iter
        self.cluster_centers_ = trainer.centers.detach().cpu().numpy()[0]
        self._finish_encoded(data)

    def _augmenter(self) -> Any:
        if self.augment is None:
            return None
        if _is_affine(self.augment):
            from whyclust.models.autoencoders import random_affine

            if len(self.input_shape_) != 3:
                raise ValueError(
                    "augment='affine' needs images of shape (n, C, H, W), got rows of shape "
                    f"{self.input_shape_}"
                )
            return random_affine
        fn = self.augment

        def checked(xb: torch.Tensor) -> torch.Tensor:
            out = fn(xb)
            if not isinstance(out, torch.Tensor) or out.shape != xb.shape:
                raise ValueError(
                    "augment must return a tensor of the batch's shape "
                    f"{tuple(xb.shape)}, got {getattr(out, 'shape', type(out).__name__)}"
                )
            return out

        return checked

    @torch.no_grad()
    def _finish_encoded(self, data: _Data) -> None:
        centers = torch.from_numpy(self.cluster_centers_).to(self._device_)[None]
        k = self.n_clusters
        labels, losses = [], []
        norm_sum = torch.zeros(k, dtype=torch.float64, device=self._device_)
        counts = torch.zeros(k, dtype=torch.float64, device=self._device_)
        self.encoder_.eval()
        for block in data.batches(4096):
            h = self.encoder_(self._to_device(block))
            h = h.reshape(h.shape[0], -1)
            lab, loss = self._assign(_normalize(h), centers)
            lab = lab[0]
            norm_sum.index_add_(0, lab, h.norm(dim=1).double())
            counts.index_add_(0, lab, torch.ones_like(lab, dtype=torch.float64))
            labels.append(lab.cpu().numpy())
            losses.append(loss[0].double().cpu().numpy())
        self.labels_ = np.concatenate(labels).astype(np.int64)
        self.loss_ = float(np.concatenate(losses).mean())
        mean_norm = (norm_sum.sum() / counts.sum().clamp_min(1)).item()
        scale = torch.where(counts > 0, norm_sum / counts.clamp_min(1), mean_norm)
        self.feature_scale_ = scale.cpu().numpy()

    # ---- online ---------------------------------------------------------------------

    def partial_fit(self, X: Any, y: Any = None) -> TELL:
        """Update the centers with one pass over ``X`` (online clustering).

        Every batch of ``batch_size`` rows gives one center update with the constant rate
        ``partial_lr``; each batch is seen once. The first call on an unfitted raw-mode
        model initialises the centers by k-means++ on ``X`` (at least ``n_clusters``
        rows); in encoder mode, call :meth:`fit` first: later calls adapt the centers
        with the encoder fixed.
        """
        first = not hasattr(self, "cluster_centers_")
        if first:
            self._check_params()
            if self.encoder is not None:
                raise ValueError(
                    "partial_fit with an encoder needs a fitted model: call fit first to "
                    "train the autoencoder, then partial_fit adapts the centers"
                )
            self._device_ = self._device()
            data = self._data(X, reset=True)
            self._dtype_ = torch.float64 if data.dtype == np.float64 else torch.float32
            self.encoder_ = self.decoder_ = None
            rng = check_random_state(self.random_state)
            head = data.head(self._init_size(data.n))
            with torch.no_grad():
                Zh = self._features(self._to_device(head))
            trainer = _CenterTrainer(
                self._seed_centers(Zh, rng),
                self.optimizer,
                self._partial_lr(),
                self.center_step,
            )
            _, loss = self._assign(Zh, trainer.centers.detach())
            trainer.select(int(loss.mean(1).argmin()))
            self._trainer = trainer
            self.n_iter_ = 0
            self.n_steps_ = 0
        else:
            check_is_fitted(self)
            self._check_params()
            data = self._data(X, reset=False)
            trainer = self._trainer
            trainer.lr = self._partial_lr()
        labels, losses = [], []
        for z in self._feature_batches(data, self.batch_size):
            trainer.step(z)
            self.n_steps_ += 1
        self.cluster_centers_ = trainer.centers.detach().cpu().numpy()[0]
        centers = trainer.centers.detach()
        for z in self._feature_batches(data, 65536) if not data.once else ():
            lab, loss = self._assign(z, centers)
            labels.append(lab[0].cpu().numpy())
            losses.append(loss[0].cpu().numpy())
        if labels:
            self.labels_ = np.concatenate(labels).astype(np.int64)
            self.loss_ = float(np.concatenate(losses).mean())
        self.n_iter_ += 1
        return self

    # ---- inference ------------------------------------------------------------------

    def _scores(
        self, X: Any, batch_size: int = 8192
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        check_is_fitted(self)
        data = self._data(X, reset=False)
        centers = torch.from_numpy(self.cluster_centers_).to(self._device_, self._dtype_)[None]
        for z in self._feature_batches(data, batch_size):
            lab, loss = self._assign(z, centers)
            yield z, lab[0], loss[0]

    def predict(self, X: Any) -> np.ndarray:
        """Cluster of each row: argmax_j W_j . z (equal to the nearest unit center)."""
        out = [lab.cpu().numpy() for _, lab, _ in self._scores(X)]
        return np.concatenate(out).astype(np.int64)

    def transform(self, X: Any) -> np.ndarray:
        """Euclidean distances ||z - Omega_j|| of the features to every center, (n, K)."""
        out = []
        centers = torch.from_numpy(self.cluster_centers_).to(self._device_, self._dtype_)
        check_is_fitted(self)
        data = self._data(X, reset=False)
        with torch.no_grad():
            for z in self._feature_batches(data, 8192):
                sq = (
                    (z * z).sum(1, keepdim=True)
                    - 2.0 * z @ centers.T
                    + (centers * centers).sum(1)
                )
                out.append(sq.clamp_min(0.0).sqrt().cpu().numpy())
        return np.concatenate(out)

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> np.ndarray:
        return self.fit(X).transform(X)

    def score(self, X: Any, y: Any = None) -> float:
        """Negative clustering loss, -mean_i min_j ||z_i - Omega_j||^2 (higher is better)."""
        total, n = 0.0, 0
        for _, _, loss in self._scores(X):
            total += float(loss.double().sum())
            n += loss.shape[0]
        return -total / n

    # ---- interpretability -----------------------------------------------------------

    @property
    def prototypes_(self) -> np.ndarray:
        """The centers in input space, shape (K, *input_shape_).

        Raw mode: the unit-norm centers themselves (the inputs are normalised, so a
        prototype shows the direction of its cluster, not the scale of its points).
        Encoder mode: ``decoder(Omega_j * s_j)``, with s_j = ``feature_scale_[j]`` the
        mean feature norm of cluster j, since the decoder was trained on unnormalised
        features.
        """
        check_is_fitted(self)
        if self.encoder_ is None:
            return self.cluster_centers_.reshape(self.n_clusters, *self.input_shape_)
        with torch.no_grad():
            h = torch.from_numpy(self.cluster_centers_ * self.feature_scale_[:, None])
            self.decoder_.eval()
            out = self.decoder_(h.to(self._device_, torch.float32))
        return out.cpu().numpy().reshape(self.n_clusters, *self.input_shape_)

    def plot_prototypes(self, **kwargs: Any):
        """Draw :attr:`prototypes_` (images for image input, else bar charts).

        Keyword arguments go to :func:`whyclust.plotting.plot_prototypes`; ``image_shape``
        defaults to the input shape for (n, C, H, W) data and ``feature_names`` to the
        DataFrame columns seen in ``fit``.
        """
        from whyclust.plotting import plot_prototypes

        if len(self.input_shape_) >= 2:
            kwargs.setdefault("image_shape", self.input_shape_)
        if hasattr(self, "feature_names_in_"):
            kwargs.setdefault("feature_names", list(self.feature_names_in_))
        return plot_prototypes(self.prototypes_, **kwargs)


def _is_affine(augment: Any) -> bool:
    return isinstance(augment, str) and augment == "affine"


def _n_features(X: Any) -> int | None:
    shape = getattr(X, "shape", None)
    if shape is None:
        try:
            arr = np.asarray(X)
        except (ValueError, TypeError):
            return None
        shape = arr.shape
    if len(shape) < 2:
        return None
    return int(np.prod(shape[1:]))


# --------------------------------------------------------------------------------------
# neuralize and save / load
# --------------------------------------------------------------------------------------


@register_neuralizer(TELL)
def _neuralize_tell(model: TELL, device: Any = None, **_: Any) -> EncodedClusterNetwork:
    """Raw mode: L2Normalize -> k-means head; encoder mode: encoder -> L2Normalize -> head."""
    check_is_fitted(model)
    dtype = torch.float64 if model.cluster_centers_.dtype == np.float64 else torch.float32
    head = KMeansNetwork(torch.from_numpy(model.cluster_centers_).to(dtype))
    if model.encoder_ is None:
        encoder: nn.Module = L2Normalize()
    else:
        encoder = nn.Sequential(copy.deepcopy(model.encoder_).cpu(), L2Normalize())
    net = EncodedClusterNetwork(encoder, head, model.n_features_in_).eval()
    target = model._device_ if device is None else torch.device(device)
    return net.to(target)


_JSON_PARAMS = (
    "n_clusters", "n_init", "max_iter", "tol", "batch_size", "optimizer", "lr", "center_step",
    "partial_lr", "init_size", "pretrain_epochs", "cluster_weight", "cluster_loss", "encoder_lr",
    "cluster_encoder_lr", "n_latent", "verbose",
)  # fmt: skip


def _dump_tell(model: TELL) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    from whyclust.io import describe_module

    check_is_fitted(model)
    params = {k: getattr(model, k) for k in _JSON_PARAMS}
    for k, v in params.items():
        if isinstance(v, np.generic):
            params[k] = v.item()
    params["augment"] = model.augment if isinstance(model.augment, str) else None
    rs = model.random_state
    params["random_state"] = int(rs) if isinstance(rs, numbers.Integral) else None
    tensors = {"cluster_centers": model.cluster_centers_, "labels": model.labels_}
    config: dict[str, Any] = {
        "params": params,
        "input_shape": list(model.input_shape_),
        "n_iter": int(model.n_iter_),
        "n_steps": int(getattr(model, "n_steps_", 0)),
        "loss": float(model.loss_) if math.isfinite(model.loss_) else None,
        "device": str(model.device),
    }
    if hasattr(model, "feature_names_in_"):
        config["feature_names"] = [str(c) for c in model.feature_names_in_]
    if model.encoder_ is None:
        config["mode"] = "raw"
    else:
        config["mode"] = model.encoder if isinstance(model.encoder, str) else "user"
        if config["mode"] == "user":
            # the architecture must be rebuilt from JSON alone: standard layers only
            config["encoder_spec"] = describe_module(model.encoder_)
            config["decoder_spec"] = describe_module(model.decoder_)
        for name, module in (("encoder", model.encoder_), ("decoder", model.decoder_)):
            for k, v in module.state_dict().items():
                tensors[f"{name}.{k}"] = v.detach().cpu().numpy()
        tensors["feature_scale"] = model.feature_scale_
    return tensors, config


def _restore_tell(tensors: dict[str, np.ndarray], config: dict[str, Any]) -> TELL:
    from whyclust.io import build_module
    from whyclust.models.autoencoders import conv_autoencoder, mlp_autoencoder

    params = config["params"]
    if not isinstance(params, dict) or set(params) - {*_JSON_PARAMS, "augment", "random_state"}:
        raise ValueError("bad TELL parameters")
    mode = config.get("mode")
    if mode not in ("raw", "mlp", "conv", "user"):
        raise ValueError(f"unknown TELL mode {mode!r}")
    model = TELL(**params)
    centers = finite_array(tensors, "cluster_centers", ndim=2)
    k = centers.shape[0]
    if k != params.get("n_clusters") or k < 1:
        raise ValueError("cluster_centers do not match n_clusters")
    shape = config["input_shape"]
    if not isinstance(shape, list) or not all(
        isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape
    ):
        raise ValueError(f"bad input_shape {shape!r}")
    model.input_shape_ = tuple(shape)
    model.n_features_in_ = int(np.prod(shape))
    model.cluster_centers_ = centers
    labels = np.asarray(tensors["labels"], dtype=np.int64)
    if labels.ndim != 1 or (labels.size and (labels.min() < 0 or labels.max() >= k)):
        raise ValueError("labels must be cluster indices in [0, K)")
    model.labels_ = labels
    model.n_iter_ = int(config.get("n_iter") or 0)
    model.n_steps_ = int(config.get("n_steps") or 0)
    loss = config.get("loss")
    model.loss_ = float("nan") if loss is None else float(loss)
    if "feature_names" in config:
        model.feature_names_in_ = np.asarray(config["feature_names"], dtype=object)
    model._device_ = torch.device("cpu")
    model._dtype_ = torch.float64 if centers.dtype == np.float64 else torch.float32
    if mode == "raw":
        model.encoder_ = model.decoder_ = None
        if centers.shape[1] != model.n_features_in_:
            raise ValueError("cluster_centers do not match the input shape")
    else:
        arrays = {
            name: {k[len(name) + 1 :]: v for k, v in tensors.items() if k.startswith(name + ".")}
            for name in ("encoder", "decoder")
        }
        state = {
            name: {k: torch.from_numpy(np.array(v)) for k, v in part.items()}
            for name, part in arrays.items()
        }
        if mode == "user":
            encoder = build_module(config["encoder_spec"], arrays["encoder"])
            decoder = build_module(config["decoder_spec"], arrays["decoder"])
            model.encoder = (encoder, decoder)
        else:
            model.encoder = mode
            if mode == "mlp":
                encoder, decoder = mlp_autoencoder(model.n_features_in_, n_latent=model.n_latent)
            else:
                encoder, decoder = conv_autoencoder(model.input_shape_, n_latent=model.n_latent)
            encoder.load_state_dict(state["encoder"], strict=True)
            decoder.load_state_dict(state["decoder"], strict=True)
        model.encoder_, model.decoder_ = encoder.eval(), decoder.eval()
        model.feature_scale_ = finite_array(tensors, "feature_scale", ndim=1)
    model._trainer = _CenterTrainer(
        torch.from_numpy(centers)[None], model.optimizer, model._partial_lr(), model.center_step
    )
    return model


register_format("tell", TELL, _dump_tell, _restore_tell)
