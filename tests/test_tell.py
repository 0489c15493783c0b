"""TELL: training, the sklearn surface, encoder modes, neuralize, prototypes, save / load."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import adjusted_rand_score
from torch import nn

import whyclust as wc
from whyclust.models.autoencoders import conv_autoencoder
from whyclust.models.tell import TELL


def directional_blobs(n=300, k=4, d=8, seed=0, spread=0.15):
    """Clusters that differ in direction (TELL clusters L2-normalised points)."""
    rng = np.random.RandomState(seed)
    dirs = rng.standard_normal((k, d))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    y = rng.randint(k, size=n)
    scale = rng.uniform(1.0, 5.0, size=(n, 1))  # the norm carries no cluster information
    X = scale * (dirs[y] + spread * rng.standard_normal((n, d)))
    return X.astype(np.float32), y


# the directional fixtures are cosine data; euclidean runs name their metric
FAST = {"metric": "cosine", "n_init": 2, "max_iter": 10, "batch_size": 64}


# --- raw mode ------------------------------------------------------------------------------


def test_recovers_directional_clusters_and_fitted_attributes():
    X, y = directional_blobs()
    model = TELL(4, random_state=0, **FAST).fit(X)
    assert model.fit(X) is model
    assert adjusted_rand_score(y, model.labels_) > 0.95
    np.testing.assert_array_equal(model.predict(X), model.labels_)
    np.testing.assert_allclose(np.linalg.norm(model.cluster_centers_, axis=1), 1.0, atol=1e-5)
    assert model.cluster_centers_.shape == (4, 8)
    assert model.n_features_in_ == 8 and 1 <= model.n_iter_ <= FAST["max_iter"]
    D = model.transform(X)
    assert D.shape == (300, 4)
    np.testing.assert_array_equal(D.argmin(1), model.labels_)
    # score is the negative clustering loss, mean squared distance to the nearest center
    np.testing.assert_allclose(model.score(X), -np.mean(D.min(1) ** 2), rtol=1e-4)
    np.testing.assert_allclose(model.score(X), -model.loss_, rtol=1e-4)
    # prototypes are the unit-norm centers in raw mode
    np.testing.assert_array_equal(model.prototypes_, model.cluster_centers_)


def test_scale_invariant_because_inputs_are_normalised():
    X, _ = directional_blobs(seed=1)
    a = TELL(4, random_state=0, **FAST).fit(X)
    np.testing.assert_array_equal(a.predict(7.5 * X), a.predict(X))


def test_reaches_spherical_kmeans_loss_on_digits():
    from sklearn.cluster import KMeans

    X, _ = wc.datasets.load_digits()
    Z = X / np.linalg.norm(X, axis=1, keepdims=True)
    km = KMeans(10, n_init=3, random_state=0).fit(Z)
    C = km.cluster_centers_ / np.linalg.norm(km.cluster_centers_, axis=1, keepdims=True)
    reference = float(np.mean(2 - 2 * (Z @ C.T).max(1)))
    model = TELL(10, metric="cosine", random_state=0).fit(X)
    assert model.loss_ <= 1.02 * reference


def test_reaches_kmeans_inertia_on_digits_with_the_euclidean_metric():
    from sklearn.cluster import KMeans

    X, _ = wc.datasets.load_digits()
    X = X.astype(np.float64)
    km = KMeans(10, n_init=10, random_state=0).fit(X)
    model = TELL(10, random_state=0).fit(X)
    assert model.metric_ == "euclidean"
    assert model.loss_ <= 1.01 * km.inertia_ / len(X)
    # the loss is the k-means objective of the centers, computed here independently
    sq = ((X[:, None, :] - model.cluster_centers_[None]) ** 2).sum(-1)
    np.testing.assert_allclose(model.loss_, sq.min(1).mean(), rtol=1e-9)
    np.testing.assert_array_equal(model.labels_, sq.argmin(1))
    np.testing.assert_allclose(model.transform(X), np.sqrt(sq), rtol=1e-7, atol=1e-7)
    assert len(np.unique(model.labels_)) == 10


def test_euclidean_step_at_rate_one_is_lloyds_update_on_the_batch():
    from whyclust.models.tell._centers import CenterTrainer

    rng = np.random.RandomState(0)
    z = torch.from_numpy(rng.standard_normal((40, 3)))
    C = torch.from_numpy(rng.standard_normal((2, 4, 3)))  # two restarts
    C[1, 3] = 100.0  # far away: no point, the center must not move
    trainer = CenterTrainer(C.clone(), "euclidean", "sgd", lr=1.0, step=0.1)
    losses = trainer.step(z)
    new = trainer.centers.detach().numpy()
    for r in range(2):
        d = ((z.numpy()[:, None, :] - C[r].numpy()[None]) ** 2).sum(-1)
        for j in range(4):
            members = z.numpy()[d.argmin(1) == j]
            expected = members.mean(0) if len(members) else C[r, j].numpy()
            np.testing.assert_allclose(new[r, j], expected, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(float(losses[r]), d.min(1).mean(), rtol=1e-12)
    # a smaller rate moves each center that fraction of the way
    half = CenterTrainer(C.clone(), "euclidean", "sgd", lr=0.5, step=0.1)
    half.step(z)
    np.testing.assert_allclose(half.centers.detach().numpy(), (C.numpy() + new) / 2, atol=1e-12)


def test_euclidean_is_translation_equivariant():
    X, _ = wc.datasets.load_digits()
    X = X[:400].astype(np.float64)
    a = TELL(5, n_init=2, random_state=0).fit(X)
    b = TELL(5, n_init=2, random_state=0).fit(X + 50.0)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_allclose(b.cluster_centers_, a.cluster_centers_ + 50.0, atol=1e-8)


def test_deterministic_for_a_seed_and_seed_matters():
    X, _ = directional_blobs(k=6, seed=2, spread=0.6)
    a = TELL(6, random_state=3, **FAST).fit(X)
    b = TELL(6, random_state=3, **FAST).fit(X)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    c = TELL(6, random_state=4, **FAST).fit(X)
    assert not np.array_equal(a.cluster_centers_, c.cluster_centers_)


def test_restarts_keep_the_lowest_loss():
    X, _ = directional_blobs(k=8, seed=5, spread=0.8)
    single = [TELL(8, metric="cosine", n_init=1, max_iter=10, random_state=s).fit(X).loss_
              for s in range(4)]
    multi = TELL(8, metric="cosine", n_init=8, max_iter=10, random_state=0).fit(X).loss_
    assert multi <= np.median(single) + 1e-6


@pytest.mark.parametrize("k", [2, 17])
def test_any_number_of_clusters(k):
    X, _ = directional_blobs(n=200, k=5, seed=k)
    model = TELL(k, random_state=0, **FAST).fit(X)
    assert model.cluster_centers_.shape == (k, 8)
    assert set(np.unique(model.labels_)) <= set(range(k))


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("optimizer", ["adadelta", "adam"])
def test_paper_optimizers_run_and_reduce_the_loss(optimizer, metric):
    X, _ = directional_blobs(seed=7)
    params = {**FAST, "metric": metric}
    model = TELL(4, optimizer=optimizer, random_state=0, **params).fit(X)
    init = TELL(4, metric=metric, n_init=2, max_iter=1, lr=0.0, random_state=0).fit(X)
    assert np.isfinite(model.loss_) and model.loss_ <= init.loss_ + 1e-6


def test_float64_is_kept_and_float32_otherwise():
    X, _ = directional_blobs()
    m64 = TELL(4, random_state=0, **FAST).fit(X.astype(np.float64))
    assert m64.cluster_centers_.dtype == np.float64
    assert m64.transform(X.astype(np.float64)).dtype == np.float64
    m32 = TELL(4, random_state=0, **FAST).fit((X * 100).astype(np.int64))
    assert m32.cluster_centers_.dtype == np.float32


# --- neuralize -----------------------------------------------------------------------------


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    k=st.integers(2, 7),
    d=st.integers(2, 12),
    dtype=st.sampled_from([np.float32, np.float64]),
    metric=st.sampled_from(["cosine", "euclidean"]),
)
def test_neuralized_argmax_equals_predict(seed, k, d, dtype, metric):
    rng = np.random.RandomState(seed)
    X = rng.standard_normal((60, d)).astype(dtype)
    model = TELL(k, metric=metric, n_init=1, max_iter=3, batch_size=32,
                 random_state=seed).fit(X)
    net = wc.neuralize(model)
    Xt = rng.standard_normal((200, d)).astype(dtype)
    logits = net(torch.from_numpy(Xt)).detach().numpy()
    np.testing.assert_array_equal(logits.argmax(1), model.predict(Xt))
    assert (logits.max(1) >= 0).all()


def test_neuralize_structure_and_explain_conserves():
    from whyclust.networks import EncodedClusterNetwork, KMeansNetwork, L2Normalize

    X, _ = directional_blobs()
    model = TELL(4, random_state=0, **FAST).fit(X)
    net = wc.neuralize(model)
    assert isinstance(net, EncodedClusterNetwork) and isinstance(net.encoder, L2Normalize)
    assert isinstance(net.head, KMeansNetwork)
    np.testing.assert_allclose(net.head.centers.numpy(), model.cluster_centers_)
    e = wc.explain(model, X[:50])
    np.testing.assert_array_equal(e.cluster, model.predict(X[:50]))
    np.testing.assert_allclose(e.relevance.sum(1), e.logit, atol=1e-4 * np.abs(e.logit).max())
    # euclidean: a plain k-means network on the inputs, through the protocol method
    euc = TELL(4, random_state=0, **{**FAST, "metric": "euclidean"}).fit(X)
    net = euc.__neuralize__()
    assert type(net) is KMeansNetwork and type(wc.neuralize(euc)) is KMeansNetwork
    np.testing.assert_allclose(net.centers.numpy(), euc.cluster_centers_)
    np.testing.assert_array_equal(net.predict(X), euc.labels_)


# --- encoder modes -------------------------------------------------------------------------


def small_images(n=64):
    """8x8 digits of three well-separated classes (0, 1, 7): a few epochs find all three."""
    X, y = wc.datasets.load_digits(as_images=True)
    keep = np.flatnonzero(np.isin(y, (0, 1, 7)))[:n]
    return X[keep], y[keep]


def assert_all_clusters_used(model):
    """A trained fixture must not have collapsed: every one of the K clusters holds points."""
    counts = np.bincount(model.labels_, minlength=model.n_clusters)
    assert (counts > 0).all(), f"collapsed fixture: cluster sizes {counts}"


ENC_FAST = {"n_init": 2, "max_iter": 2, "pretrain_epochs": 5, "batch_size": 32, "n_latent": 4,
            "augment": None}


def test_conv_mode_refuses_inputs_its_sigmoid_cannot_reconstruct():
    da = pytest.importorskip("dask.array")
    X, _ = small_images()
    for data in (X * 16, X - 0.5, da.from_array(X * 255, chunks=40)):  # read in batches
        with pytest.raises(ValueError, match=r"X must lie in \[0, 1\]; got values in"):
            TELL(3, encoder="conv", random_state=0, **ENC_FAST).fit(data)
    flat = X.reshape(len(X), -1) * 16  # the MLP decoder is linear: any range
    TELL(3, encoder="mlp", random_state=0, **{**ENC_FAST, "pretrain_epochs": 1}).fit(flat)


def test_conv_mode_trains_predicts_and_neuralizes():
    X, _ = small_images()
    model = TELL(3, encoder="conv", random_state=0, **ENC_FAST).fit(X)
    assert_all_clusters_used(model)
    assert model.input_shape_ == (1, 8, 8) and model.n_features_in_ == 64
    assert model.cluster_centers_.shape == (3, 4)
    np.testing.assert_allclose(np.linalg.norm(model.cluster_centers_, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(model.predict(X), model.labels_)
    assert model.prototypes_.shape == (3, 1, 8, 8)
    assert ((model.prototypes_ >= 0) & (model.prototypes_ <= 1)).all()  # sigmoid decoder
    net = wc.neuralize(model)
    assert isinstance(net.encoder, nn.Sequential)
    np.testing.assert_array_equal(net.predict(X), model.predict(X))
    again = TELL(3, encoder="conv", random_state=0, **ENC_FAST).fit(X)
    np.testing.assert_array_equal(again.cluster_centers_, model.cluster_centers_)
    with pytest.raises(ValueError, match="4-D"):
        model.predict(X.reshape(len(X), -1))
    with pytest.raises(ValueError, match=r"X must lie in \[0, 1\]"):  # 8-bit, unscaled
        model.predict(X * 255)


# spies on the training loop (what each step sees), with one or two epochs on deliberately
# odd inputs: the clustering they end with is not the point, so its collapse warning is
# silenced by name here (and only here)
SPY = pytest.mark.filterwarnings(
    "ignore:TELL. only .* clusters hold points:sklearn.exceptions.ConvergenceWarning"
)

def test_affine_augmentation_trains_deterministically_and_is_saved(tmp_path):
    X, _ = small_images()
    model = TELL(3, encoder="conv", random_state=0, **{**ENC_FAST, "augment": "affine"}).fit(X)
    again = TELL(3, encoder="conv", random_state=0, **{**ENC_FAST, "augment": "affine"}).fit(X)
    assert_all_clusters_used(model)
    np.testing.assert_array_equal(again.cluster_centers_, model.cluster_centers_)
    plain = TELL(3, encoder="conv", random_state=0, **ENC_FAST).fit(X)
    assert not np.array_equal(plain.cluster_centers_, model.cluster_centers_)
    np.testing.assert_array_equal(model.predict(X), model.labels_)
    wc.save(model, tmp_path / "m.safetensors")
    loaded = wc.load(tmp_path / "m.safetensors")
    assert loaded.augment == "affine"
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


# one pretraining epoch: with two BLAS threads Lloyd's start can leave a cluster empty;
# this test counts the augmenter's calls, the collapse guard is tested elsewhere
@pytest.mark.filterwarnings("ignore:TELL. only")
def test_augment_callable_sees_every_training_batch_and_is_checked():
    X, _ = small_images()
    calls = []

    def jitter(xb):
        calls.append(xb.shape)
        return xb + 0.01 * torch.randn_like(xb)

    params = {**ENC_FAST, "pretrain_epochs": 1, "max_iter": 2}
    TELL(3, encoder="conv", random_state=0, **{**params, "augment": jitter}).fit(X)
    # one pretraining epoch and one network epoch (the other clustering epoch moves centers)
    assert len(calls) == 2 * (len(X) // params["batch_size"])
    assert all(shape[1:] == (1, 8, 8) for shape in calls)
    with pytest.raises(ValueError, match="batch's shape"):
        TELL(3, encoder="conv", random_state=0, **{**params, "augment": lambda xb: xb[:1]}).fit(X)


@SPY
def test_augmented_training_reconstructs_the_original_images(monkeypatch):
    """With augment, the autoencoder is a denoising one: the target is the untransformed batch."""
    X, _ = small_images()
    targets = []
    real_mse = torch.nn.functional.mse_loss

    def recording_mse(out, target):
        targets.append(target.detach().clone())
        return real_mse(out, target)

    monkeypatch.setattr(torch.nn.functional, "mse_loss", recording_mse)
    params = {**ENC_FAST, "pretrain_epochs": 1, "max_iter": 2}
    # digits images lie in [0, 1]; the transformed copies lie in [2, 3]
    TELL(3, encoder="conv", random_state=0, **{**params, "augment": lambda xb: xb + 2.0}).fit(X)
    assert len(targets) == 2 * (len(X) // params["batch_size"])
    rows = {tuple(row) for row in X.reshape(len(X), -1).round(6)}
    for target in targets:
        assert float(target.max()) <= 1.0
        flat = target.reshape(len(target), -1).numpy().round(6)
        assert all(tuple(row) in rows for row in flat)


def test_network_learning_rate_falls_linearly_over_the_clustering_epochs(monkeypatch):
    X, _ = small_images()
    seen = []

    class RecordingAdam(torch.optim.Adam):
        def step(self, closure=None):
            seen.append(self.param_groups[0]["lr"])
            return super().step(closure)

    monkeypatch.setattr(torch.optim, "Adam", RecordingAdam)
    params = {**ENC_FAST, "pretrain_epochs": 1, "max_iter": 4, "encoder_lr": 0.01,
              "cluster_encoder_lr": 0.002}  # fmt: skip
    TELL(3, encoder="conv", random_state=0, **params).fit(X)
    per_epoch = len(X) // params["batch_size"]
    # pretraining at encoder_lr; network epochs 1 and 3 of 4 at 3/4 and 1/4 of the other
    expected = [0.01] * per_epoch + [0.0015] * per_epoch + [0.0005] * per_epoch
    np.testing.assert_allclose(seen, expected)


@SPY
def test_conv_training_uses_channels_last_on_cpu_and_ends_in_the_standard_layout():
    X, _ = small_images()
    encoder, decoder = conv_autoencoder((1, 8, 8), n_latent=4)
    layouts = []

    def record(module, inputs, output):
        layouts.append((module.training, module.weight.is_contiguous()))

    encoder[3].register_forward_hook(record)  # 16 -> 32 channels: the layouts differ
    TELL(3, encoder=(encoder, decoder), random_state=0, **ENC_FAST).fit(X)
    assert any(training for training, _ in layouts)
    assert all(not contiguous for training, contiguous in layouts if training)
    model = TELL(3, encoder="conv", random_state=0, **ENC_FAST).fit(X)
    tensors = [*model.encoder_.state_dict().values(), *model.decoder_.state_dict().values()]
    assert all(t.is_contiguous() for t in tensors)  # safetensors needs the standard layout


def test_kl_target_is_the_sharpened_size_normalised_soft_assignment():
    from whyclust.models.tell._encoder import kl_target as _kl_target
    from whyclust.models.tell._encoder import soft_assign as _soft_assign

    rng = np.random.RandomState(0)
    Z = torch.from_numpy(rng.standard_normal((50, 5)))
    Z = Z / Z.norm(dim=1, keepdim=True)
    C = torch.from_numpy(rng.standard_normal((3, 5)))
    C = C / C.norm(dim=1, keepdim=True)
    p, scale = _kl_target(Z, C)
    # reference in numpy, straight from the formulas in the docstring
    z, c = Z.numpy(), C.numpy()
    sq = ((z[:, None, :] - c[None]) ** 2).sum(-1)
    s2 = sq.min(1).mean()
    q = 1.0 / (1.0 + sq / s2)
    q /= q.sum(1, keepdims=True)
    ref = q**2 / q.sum(0)
    ref /= ref.sum(1, keepdims=True)
    np.testing.assert_allclose(float(scale), s2, rtol=1e-10)
    np.testing.assert_allclose(_soft_assign(Z, C, scale).numpy(), q, rtol=1e-10)
    np.testing.assert_allclose(p.numpy(), ref, rtol=1e-10)
    # sharper than q where a point is clearly assigned, and the argmax is kept there
    confident = q.max(1) > 0.6
    assert (p.numpy().max(1)[confident] > q.max(1)[confident]).all()


def test_kl_target_moves_mass_from_a_large_cluster_to_a_small_one():
    from whyclust.models.tell._encoder import kl_target as _kl_target

    C = torch.eye(3, dtype=torch.float64)[:2]
    big = torch.tensor([[1.0, 0.0, 0.2]]).repeat(90, 1)
    small = torch.tensor([[0.0, 1.0, 0.2]]).repeat(10, 1)
    middle = torch.tensor([[1.0, 1.0, 0.0]])  # equidistant from both centers
    Z = torch.cat([big, small, middle]).double()
    p, _ = _kl_target(Z / Z.norm(dim=1, keepdim=True), C)
    assert float(p[-1, 1]) > 0.8  # the tie goes to the small cluster


@pytest.mark.parametrize("source", ["array", "memmap"])
def test_kl_loss_pairs_each_batch_with_its_own_rows_of_the_target(source, tmp_path, monkeypatch):
    """The target is indexed by row: shuffled (in memory) or in file order (streams)."""
    import whyclust.models.tell._encoder as tell_module

    n = 96
    X, _ = directional_blobs(n=n, k=3, d=6, seed=1)
    X[:, 0] = np.arange(n) / n  # the first feature names the row
    if source == "memmap":
        mm = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32,
                                       shape=X.shape)  # fmt: skip
        mm[:] = X
        mm.flush()
        data = np.load(tmp_path / "x.npy", mmap_mode="r")
    else:
        data = X
    real_target = tell_module.kl_target

    def row_target(Z, centers):  # p[i] = (i/n, 1 - i/n, 0): row i can be read back from p
        p, scale = real_target(Z, centers)
        col = torch.arange(Z.shape[0], dtype=p.dtype) / Z.shape[0]
        return torch.stack([col, 1.0 - col, torch.zeros_like(col)], 1), scale

    inputs, pairs = [], []
    real_kl = tell_module.F.kl_div

    def recording_kl(log_q, target, **kwargs):
        pairs.append((inputs[-1][:, 0].clone(), target[:, 0].clone()))
        return real_kl(log_q, target, **kwargs)

    monkeypatch.setattr(tell_module, "kl_target", row_target)
    monkeypatch.setattr(tell_module.F, "kl_div", recording_kl)
    enc = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    enc.register_forward_pre_hook(lambda module, args: inputs.append(args[0].detach()))
    dec = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 6))
    params = {**ENC_FAST, "pretrain_epochs": 1, "max_iter": 4, "batch_size": 20}
    TELL(3, encoder=(enc, dec), cluster_loss="kl", random_state=0, **params).fit(data)
    assert len(pairs) == 2 * (n // 20 + 1)  # two network epochs; the last batch has 16 rows
    seen = torch.cat([rows for rows, _ in pairs])
    for rows, target in pairs:
        np.testing.assert_allclose(rows.numpy(), target.numpy(), atol=1e-6)
    seen_rows = np.rint(seen.numpy() * n).astype(int)
    np.testing.assert_array_equal(np.sort(seen_rows), np.repeat(np.arange(n), 2))  # each once


def test_kl_loss_trains_deterministically_learns_and_is_saved(tmp_path):
    X, y = directional_blobs(n=240, k=3, d=6, seed=3, spread=0.1)
    torch.manual_seed(0)  # the user's modules: their weights must not depend on test order
    enc = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 4))
    dec = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 6))
    params = {**ENC_FAST, "pretrain_epochs": 30, "max_iter": 6, "cluster_weight": 1.0}
    model = TELL(3, encoder=(enc, dec), cluster_loss="kl", random_state=0, **params).fit(X)
    assert_all_clusters_used(model)
    again = TELL(3, encoder=(enc, dec), cluster_loss="kl", random_state=0, **params).fit(X)
    np.testing.assert_array_equal(again.cluster_centers_, model.cluster_centers_)
    hard = TELL(3, encoder=(enc, dec), cluster_loss="hard", random_state=0, **params).fit(X)
    assert not np.array_equal(hard.cluster_centers_, model.cluster_centers_)
    np.testing.assert_array_equal(model.predict(X), model.labels_)
    np.testing.assert_array_equal(wc.neuralize(model).predict(X), model.labels_)
    assert adjusted_rand_score(y, model.labels_) > 0.5
    loaded = wc.load(wc.save(model, tmp_path / "kl.safetensors"))
    assert loaded.cluster_loss == "kl"
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


@SPY
def test_kl_loss_with_augmentation_targets_the_untransformed_images(monkeypatch):
    """The target comes from the originals; the loss is taken on the transformed copies."""
    import whyclust.models.tell._encoder as tell_module

    X, _ = small_images()
    checked, real_target = [], tell_module.kl_target
    model = TELL(3, encoder="conv", cluster_loss="kl", random_state=0,
                 **{**ENC_FAST, "pretrain_epochs": 1, "max_iter": 2,
                    "augment": lambda xb: xb + 2.0})  # fmt: skip

    def spy(Z, centers):
        encoder = model.encoder_
        assert not encoder.training
        with torch.no_grad():
            originals = tell_module.features(encoder(torch.from_numpy(X)), "cosine")
            copies = tell_module.features(encoder(torch.from_numpy(X) + 2.0), "cosine")
        np.testing.assert_allclose(Z.numpy(), originals.numpy(), atol=1e-5)
        assert not np.allclose(Z.numpy(), copies.numpy(), atol=1e-3)
        checked.append(True)
        return real_target(Z, centers)

    monkeypatch.setattr(tell_module, "kl_target", spy)
    model.fit(X)
    assert checked == [True]  # one network epoch, one target


def test_encoder_mode_warns_when_clusters_end_empty():
    X = np.tile(np.linspace(0.0, 1.0, 6, dtype=np.float32), (40, 1))  # one point, 40 times
    enc = nn.Sequential(nn.Linear(6, 3))
    dec = nn.Sequential(nn.Linear(3, 6))
    with pytest.warns(ConvergenceWarning, match="1 of 3 clusters"):
        TELL(3, encoder=(enc, dec), random_state=0, **ENC_FAST).fit(X)
    Xs, _ = directional_blobs(n=120, k=3, d=6, seed=3, spread=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        TELL(3, encoder=(enc, dec), random_state=0,
             **{**ENC_FAST, "pretrain_epochs": 20}).fit(Xs)  # fmt: skip


def test_mlp_on_digits_keeps_every_cluster_at_the_default_clustering_rate():
    """At the pretraining rate Adam collapses the MLP's features into one or two clusters."""
    X, _ = wc.datasets.load_digits()
    X = (X / 16.0).astype(np.float32)
    params = {"pretrain_epochs": 10, "max_iter": 4, "random_state": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = TELL(10, encoder="mlp", **params).fit(X)
    assert np.unique(model.labels_).size == 10
    # at the pretraining rate (with the lighter schedule of earlier defaults) they collapse
    with pytest.warns(ConvergenceWarning, match="clusters hold points"):
        TELL(10, encoder="mlp", cluster_encoder_lr=1e-3, batch_size=256, cluster_weight=0.01,
             **params).fit(X)


def test_random_affine_moves_images_and_zero_range_is_identity():
    from whyclust.models.autoencoders import random_affine

    torch.manual_seed(0)
    x = torch.rand(16, 1, 12, 12)
    np.testing.assert_allclose(random_affine(x, max_shift=0.0, max_rotation=0.0), x, atol=1e-6)
    moved = random_affine(x)
    assert moved.shape == x.shape and not torch.allclose(moved, x)
    # a 10% shift of a 12-pixel image moves content by at most 1.2 pixels (plus rotation)
    assert float((moved - x).abs().mean()) < float((x - x.roll(3, -1)).abs().mean())
    with pytest.raises(ValueError, match="images"):
        random_affine(x.reshape(16, -1))


def test_mlp_mode_builds_the_paper_autoencoder():
    X, _ = directional_blobs(n=64, k=3, d=6)
    mlp = TELL(3, encoder="mlp", random_state=0, **{**ENC_FAST, "pretrain_epochs": 1}).fit(X)
    sizes = [m.out_features for m in mlp.encoder_ if isinstance(m, nn.Linear)]
    assert sizes == [500, 500, 2000, 4]
    assert mlp.prototypes_.shape == (3, 6)
    np.testing.assert_array_equal(mlp.predict(X), mlp.labels_)


def test_user_modules_are_copied_and_learn_the_clusters():
    X, y = directional_blobs(n=240, k=3, d=6, seed=3, spread=0.1)
    torch.manual_seed(0)  # the user's modules: their weights must not depend on test order
    enc = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 4))
    dec = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 6))
    before = [p.detach().clone() for p in enc.parameters()]
    params = {**ENC_FAST, "pretrain_epochs": 30, "max_iter": 6}
    user = TELL(3, encoder=(enc, dec), random_state=0, **params).fit(X)
    assert_all_clusters_used(user)
    for p, q in zip(enc.parameters(), before, strict=True):  # never trained in place
        assert torch.equal(p, q)
    np.testing.assert_array_equal(user.predict(X), user.labels_)
    assert adjusted_rand_score(y, user.labels_) > 0.5


def test_partial_fit_in_encoder_mode_needs_fit_first():
    X, _ = directional_blobs(n=64, d=6)
    with pytest.raises(ValueError, match="call fit first"):
        TELL(3, encoder="mlp").partial_fit(X)


# --- save / load ---------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 4])
def test_save_load_round_trip_raw(tmp_path, k):
    X, _ = directional_blobs()
    model = TELL(k, random_state=0, **FAST).fit(X.astype(np.float64))
    path = wc.save(model, tmp_path / "tell.safetensors")
    again = wc.load(path)
    assert isinstance(again, TELL)
    np.testing.assert_array_equal(again.predict(X), model.predict(X))
    np.testing.assert_array_equal(again.transform(X), model.transform(X))
    assert again.get_params()["n_init"] == 2 and again.loss_ == model.loss_
    again.partial_fit(X[:64])  # a loaded model keeps learning online


def test_save_load_keeps_the_metric_and_reads_files_from_before_it(tmp_path):
    from whyclust.models.tell import _format

    X, _ = directional_blobs()
    euc = TELL(4, random_state=0, **{**FAST, "metric": "auto"}).fit(X)
    again = wc.load(wc.save(euc, tmp_path / "euc.safetensors"))
    assert again.metric == "auto" and again.metric_ == "euclidean"
    np.testing.assert_array_equal(again.predict(X * 3.0), euc.predict(X * 3.0))
    assert type(wc.neuralize(again)) is type(wc.neuralize(euc))
    # a file written before the metric existed: no metric anywhere, a cosine model
    cos = TELL(4, random_state=0, **FAST).fit(X)
    tensors, config = _format.dump(cos)
    del config["params"]["metric"], config["metric"]
    old = _format.restore(tensors, config)
    assert old.metric == old.metric_ == "cosine"
    np.testing.assert_array_equal(old.predict(X * 3.0), cos.predict(X * 3.0))
    config["metric"] = "manhattan"
    with pytest.raises(ValueError, match="metric"):
        _format.restore(tensors, config)


def test_save_load_round_trip_encoder_modes(tmp_path):
    images, _ = small_images()
    X, _ = directional_blobs(n=48, k=3, d=6)
    enc = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    dec = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 6))
    cases = [
        (TELL(3, encoder="conv", random_state=0, **ENC_FAST), images),
        (TELL(3, encoder="mlp", random_state=0, **{**ENC_FAST, "pretrain_epochs": 1}), X),
        (TELL(3, encoder=(enc, dec), random_state=0, **ENC_FAST), X),
    ]
    for i, (model, data) in enumerate(cases):
        model.fit(data)
        assert_all_clusters_used(model)
        again = wc.load(wc.save(model, tmp_path / f"m{i}.safetensors"))
        np.testing.assert_array_equal(again.predict(data), model.predict(data))
        np.testing.assert_allclose(again.prototypes_, model.prototypes_, atol=1e-6)


def test_save_refuses_modules_it_cannot_describe(tmp_path):
    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(6, 3)

        def forward(self, x):
            return self.lin(x)

    X, _ = directional_blobs(n=64, k=3, d=6)
    model = TELL(3, encoder=(Custom(), nn.Linear(3, 6)), random_state=0, **ENC_FAST).fit(X)
    with pytest.raises(TypeError, match="Custom"):
        wc.save(model, tmp_path / "custom.safetensors")


# --- plots ---------------------------------------------------------------------------------


def test_plot_prototypes_images_and_bars():
    from matplotlib.figure import Figure

    from whyclust.plotting import plot_prototypes

    X, _ = wc.datasets.load_digits()
    model = TELL(10, random_state=0, max_iter=3).fit(X)
    fig = model.plot_prototypes(image_shape=(8, 8))
    assert isinstance(fig, Figure)
    assert len([ax for ax in fig.axes if ax.images]) == 10
    Xt, _ = directional_blobs(k=3, d=5)
    tab = TELL(3, random_state=0, **FAST).fit(Xt)
    fig = plot_prototypes(tab.prototypes_, feature_names=list("abcde"))
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert set(labels) <= set("abcde") and len(fig.axes[0].patches) == 5
    with pytest.raises(ValueError, match="image_shape"):
        plot_prototypes(tab.prototypes_, image_shape=(2, 2))
    with pytest.raises(ValueError, match="feature names"):
        plot_prototypes(tab.prototypes_, feature_names=["a"])


# --- bad input and devices -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"n_clusters": 0}, ValueError, "n_clusters"),
        ({"n_clusters": 2.5}, TypeError, "n_clusters"),
        ({"optimizer": "lbfgs"}, ValueError, "optimizer"),
        ({"encoder": "resnet"}, ValueError, "encoder"),
        ({"encoder": (1, 2)}, TypeError, "encoder"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"lr": -1.0}, ValueError, "lr"),
        ({"device": "nonsense"}, ValueError, "device"),
        ({"augment": "mixup"}, ValueError, "augment"),
        ({"cluster_loss": "soft"}, ValueError, "cluster_loss"),
        ({"cluster_loss": None}, ValueError, "cluster_loss"),
        ({"encoder": "mlp", "augment": "affine", "pretrain_epochs": 1}, ValueError, "images"),
    ],
)
def test_bad_parameters(params, error, match):
    X, _ = directional_blobs(n=40)
    with pytest.raises(error, match=match):
        TELL(**{"n_clusters": 3, **params}).fit(X)


def test_bad_data():
    X, _ = directional_blobs(n=40)
    model = TELL(3, **FAST)
    with pytest.raises(ValueError, match="n_samples=2 should be >= n_clusters=3"):
        model.fit(X[:2])
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.fit(bad)
    model.fit(X)
    with pytest.raises(ValueError, match="3 features"):
        model.predict(X[:, :3])
    with pytest.raises(ValueError, match="4-D"):
        TELL(3, encoder="conv").fit(X)


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the message without a GPU")
def test_cuda_request_without_gpu_is_a_clear_error():
    X, _ = directional_blobs(n=40)
    with pytest.raises(ValueError, match="CUDA"):
        TELL(3, device="cuda").fit(X)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu():
    X, _ = directional_blobs()
    cpu = TELL(4, random_state=0, **FAST).fit(X)
    gpu = TELL(4, random_state=0, device="cuda", **FAST).fit(X)
    assert adjusted_rand_score(cpu.labels_, gpu.labels_) > 0.99
    np.testing.assert_array_equal(gpu.predict(X), gpu.labels_)
    net = wc.neuralize(gpu)
    assert net.device.type == "cuda"
    np.testing.assert_array_equal(net.predict(X), gpu.labels_)
    images, _ = small_images(64)
    conv = TELL(3, encoder="conv", device="cuda", random_state=0, **ENC_FAST).fit(images)
    np.testing.assert_array_equal(conv.predict(images), conv.labels_)


def test_verbose_shows_progress_and_zero_is_silent(capsys):
    X, _ = directional_blobs(n=64)
    TELL(3, verbose=0, random_state=0, **FAST).fit(X)
    assert "TELL" not in capsys.readouterr().err
    model = TELL(3, verbose=1, random_state=0, **{**FAST, "tol": 0.0}).fit(X)
    lines = capsys.readouterr().err.splitlines()
    # not a terminal: one complete line per epoch, no carriage-return redraws
    assert len(lines) == model.n_iter_ == FAST["max_iter"]
    assert all(line.startswith("TELL") and "\r" not in line for line in lines)
    assert lines[-1].split(":")[1].strip().startswith("100%")
    images, _ = small_images()
    params = {**ENC_FAST, "pretrain_epochs": 3, "max_iter": 2}
    TELL(3, encoder="conv", verbose=1, random_state=0, **params).fit(images)
    assert len(capsys.readouterr().err.splitlines()) == 3 + 2


def test_auto_schedule_is_the_recipe_up_to_5000_points_and_its_step_count_beyond():
    from whyclust.models.tell._encoder import Schedule

    model = TELL(10, encoder="conv")
    model.input_shape_ = (1, 28, 28)
    steps = lambda n: -(-n // 128)  # noqa: E731  (ceil)
    for n in (64, 1797, 5000):
        plan = model._schedule(n)
        assert isinstance(plan, Schedule)
        assert (plan.pretrain_epochs, plan.epochs, plan.batch_size) == (150, 40, 128)
        assert plan.cluster_weight == 1.0 and plan.augment is not None  # affine for conv
    for n in (10_000, 70_000, 1_000_000):
        plan = model._schedule(n)
        assert abs(plan.pretrain_epochs * steps(n) - 150 * 40) <= steps(n)
        assert plan.epochs % 2 == 0 and plan.epochs >= 2
        assert plan.epochs == 2 or abs(plan.epochs * steps(n) - 40 * 40) <= 2 * steps(n)
    mlp = TELL(10, encoder="mlp")
    mlp.input_shape_ = (784,)
    assert mlp._schedule(5000).augment is None
    given = TELL(10, encoder="conv", pretrain_epochs=3, max_iter=4, batch_size=16)
    given.input_shape_ = (1, 28, 28)
    assert (given._schedule(70_000).pretrain_epochs, given._schedule(70_000).epochs) == (3, 4)
    assert TELL(10)._batch_size() == 256 and TELL(10, encoder="conv")._batch_size() == 128
