"""TELL's encoder mode: autoencoder pretraining, then clustering epochs that alternate
center updates and network updates (L = L_rec + lambda L_clu), and DEC's KL loss.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from whyclust._batches import RowSource
from whyclust.models.tell._centers import (
    CenterTrainer,
    assign,
    features,
    lloyd,
    seed_centers,
    sq_distances,
)
from whyclust.models.tell._progress import Progress

__all__ = ["Schedule", "build_networks", "kl_target", "make_augmenter", "soft_assign",
           "train_encoded"]


@dataclass(frozen=True)
class Schedule:
    """The resolved training schedule of one ``fit`` (``"auto"`` values replaced)."""

    pretrain_epochs: int
    epochs: int
    batch_size: int
    cluster_weight: float
    augment: Callable[[torch.Tensor], torch.Tensor] | None


def soft_assign(z: torch.Tensor, centers: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """DEC's Student-t soft assignments of features z (B, d) to centers (K, d).

    q_ij ∝ 1 / (1 + ||z_i - Omega_j||^2 / scale).
    """
    q = 1.0 / (1.0 + sq_distances(z, centers) / scale)
    return q / q.sum(1, keepdim=True)


@torch.no_grad()
def kl_target(Z: torch.Tensor, centers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """DEC's target p_ij ∝ q_ij^2 / sum_i q_ij for all features Z (n, d), and its scale.

    The scale is the mean squared distance of the points to their nearest center, so the
    kernel adapts to how spread the clusters are instead of to a fixed constant.
    """
    scale = sq_distances(Z, centers).min(1).values.mean().clamp_min(1e-12)
    q = soft_assign(Z, centers, scale)
    p = q * q / q.sum(0).clamp_min(1e-30)
    return p / p.sum(1, keepdim=True), scale


def build_networks(
    encoder: Any, input_shape: tuple[int, ...], n_latent: int
) -> tuple[nn.Module, nn.Module]:
    """The (encoder, decoder) pair to train: built-in by name, or a copy of the user's."""
    from whyclust.models.autoencoders import conv_autoencoder, mlp_autoencoder

    if encoder == "mlp":
        return mlp_autoencoder(int(np.prod(input_shape)), n_latent=n_latent)
    if encoder == "conv":
        return conv_autoencoder(input_shape, n_latent=n_latent)
    enc, dec = encoder
    return copy.deepcopy(enc), copy.deepcopy(dec)


def _probe_pair(encoder: nn.Module, decoder: nn.Module, xb: torch.Tensor) -> None:
    """Run a user's (encoder, decoder) on two rows; torch's shape errors become a
    ``ValueError`` that says which network refused which batch."""
    modes = encoder.training, decoder.training
    encoder.eval(), decoder.eval()
    try:
        with torch.no_grad():
            h = _run_named(encoder, xb, "the encoder cannot take X's rows")
            _run_named(decoder, h, "the decoder cannot take the encoder's output")
    finally:
        encoder.train(modes[0]), decoder.train(modes[1])


def _run_named(net: nn.Module, batch: torch.Tensor, what: str) -> torch.Tensor:
    try:
        return net(batch)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{what}, a batch of shape {tuple(batch.shape)}: {first}") from exc


def unit_range(needed: bool):
    """For the built-in conv autoencoder, whose decoder ends in a sigmoid: a function that
    returns a batch unchanged, or raises ``ValueError`` when it leaves [0, 1]."""

    def check(xb: Any) -> Any:  # a tensor or a numpy array
        if needed and xb.shape[0]:
            low, high = float(xb.min()), float(xb.max())
            if low < -1e-6 or high > 1 + 1e-6:
                raise ValueError(
                    f"encoder='conv' reconstructs its input through a sigmoid, so X must lie "
                    f"in [0, 1]; got values in [{low:.4g}, {high:.4g}]: scale it first (8-bit "
                    "images: X / 255), or use encoder='mlp'"
                )
        return xb

    return check


def make_augmenter(augment: Any, input_shape: tuple[int, ...]) -> Any:
    """The batch transformation for ``augment`` (None, "affine" or a callable), checked."""
    if augment is None:
        return None
    if isinstance(augment, str):  # "affine" (validated by the estimator)
        from whyclust.models.autoencoders import random_affine

        if len(input_shape) != 3:
            raise ValueError(
                "augment='affine' needs images of shape (n, C, H, W), got rows of shape "
                f"{input_shape}"
            )
        return random_affine

    def checked(xb: torch.Tensor) -> torch.Tensor:
        out = augment(xb)
        if not isinstance(out, torch.Tensor) or out.shape != xb.shape:
            raise ValueError(
                "augment must return a tensor of the batch's shape "
                f"{tuple(xb.shape)}, got {getattr(out, 'shape', type(out).__name__)}"
            )
        return out

    return checked


def train_encoded(
    model: Any, data: RowSource, rng: np.random.RandomState, plan: Schedule
) -> CenterTrainer:
    """Train ``model.encoder_`` / ``model.decoder_`` (set here) and the centers.

    ``model`` is the TELL being fitted; it provides the parameters, the device and
    ``_to_device`` / ``_features``. Returns the center trainer with one restart left.
    """
    if data.once:
        raise ValueError(
            "encoder mode trains for several epochs and cannot use a one-shot iterator; "
            "pass an array, a dask / zarr array or a re-iterable of batches"
        )
    device, metric = model._device_, model.metric_
    seed = int(rng.randint(np.iinfo(np.int32).max))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoder, decoder = build_networks(model.encoder, model.input_shape_, model.n_latent)
    encoder = encoder.to(device, torch.float32)
    decoder = decoder.to(device, torch.float32)
    # oneDNN trains the conv AE ~1.5x faster on one CPU thread with channels-last
    # weights (activations follow them); the standard layout comes back after fit
    channels_last = device.type == "cpu" and len(model.input_shape_) == 3
    if channels_last:
        encoder.to(memory_format=torch.channels_last)
        decoder.to(memory_format=torch.channels_last)
    model.encoder_, model.decoder_ = encoder, decoder
    params = [*encoder.parameters(), *decoder.parameters()]
    net_opt = torch.optim.Adam(params, lr=model.encoder_lr)
    X_dev = model._to_device(data.array) if data.array is not None else None
    bs = plan.batch_size
    augment = plan.augment
    in_unit_range = unit_range(model.encoder == "conv")
    if X_dev is not None:
        in_unit_range(X_dev)
    if not isinstance(model.encoder, str):  # a user's pair: sizes checked before training
        first = X_dev[:2] if X_dev is not None else next(iter(data.batches(2)), None)
        if first is not None:
            _probe_pair(encoder, decoder, model._to_device(first))

    def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(row indices, rows) of each training batch (BatchNorm needs two rows)."""
        if X_dev is not None:
            perm = torch.from_numpy(rng.permutation(X_dev.shape[0])).to(device)
            for s in range(0, X_dev.shape[0], bs):
                rows = perm[s : s + bs]
                if rows.shape[0] > 1:
                    yield rows, X_dev[rows]
        else:
            start = 0
            for block in data.batches(bs):
                rows = torch.arange(start, start + block.shape[0], device=device)
                start += block.shape[0]
                block = in_unit_range(model._to_device(block))
                if block.shape[0] > 1:
                    yield rows, block

    def all_features() -> torch.Tensor:
        return torch.cat(list(model._feature_batches(data, 4096)))

    def rec_loss(xb: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        out = decoder(h)
        if out.shape[0] != xb.shape[0] or out[0].numel() != xb[0].numel():
            raise ValueError(
                f"the decoder maps a batch of shape {tuple(xb.shape)} to {tuple(out.shape)}: "
                "it must give back one input-shaped point per row"
            )
        return F.mse_loss(out.reshape(xb.shape), xb)

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
                own = assign(model._features(xb), centers[None])[0][0]
                encoder.train()
        h = encoder(xb if augment is None else augment(xb))
        z = features(h, metric)
        if target is not None:
            p, scale = target
            q = soft_assign(z, centers, scale)
            return h, F.kl_div(q.clamp_min(1e-30).log(), p[rows], reduction="batchmean")
        if augment is None:
            return h, sq_distances(z, centers).min(1).values.mean()
        return h, ((z - centers[own]) ** 2).sum(1).mean()

    progress = Progress(plan.pretrain_epochs + plan.epochs, "TELL", model.verbose)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        for _ in range(plan.pretrain_epochs):
            encoder.train()
            decoder.train()
            for _, xb in batches():
                # with augment: a denoising autoencoder that undoes the transformation
                loss = rec_loss(xb, encoder(xb if augment is None else augment(xb)))
                net_opt.zero_grad(set_to_none=True)
                loss.backward()
                net_opt.step()
            progress.update(1, rec=float(loss.detach()))

        # centers: k-means (Lloyd) on the pretrained features from k-means++ restarts,
        # the lowest inertia kept, as DEC does
        Z = all_features()
        seeds = seed_centers(model._init_sample(Z, rng), model.n_clusters, model._n_init(),
                             rng, metric)
        centers, inertia = lloyd(Z, seeds, metric, tol=model.tol)
        best = int(inertia.argmin())
        trainer = CenterTrainer(centers[best : best + 1], metric, model.optimizer, model._lr(),
                                model.center_step)

        for epoch in range(plan.epochs):
            # centers and networks both settle: their rates fall linearly to zero
            lr_scale = 1.0 - epoch / max(plan.epochs, 1)
            if epoch % 2 == 0:  # centers, features detached
                encoder.eval()
                for _, xb in batches():
                    with torch.no_grad():
                        z = model._features(xb)
                    trainer.step(z, lr_scale)
                progress.update(1)
                continue
            for group in net_opt.param_groups:  # networks, centers fixed
                group["lr"] = model.cluster_encoder_lr * lr_scale
            centers = trainer.centers.detach()[0]
            target = None
            if model.cluster_loss == "kl":  # from the untransformed inputs
                target = kl_target(all_features(), centers)
            encoder.train()
            decoder.train()
            for rows, xb in batches():
                h, clu = cluster_term(xb, centers, target, rows)
                loss = rec_loss(xb, h) + plan.cluster_weight * clu
                net_opt.zero_grad(set_to_none=True)
                loss.backward()
                net_opt.step()
            progress.update(1, loss=float(loss.detach()))
    progress.close()
    if channels_last:
        encoder.to(memory_format=torch.contiguous_format)
        decoder.to(memory_format=torch.contiguous_format)
    encoder.eval()
    decoder.eval()
    return trainer
