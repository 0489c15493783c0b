"""The TELL estimator: parameters, validation, fit / partial_fit / predict / transform / score."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Iterator
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, check_random_state, validate_data

from whyclust._batches import RowSource, is_stream
from whyclust._validation import as_float_array, warn_caller
from whyclust.models.tell._centers import CenterTrainer, assign, features, seed_centers
from whyclust.models.tell._encoder import Schedule, make_augmenter, train_encoded, unit_range
from whyclust.models.tell._progress import Progress

__all__ = ["TELL"]

_DEFAULT_LR = {
    ("cosine", "sgd"): 5.0, ("cosine", "adadelta"): 1.0, ("cosine", "adam"): 1e-3,
    ("euclidean", "sgd"): 0.5, ("euclidean", "adadelta"): 1.0, ("euclidean", "adam"): 1e-2,
}  # fmt: skip
# encoder mode, "auto": the schedule measured on 5,000 images (BENCHMARKS.md), in epochs
# for n <= 5,000 and in optimizer steps beyond, so that large data take the same time
_RECIPE = {"n": 5000, "batch_size": 128, "pretrain_epochs": 150, "epochs": 40}
_RAW_BATCH, _RAW_EPOCHS = 256, 10
_RAW_N_INIT, _ENCODER_N_INIT = 4, 20


class TELL(TransformerMixin, ClusterMixin, BaseEstimator):
    """Interpretable neural clustering (Peng et al., JMLR 2022): k-means as a network layer.

    Points are mapped to features z = f(x), with f the identity (``encoder=None``) or a
    learned encoder, and clustered by a layer of K centers Omega_j with weights
    W_j = 2 Omega_j and biases b_j = -||Omega_j||^2: a point goes to argmax_j W_j . z + b_j,
    its nearest center. ``metric="cosine"`` first normalises z and keeps the centers unit
    norm (spherical k-means, the paper's layer); ``metric="euclidean"`` is plain k-means.
    In raw mode the centers are trained by mini-batch gradient steps from ``n_init``
    k-means++ restarts (the lowest loss is kept). In encoder mode the autoencoder is
    pretrained, Lloyd's k-means on its features gives the initial centers, then center
    epochs alternate with network epochs on L = L_rec + ``cluster_weight`` L_clu.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters K >= 1 (neuralize and explain need K >= 2).
    metric : {"auto", "euclidean", "cosine"}, default="auto"
        Geometry of the cluster layer (see above). ``"auto"``: "euclidean" in raw mode,
        "cosine" with an encoder (the geometry the encoder schedule was tuned with).
        Cosine suits data whose direction carries the class and whose norm does not.
    encoder : None, "mlp", "conv" or (encoder, decoder) pair of torch modules, default=None
        ``None`` clusters the inputs. ``"mlp"`` is the paper's autoencoder
        d-500-500-2000-``n_latent``; ``"conv"`` its convolutional autoencoder for images
        (n, C, H, W) with values in [0, 1]. A user pair is copied, never modified; the
        decoder maps encoder outputs back to the input shape.
    n_init : int or "auto", default="auto"
        k-means++ restarts ("auto": 4 in raw mode; 20 in encoder mode, where each restart
        runs Lloyd's k-means on the pretrained features and the lowest inertia is kept).
    max_iter : int or "auto", default="auto"
        Raw mode: maximum epochs ("auto": 10). Encoder mode: clustering epochs,
        alternating center (even) and network (odd) epochs ("auto": see Notes).
    tol : float, default=1e-4
        Raw mode: stop when no restart improves its epoch loss by more than ``tol``
        (relative). Encoder mode: Lloyd's k-means stops when no center moves by more than
        ``tol`` times the features' mean variance.
    batch_size : int or "auto", default="auto"
        Rows per mini-batch ("auto": 256 in raw mode, 128 in encoder mode).
    optimizer : {"sgd", "adadelta", "adam"}, default="sgd"
        Optimizer of the centers, on the rescaled gradient (see ``center_step``).
    lr : float, optional
        Learning rate of the centers, decayed linearly to 0 over the training steps.
        Default: SGD 5.0 (cosine; a step of ``lr * center_step``) or 0.5 (euclidean;
        rate 1 moves a center onto the mean of its batch points), Adadelta 1.0,
        Adam 1e-3 (cosine) or 1e-2 (euclidean).
    center_step : float, default=0.1
        Cosine metric: each center's gradient is rescaled to this fraction of its norm.
    partial_lr : float, optional
        Constant learning rate of :meth:`partial_fit`; default ``lr / 10``.
    init_size : int, optional
        Rows used for k-means++ (default: all, at most 20,000).
    pretrain_epochs : int or "auto", default="auto"
        Encoder mode: autoencoder epochs before clustering (see Notes).
    cluster_weight : float, default=1.0
        Encoder mode: lambda in L = L_rec + lambda L_clu.
    cluster_loss : {"kl", "hard"}, default="kl"
        Encoder mode, network epochs. ``"hard"``: the paper's mean_i ||z_i - Omega_c(i)||^2,
        which the encoder can minimise by mapping everything into one cluster. ``"kl"``:
        DEC's self-training, KL(p || q) with soft assignments
        q_ij ∝ (1 + ||z_i - Omega_j||^2 / s)^-1 (s the mean squared distance to the nearest
        center) and the target p_ij ∝ q_ij^2 / sum_i q_ij, recomputed once per network
        epoch from the untransformed inputs. Predictions stay nearest-center either way.
    encoder_lr : float, default=1e-3
        Encoder mode: Adam rate of the networks in pretraining.
    cluster_encoder_lr : float, default=3e-4
        Encoder mode: Adam rate of the networks in the clustering epochs, falling linearly
        to 0 (a rate as high as ``encoder_lr`` can collapse the clusters).
    n_latent : int, default=10
        Feature size of the built-in encoders.
    augment : None, "affine", "auto" or callable, default="auto"
        Encoder mode: train on randomly transformed copies of each batch; the autoencoder
        reconstructs the original from its copy, and a copy's features are pulled to the
        cluster of its original. ``"affine"``: shifts up to 10% and rotations up to 10
        degrees (:func:`whyclust.models.autoencoders.random_affine`, images only);
        ``"auto"``: "affine" for the conv encoder, None otherwise; a callable maps a batch
        tensor to a batch of the same shape.
    device : str or torch.device, default="cpu"
        Where training and inference run.
    verbose : int, default=0
        1 shows progress: a tqdm bar on a terminal, one line per epoch otherwise.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, shuffling and network weights (deterministic on CPU).

    Attributes
    ----------
    metric_ : str
        The metric used ("euclidean" or "cosine").
    cluster_centers_ : ndarray of shape (K, d_z)
        Centers Omega_j in feature space (unit norm for the cosine metric).
    labels_ : ndarray of shape (n_samples,)
        Cluster of each training point (one-shot iterator: when the point was seen;
        after :meth:`partial_fit`: of the last batch).
    loss_ : float
        Mean squared distance of the training features to their center.
    n_iter_ : int
        Epochs run by ``fit`` (plus one per :meth:`partial_fit` call).
    n_steps_ : int
        Center updates so far (raw mode).
    n_features_in_ : int
        Number of input features (C*H*W for images).
    feature_names_in_ : ndarray of str
        Column names of a DataFrame passed to ``fit``.
    input_shape_ : tuple of int
        Shape of one input row, e.g. (1, 28, 28).
    encoder_, decoder_ : torch modules or None
        The trained networks (encoder mode).
    feature_scale_ : ndarray of shape (K,)
        Encoder mode: mean norm of f(x) in each cluster (decodes cosine prototypes).

    Notes
    -----
    ``"auto"`` schedule in encoder mode: with s = ceil(n / batch_size) steps per epoch,
    ``pretrain_epochs = min(150, round(150 * 40 / s))`` (at least 1) and ``max_iter`` =
    the even number nearest to ``min(40, 40 * 40 / s)`` (at least 2): the recipe measured
    on 5,000 images (40 steps per epoch), and for more data the same number of steps.

    ``whyclust.save`` writes one safetensors file with a JSON header; user modules are
    saved only when both are ``nn.Sequential`` of standard layers (else ``TypeError``).
    A loaded model runs on the CPU.
    """

    _parameter_constraints: ClassVar[dict] = {
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "metric": [StrOptions({"auto", "euclidean", "cosine"})],
        "encoder": [None, StrOptions({"mlp", "conv"}), tuple, list],
        "n_init": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "max_iter": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "tol": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "optimizer": [StrOptions({"sgd", "adadelta", "adam"})],
        "lr": [None, Interval(Real, 0, None, closed="left")],
        "center_step": [Interval(Real, 0, None, closed="left")],
        "partial_lr": [None, Interval(Real, 0, None, closed="left")],
        "init_size": [None, Interval(Integral, 1, None, closed="left")],
        "pretrain_epochs": [Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})],
        "cluster_weight": [Interval(Real, 0, None, closed="left")],
        "cluster_loss": [StrOptions({"kl", "hard"})],
        "encoder_lr": [Interval(Real, 0, None, closed="left")],
        "cluster_encoder_lr": [Interval(Real, 0, None, closed="left")],
        "n_latent": [Interval(Integral, 1, None, closed="left")],
        "augment": [None, StrOptions({"affine", "auto"}), callable],
        "device": [str, torch.device],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        metric: str = "auto",
        encoder: Any = None,
        n_init: int | str = "auto",
        max_iter: int | str = "auto",
        tol: float = 1e-4,
        batch_size: int | str = "auto",
        optimizer: str = "sgd",
        lr: float | None = None,
        center_step: float = 0.1,
        partial_lr: float | None = None,
        init_size: int | None = None,
        pretrain_epochs: int | str = "auto",
        cluster_weight: float = 1.0,
        cluster_loss: str = "kl",
        encoder_lr: float = 1e-3,
        cluster_encoder_lr: float = 3e-4,
        n_latent: int = 10,
        augment: Any = "auto",
        device: str | torch.device = "cpu",
        verbose: int = 0,
        random_state: Any = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.metric = metric
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

    # ---- parameters -----------------------------------------------------------------

    def _check_params(self) -> None:
        """scikit-learn's declarative checks, then what they cannot express."""
        self._validate_params()
        for name in ("lr", "partial_lr", "center_step", "encoder_lr", "cluster_encoder_lr",
                     "cluster_weight", "tol"):  # fmt: skip
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        enc = self.encoder
        if isinstance(enc, (tuple, list)) and not (
            len(enc) == 2 and all(isinstance(m, torch.nn.Module) for m in enc)
        ):
            raise TypeError(
                "encoder must be None, 'mlp', 'conv' or an (encoder, decoder) pair of torch "
                f"modules, got a {type(enc).__name__} of {[type(m).__name__ for m in enc]}"
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
        return float(_DEFAULT_LR[self._metric(), self.optimizer] if self.lr is None else self.lr)

    def _metric(self) -> str:
        if self.metric != "auto":
            return self.metric
        return "euclidean" if self.encoder is None else "cosine"

    def _n_init(self) -> int:
        if self.n_init != "auto":
            return int(self.n_init)
        return _RAW_N_INIT if self.encoder is None else _ENCODER_N_INIT

    def _partial_lr(self) -> float:
        return self._lr() / 10.0 if self.partial_lr is None else float(self.partial_lr)

    def _batch_size(self) -> int:
        if self.batch_size != "auto":
            return int(self.batch_size)
        return _RAW_BATCH if self.encoder is None else _RECIPE["batch_size"]

    def _schedule(self, n: int | None) -> Schedule:
        """The encoder-mode schedule for n rows, ``"auto"`` values resolved (see Notes)."""
        bs = self._batch_size()
        steps = math.ceil((n or _RECIPE["n"]) / bs)
        per_epoch = math.ceil(_RECIPE["n"] / _RECIPE["batch_size"])
        pre, epochs = self.pretrain_epochs, self.max_iter
        if pre == "auto":
            pre = min(_RECIPE["pretrain_epochs"],
                      max(1, round(_RECIPE["pretrain_epochs"] * per_epoch / steps)))
        if epochs == "auto":
            wanted = min(_RECIPE["epochs"], _RECIPE["epochs"] * per_epoch / steps)
            epochs = max(2, 2 * round(wanted / 2))
        augment = self.augment
        if augment == "auto":
            augment = "affine" if self.encoder == "conv" else None
        return Schedule(int(pre), int(epochs), bs, float(self.cluster_weight),
                        make_augmenter(augment, self.input_shape_))

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

    def _data(self, X: Any, *, reset: bool) -> RowSource:
        """A :class:`RowSource` over ``X``, checked against the fitted shape unless ``reset``."""
        if not is_stream(X):
            if torch.is_tensor(X):
                X = X.detach().cpu().numpy()
            # feature names, sparse / complex / NaN refusal with scikit-learn's messages
            if self._input_ndim() == 2:
                X = validate_data(self, X, reset=reset, dtype="numeric")
            else:  # images have C*H*W features, not shape[1]: counted here
                X = validate_data(self, X, reset=reset, dtype="numeric", ensure_2d=False,
                                  allow_nd=True)
                d = int(np.prod(X.shape[1:]))
                if not reset and X.ndim > 1 and d != self.n_features_in_:
                    raise ValueError(
                        f"X has {d} features, but {type(self).__name__} is expecting "
                        f"{self.n_features_in_} features as input."
                    )
        elif reset and hasattr(self, "feature_names_in_"):
            del self.feature_names_in_  # streams carry no column names
        ndim = self._input_ndim()
        n_features = None if reset else self.n_features_in_

        in_range = unit_range(self.encoder == "conv")  # predict reads what fit read

        def check(block: Any) -> np.ndarray:
            return in_range(as_float_array(block, ndim=ndim, n_features=n_features))

        data = RowSource(X, check=check, ndim=ndim)
        if reset:
            self.input_shape_ = tuple(int(s) for s in data.shape)
            self.n_features_in_ = int(np.prod(self.input_shape_))
        return data

    def _to_device(self, block: np.ndarray) -> torch.Tensor:
        block = np.ascontiguousarray(block)
        if not block.flags.writeable:  # torch refuses to wrap read-only memory silently
            block = block.copy()
        return torch.from_numpy(block).to(device=self._device_, dtype=self._dtype_)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        """Features z (n, d_z) of a batch already on the device."""
        return features(x if self.encoder_ is None else self.encoder_(x), self.metric_)

    @torch.no_grad()
    def _feature_batches(self, data: RowSource, batch_size: int) -> Iterator[torch.Tensor]:
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
        self.metric_ = self._metric()
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
            return self
        plan = self._schedule(data.n)
        trainer = train_encoded(self, data, rng, plan)
        self._trainer = trainer
        self.n_iter_ = plan.pretrain_epochs + plan.epochs
        self.n_steps_ = 0
        self.cluster_centers_ = trainer.centers.detach().cpu().numpy()[0].copy()
        self._finish_encoded(data)
        self._warn_if_collapsed()
        return self

    def _warn_if_collapsed(self) -> None:
        used, k = np.unique(self.labels_).size, self.n_clusters
        if used < min(k, self.labels_.shape[0]):
            hint = " or cluster_loss='kl'" if self.cluster_loss == "hard" else ""
            warn_caller(
                f"TELL: only {used} of {k} clusters hold points after training: the encoder "
                "mapped the data onto fewer clusters. Try more pretrain_epochs or a lower "
                f"cluster_encoder_lr{hint}.",
                ConvergenceWarning,
            )

    def _init_size(self, n: int | None) -> int:
        limit = 20_000 if self.init_size is None else int(self.init_size)
        if limit < self.n_clusters:
            raise ValueError(f"init_size={limit} should be >= n_clusters={self.n_clusters}")
        return limit if n is None else min(n, limit)

    def _init_sample(self, Z: torch.Tensor, rng: np.random.RandomState) -> torch.Tensor:
        """A random subset of ``init_size`` rows of in-memory features, for seeding."""
        size = self._init_size(Z.shape[0])
        if size >= Z.shape[0]:
            return Z
        idx = np.sort(rng.choice(Z.shape[0], size, replace=False))
        return Z[torch.from_numpy(idx).to(Z.device)]

    def _new_trainer(self, Z: torch.Tensor, rng: np.random.RandomState, lr: float):
        centers = seed_centers(Z, self.n_clusters, self._n_init(), rng, self.metric_)
        return CenterTrainer(centers, self.metric_, self.optimizer, lr, self.center_step)

    def _fit_raw(self, data: RowSource, rng: np.random.RandomState) -> None:
        Z = None
        if data.array is not None:  # features once, then batches indexed on the device
            Z = torch.cat(list(self._feature_batches(data, 65536)))
            Zh = self._init_sample(Z, rng)
        else:  # a stream: seed on its leading rows
            with torch.no_grad():
                Zh = self._features(self._to_device(data.head(self._init_size(data.n))))
        trainer = self._new_trainer(Zh, rng, self._lr())
        seen: list[torch.Tensor] = []
        epochs = _RAW_EPOCHS if self.max_iter == "auto" else int(self.max_iter)
        self._train_centers(trainer, data, Z, rng, epochs=epochs, tol=self.tol,
                            batch_size=self._batch_size(), labels_out=seen if data.once else None)
        centers = trainer.centers.detach()
        if data.once:  # cannot re-read: pick by the loss of the single pass
            best = int(np.argmin(self._epoch_loss))
            labels = torch.cat(seen, 1)[best].numpy()
            self.loss_ = float(self._epoch_loss[best])
        else:
            losses = torch.zeros(centers.shape[0], dtype=torch.float64, device=centers.device)
            parts = []
            for z in [Z] if Z is not None else self._feature_batches(data, 65536):
                lab, dist = assign(z, centers)
                losses += dist.sum(1, dtype=torch.float64)
                parts.append(lab.cpu())
            best = int(losses.argmin())
            labels = torch.cat(parts, 1)[best].numpy()
            self.loss_ = float(losses[best]) / labels.shape[0]
        trainer.select(best)
        self._trainer = trainer
        self.cluster_centers_ = trainer.centers.detach().cpu().numpy()[0].copy()
        self.labels_ = labels.astype(np.int64)

    def _train_centers(
        self,
        trainer: CenterTrainer,
        data: RowSource | None,
        Z: torch.Tensor | None,
        rng: np.random.RandomState,
        *,
        epochs: int,
        tol: float,
        batch_size: int,
        labels_out: list | None = None,
    ) -> None:
        """Epochs of center updates on features (in memory ``Z`` or streamed ``data``),
        the rate falling linearly to 0 over all steps."""
        epochs = 1 if data is not None and data.once else epochs
        n = Z.shape[0] if Z is not None else data.n
        total = math.ceil(n / batch_size) * epochs if n else None
        prev, step = None, 0
        self.n_iter_ = self.n_steps_ = 0
        progress = Progress(epochs, "TELL", self.verbose and self.encoder is None)
        for _ in range(epochs):
            if Z is not None:  # shuffle once per epoch, then contiguous slices
                Zp = Z[torch.from_numpy(rng.permutation(Z.shape[0])).to(Z.device)]
                batches: Iterable[torch.Tensor] = (
                    Zp[s : s + batch_size] for s in range(0, Z.shape[0], batch_size)
                )
            else:
                batches = self._feature_batches(data, batch_size)
            tot, seen = None, 0
            for z in batches:
                scale = max(0.0, 1.0 - step / total) if total else 1.0
                if labels_out is not None:  # a one-shot stream: label points as they pass
                    labels_out.append(assign(z, trainer.centers.detach())[0].cpu())
                loss = trainer.step(z, scale) * z.shape[0]
                tot = loss if tot is None else tot + loss
                seen += z.shape[0]
                step += 1
            self.n_iter_ += 1
            self.n_steps_ = step
            epoch_loss = (tot / max(seen, 1)).cpu().numpy()
            progress.update(1, loss=float(epoch_loss.min()))
            if prev is not None and np.all(prev - epoch_loss <= tol * np.abs(prev)):
                break
            prev = epoch_loss
            if total is None:  # a stream of unknown length: the first epoch counts it
                total = step * epochs
        progress.close()
        self._epoch_loss = epoch_loss if prev is None else prev

    @torch.no_grad()
    def _finish_encoded(self, data: RowSource) -> None:
        centers = torch.from_numpy(self.cluster_centers_).to(self._device_)[None]
        k = self.n_clusters
        labels, losses = [], []
        norm_sum = torch.zeros(k, dtype=torch.float64, device=self._device_)
        counts = torch.zeros(k, dtype=torch.float64, device=self._device_)
        self.encoder_.eval()
        for block in data.batches(4096):
            h = self.encoder_(self._to_device(block))
            h = h.reshape(h.shape[0], -1)
            lab, loss = assign(features(h, self.metric_), centers)
            norm_sum.index_add_(0, lab[0], h.norm(dim=1).double())
            counts.index_add_(0, lab[0], torch.ones_like(lab[0], dtype=torch.float64))
            labels.append(lab[0].cpu().numpy())
            losses.append(loss[0].double().cpu().numpy())
        self.labels_ = np.concatenate(labels).astype(np.int64)
        self.loss_ = float(np.concatenate(losses).mean())
        mean_norm = (norm_sum.sum() / counts.sum().clamp_min(1)).item()
        scale = torch.where(counts > 0, norm_sum / counts.clamp_min(1), mean_norm)
        self.feature_scale_ = scale.cpu().numpy()

    # ---- online ---------------------------------------------------------------------

    def partial_fit(self, X: Any, y: Any = None) -> TELL:
        """Update the centers with one pass over ``X`` (online clustering).

        Every batch of ``batch_size`` rows gives one center update at the constant rate
        ``partial_lr``. The first call on an unfitted raw-mode model seeds the centers by
        k-means++ on ``X`` (at least ``n_clusters`` rows); in encoder mode call
        :meth:`fit` first, then later calls adapt the centers with the encoder fixed. A call
        that raises (a bad batch late in a stream) leaves the model as it was.
        """
        saved = dict(self.__dict__)  # a call that fails leaves the model as it was
        trainer_saved = copy.deepcopy(self.__dict__.get("_trainer"))
        try:
            return self._partial_fit(X)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            if trainer_saved is not None:
                self._trainer = trainer_saved
            raise

    def _partial_fit(self, X: Any) -> TELL:
        first = not hasattr(self, "cluster_centers_")
        self._check_params()
        if first:
            if self.encoder is not None:
                raise ValueError(
                    "partial_fit with an encoder needs a fitted model: call fit first to "
                    "train the autoencoder, then partial_fit adapts the centers"
                )
            self._device_ = self._device()
            self.metric_ = self._metric()
            data = self._data(X, reset=True)
            self._dtype_ = torch.float64 if data.dtype == np.float64 else torch.float32
            self.encoder_ = self.decoder_ = None
            rng = check_random_state(self.random_state)
            with torch.no_grad():
                Zh = self._features(self._to_device(data.head(self._init_size(data.n))))
            trainer = self._new_trainer(Zh, rng, self._partial_lr())
            _, loss = assign(Zh, trainer.centers.detach())
            trainer.select(int(loss.mean(1).argmin()))
            self._trainer = trainer
            self.n_iter_ = self.n_steps_ = 0
        else:
            fitted_k = self.cluster_centers_.shape[0]
            if self.n_clusters != fitted_k or self._metric() != self.metric_:
                raise ValueError(
                    f"n_clusters={self.n_clusters}, metric={self.metric!r} differ from the "
                    f"fitted model's ({fitted_k} clusters, metric {self.metric_!r}): "
                    "partial_fit continues a fit; call fit to start over"
                )
            data = self._data(X, reset=False)
            trainer = self._trainer
            trainer.lr = self._partial_lr()
        for z in self._feature_batches(data, self._batch_size()):
            trainer.step(z)
            self.n_steps_ += 1
        self.cluster_centers_ = trainer.centers.detach().cpu().numpy()[0].copy()
        if not data.once:
            labels, losses = [], []
            for z in self._feature_batches(data, 65536):
                lab, loss = assign(z, trainer.centers.detach())
                labels.append(lab[0].cpu().numpy())
                losses.append(loss[0].cpu().numpy())
            self.labels_ = np.concatenate(labels).astype(np.int64)
            self.loss_ = float(np.concatenate(losses).mean())
        self.n_iter_ += 1
        return self

    # ---- inference ------------------------------------------------------------------

    def _scores(self, X: Any) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        check_is_fitted(self, "cluster_centers_")
        data = self._data(X, reset=False)
        centers = torch.from_numpy(self.cluster_centers_).to(self._device_, self._dtype_)
        for z in self._feature_batches(data, 8192):
            lab, dist = assign(z, centers[None])
            yield z, lab[0], dist[0]

    def predict(self, X: Any) -> np.ndarray:
        """Cluster of each row: argmax_j W_j . z + b_j, the nearest center."""
        return np.concatenate([lab.cpu().numpy() for _, lab, _ in self._scores(X)]).astype(
            np.int64
        )

    def transform(self, X: Any) -> np.ndarray:
        """Euclidean distances ||z - Omega_j|| of the features to every center, (n, K)."""
        check_is_fitted(self, "cluster_centers_")
        centers = torch.from_numpy(self.cluster_centers_).to(self._device_, self._dtype_)
        out = []
        for z, _, _ in self._scores(X):
            sq = (z * z).sum(1, keepdim=True) - 2.0 * z @ centers.T + (centers**2).sum(1)
            out.append(sq.clamp_min(0.0).sqrt().cpu().numpy())
        return np.concatenate(out)

    def score(self, X: Any, y: Any = None) -> float:
        """Negative clustering loss, -mean_i min_j ||z_i - Omega_j||^2 (higher is better)."""
        total, n = 0.0, 0
        for _, _, dist in self._scores(X):
            total += float(dist.double().sum())
            n += dist.shape[0]
        return -total / n

    # ---- interpretability -----------------------------------------------------------

    def __neuralize__(self, *, device: Any = None, **_: Any):
        """The exact network of this model's logits (:func:`whyclust.neuralize`).

        Raw mode: a k-means network on the inputs (after L2Normalize for the cosine
        metric); encoder mode: encoder (-> L2Normalize) -> k-means network.
        """
        from torch import nn

        from whyclust.networks import EncodedClusterNetwork, KMeansNetwork, L2Normalize

        check_is_fitted(self, "cluster_centers_")
        dtype = torch.float64 if self.cluster_centers_.dtype == np.float64 else torch.float32
        head = KMeansNetwork(torch.from_numpy(self.cluster_centers_).to(dtype))
        cosine = self.metric_ == "cosine"
        if self.encoder_ is None:
            net = (EncodedClusterNetwork(L2Normalize(), head, self.n_features_in_)
                   if cosine else head)
        else:
            enc = copy.deepcopy(self.encoder_).cpu()
            enc = nn.Sequential(enc, L2Normalize()) if cosine else enc
            net = EncodedClusterNetwork(enc, head, self.n_features_in_)
        target = self._device_ if device is None else torch.device(device)
        return net.eval().to(target)

    @property
    def prototypes_(self) -> np.ndarray:
        """The centers in input space, shape (K, *input_shape_).

        Raw mode: the centers themselves. Encoder mode: ``decoder(Omega_j)``; for the
        cosine metric ``decoder(Omega_j * feature_scale_[j])``, since the decoder was
        trained on unnormalised features.
        """
        check_is_fitted(self, "cluster_centers_")
        if self.encoder_ is None:
            return self.cluster_centers_.reshape(self.n_clusters, *self.input_shape_)
        h = self.cluster_centers_
        if self.metric_ == "cosine":
            h = h * self.feature_scale_[:, None]
        with torch.no_grad():
            self.decoder_.eval()
            out = self.decoder_(torch.from_numpy(h).to(self._device_, torch.float32))
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
