"""Model files: round trips for every model type; pickles and tampered files are refused."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.cluster import KMeans, MiniBatchKMeans
from torch import nn

import whyclust as wc
from whyclust import io
from whyclust.networks import EncodedClusterNetwork, KMeansNetwork, L2Normalize

RNG = np.random.default_rng(0)
X = RNG.normal(size=(60, 5))


@pytest.fixture(scope="module")
def kmeans():
    return KMeans(n_clusters=3, n_init=2, random_state=0).fit(X)


def resign(path: Path, edit) -> None:
    """Rewrite a model file after ``edit(header, tensors)``, with a fresh valid checksum."""
    from safetensors.numpy import save_file

    header, tensors = io.read_model_file(path)
    edit(header, tensors)
    header["sha256"] = io._digest(header, tensors)
    save_file(tensors, str(path), metadata={"whyclust": json.dumps(header)})


# --- round trips ------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [KMeans, MiniBatchKMeans])
def test_sklearn_kmeans_round_trip(tmp_path, cls):
    model = cls(n_clusters=4, n_init=2, random_state=1).fit(X)
    path = wc.save(model, tmp_path / "m.whyclust")
    back = wc.load(path)
    assert type(back) is cls
    np.testing.assert_array_equal(back.cluster_centers_, model.cluster_centers_)
    np.testing.assert_array_equal(back.predict(X), model.predict(X))
    np.testing.assert_array_equal(back.labels_, model.labels_)
    assert back.get_params()["n_clusters"] == 4
    np.testing.assert_allclose(wc.explain(back, X).relevance, wc.explain(model, X).relevance)


@settings(max_examples=25)
@given(
    k=st.integers(2, 6),
    d=st.integers(1, 7),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**16),
)
def test_kmeans_network_round_trip_is_exact(tmp_path_factory, k, d, dtype, seed):
    centers = np.random.default_rng(seed).normal(size=(k, d)).astype(dtype)
    path = tmp_path_factory.mktemp("net") / "net.safetensors"
    back = wc.load(wc.save(KMeansNetwork(centers), path))
    assert isinstance(back, KMeansNetwork)
    np.testing.assert_array_equal(back.centers.numpy(), centers)
    assert back.centers.dtype == torch.from_numpy(centers).dtype


def test_encoded_network_round_trip(tmp_path):
    torch.manual_seed(0)
    encoder = nn.Sequential(
        nn.Conv2d(1, 4, 3, stride=2, padding=1),
        nn.BatchNorm2d(4),
        nn.LeakyReLU(0.1),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16, 3),
        L2Normalize(),
    )
    # non-trivial BatchNorm statistics
    encoder.train()
    encoder(torch.randn(32, 1, 8, 8))
    encoder.eval()
    head = KMeansNetwork(RNG.normal(size=(4, 3)).astype(np.float32))
    net = EncodedClusterNetwork(encoder, head, 64)
    back = wc.load(wc.save(net, tmp_path / "deep.whyclust"))
    x = torch.randn(20, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(back(x), net(x), rtol=0, atol=0)
    assert back.n_features == 64 and back.n_clusters == 4
    assert not back.training


def test_unknown_encoder_layer_is_a_clear_error(tmp_path):
    class Custom(nn.Module):
        def forward(self, x):
            return x

    net = EncodedClusterNetwork(Custom(), KMeansNetwork(RNG.normal(size=(3, 5))), 5)
    with pytest.raises(TypeError, match="encoder containing Custom"):
        wc.save(net, tmp_path / "x.whyclust")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["TELL", "KernelKMeans"])
def test_other_models_round_trip(tmp_path, name):
    module = {"TELL": "whyclust.models.tell", "KernelKMeans": "whyclust.models.kernel_kmeans"}
    pytest.importorskip(module[name], reason=f"{name} is not part of this build")
    Xs = X[:40].astype(np.float32)
    model = getattr(wc, name)(n_clusters=3, random_state=0)
    if name == "TELL":
        model.set_params(n_init=1, max_iter=3)
    model.fit(Xs)
    back = wc.load(wc.save(model, tmp_path / "m.whyclust"))
    assert type(back) is type(model)
    np.testing.assert_array_equal(back.predict(Xs), model.predict(Xs))


def test_unsaveable_object():
    with pytest.raises(TypeError, match="no whyclust file format"):
        wc.save(object(), "never-written.whyclust")
    assert not Path("never-written.whyclust").exists()


# --- refused files ----------------------------------------------------------------------


class _Payload:
    """Unpickling this would create a marker file: proof of code execution."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_malicious_pickle_is_refused_without_running_it(tmp_path, protocol):
    marker = tmp_path / "pwned"
    data = pickle.dumps(_Payload(marker), protocol=protocol)
    pickle.loads(data)  # sanity: the payload does run when unpickled
    assert marker.exists()
    marker.unlink()
    for name in ("model.whyclust", "model.safetensors", "model.pt"):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(ValueError, match=r"pickle|not a whyclust model file"):
            wc.load(path)
    assert not marker.exists()


def test_torch_checkpoint_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pt"
    torch.save({"x": _Payload(marker)}, path)
    with pytest.raises(ValueError, match="pickle or archive"):
        wc.load(path)
    assert not marker.exists()


def test_missing_empty_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such model file"):
        wc.load(tmp_path / "nope.whyclust")
    (tmp_path / "empty.whyclust").write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        wc.load(tmp_path / "empty.whyclust")
    with pytest.raises(ValueError, match="not a file"):
        wc.load(tmp_path)


@pytest.mark.parametrize("keep", [0.2, 0.5, 0.9, 0.999])
def test_truncated_file(tmp_path, kmeans, keep):
    path = wc.save(kmeans, tmp_path / "m.whyclust")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ValueError, match=r"truncated|corrupt"):
        wc.load(path)


def test_flipped_tensor_byte(tmp_path, kmeans):
    path = wc.save(kmeans, tmp_path / "m.whyclust")
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum mismatch"):
        wc.load(path)


def test_edited_header_json(tmp_path, kmeans):
    path = wc.save(kmeans, tmp_path / "m.whyclust")
    data = path.read_bytes()
    # same length, so the safetensors frame stays valid: only the checksum can catch it
    edited = data.replace(b'\\"n_clusters\\": 3', b'\\"n_clusters\\": 4')
    assert edited != data
    path.write_bytes(edited)
    with pytest.raises(ValueError, match="checksum mismatch"):
        wc.load(path)


def test_header_that_is_not_json(tmp_path, kmeans):
    path = wc.save(kmeans, tmp_path / "m.whyclust")
    data = path.read_bytes()
    path.write_bytes(data.replace(b'{\\"config', b'[\\"config', 1))
    with pytest.raises(ValueError, match=r"not valid JSON|corrupt"):
        wc.load(path)


def write_legacy_kmeans(model, path: Path) -> Path:
    """A KMeans file in the layout of whyclust's first format (kind "sklearn-kmeans")."""
    from safetensors.numpy import save_file

    tensors = {
        "cluster_centers": np.asarray(model.cluster_centers_),
        "labels": np.asarray(model.labels_, dtype=np.int64),
    }
    params = {k: v for k, v in model.get_params().items() if isinstance(v, (int, str, type(None)))}
    config = {
        "class": type(model).__name__,
        "params": params,
        "n_iter": int(model.n_iter_),
        "inertia": float(model.inertia_),
    }
    header = {"format_version": 1, "kind": "sklearn-kmeans", "config": config}
    header["sha256"] = io._digest(header, tensors)
    save_file(tensors, str(path), metadata={"whyclust": json.dumps(header, sort_keys=True)})
    return path


@pytest.mark.parametrize("cls", [KMeans, MiniBatchKMeans])
def test_files_of_the_first_format_still_load(tmp_path, cls):
    model = cls(n_clusters=3, n_init=2, random_state=0).fit(X)
    back = wc.load(write_legacy_kmeans(model, tmp_path / "old.whyclust"))
    assert type(back) is cls
    np.testing.assert_array_equal(back.predict(X), model.predict(X))
    np.testing.assert_array_equal(back.cluster_centers_, model.cluster_centers_)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda h, t: h.update(kind="os.system"), "unknown model kind 'os.system'"),
        (lambda h, t: h.update(kind="kmeans-network"), "inconsistent.*missing tensor"),
        (lambda h, t: h.update(format_version=99), "unsupported format version 99"),
        (lambda h, t: h.update(format_version="1"), "unsupported format version"),
        (lambda h, t: h["config"].update({"class": "Exploit"}), "unknown k-means class"),
        (
            lambda h, t: t["cluster_centers"].__setitem__((1, 2), np.nan),
            "cluster_centers.*NaN",
        ),
        (lambda h, t: t.update(cluster_centers=np.zeros(3)), "must be 2-D"),
        (lambda h, t: t.update(labels=np.full(60, 7)), "labels must be cluster indices"),
    ],
)
def test_resigned_but_invalid_legacy_content(tmp_path, kmeans, edit, match):
    path = write_legacy_kmeans(kmeans, tmp_path / "m.whyclust")
    resign(path, edit)
    with pytest.raises(ValueError, match=match):
        wc.load(path)


def _estimator(header):
    return header["config"]["estimator"]


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda h, t: _estimator(h).update({"class": "Exploit"}), "'Exploit' is not allowed"),
        (lambda h, t: _estimator(h).update({"class": "os.system"}), "is not allowed"),
        (lambda h, t: _estimator(h)["attrs"].update(evil_=1), "'evil_' is not allowed"),
        (lambda h, t: _estimator(h)["params"].update(evil=1), "unexpected keyword|evil"),
        (lambda h, t: _estimator(h)["params"].update(n_clusters=-3), "n_clusters"),
        (
            lambda h, t: t["m.a.cluster_centers_"].__setitem__((1, 2), np.nan),
            "cluster_centers_ contains NaN",
        ),
        (
            lambda h, t: t.update({"m.a.cluster_centers_": np.zeros((3, 4))}),
            "cluster_centers_ has shape",
        ),
        (lambda h, t: t.pop("m.a.cluster_centers_"), "missing tensor"),
        (
            lambda h, t: _estimator(h)["attrs"].update(n_features_in_={"$eval": "1"}),
            "unknown value tag",
        ),
        (lambda h, t: h.update(feature_names=["a", "b"]), "names 2 features"),
        (lambda h, t: h.update(config={"estimator": {}, "x": 1}), "one estimator"),
    ],
)
def test_resigned_but_invalid_sklearn_content(tmp_path, kmeans, edit, match):
    path = wc.save(kmeans, tmp_path / "m.whyclust")
    resign(path, edit)
    with pytest.raises(ValueError, match=match):
        wc.load(path)


def test_missing_checksum(tmp_path, kmeans):
    from safetensors.numpy import save_file

    path = wc.save(kmeans, tmp_path / "m.whyclust")
    header, tensors = io.read_model_file(path)
    header.pop("sha256")
    save_file(tensors, str(path), metadata={"whyclust": json.dumps(header)})
    with pytest.raises(ValueError, match="no checksum"):
        wc.load(path)


def test_nan_centers_in_network_file(tmp_path):
    path = wc.save(KMeansNetwork(RNG.normal(size=(3, 4))), tmp_path / "n.whyclust")
    resign(path, lambda h, t: t["centers"].__setitem__((0, 0), np.inf))
    with pytest.raises(ValueError, match="NaN or infinite"):
        wc.load(path)


def test_encoder_with_absurd_sizes_allocates_nothing(tmp_path):
    net = EncodedClusterNetwork(
        nn.Sequential(nn.Linear(5, 3)), KMeansNetwork(RNG.normal(size=(3, 3))), 5
    )
    path = wc.save(net, tmp_path / "d.whyclust")

    def huge(header, tensors):
        header["config"]["encoder"]["children"][0]["args"]["in_features"] = 10**12

    resign(path, huge)
    with pytest.raises(ValueError, match=r"inconsistent.*size mismatch"):
        wc.load(path)


@pytest.mark.parametrize(
    "layer",
    [
        {"type": "Module", "args": {}},
        {"type": "Linear", "args": {"in_features": 5, "out_features": 3, "device": "cuda"}},
        {"type": "Linear", "args": {"in_features": {"a": 1}, "out_features": 3}},
        "Linear",
    ],
)
def test_encoder_layers_outside_the_whitelist(tmp_path, layer):
    net = EncodedClusterNetwork(
        nn.Sequential(nn.Linear(5, 3)), KMeansNetwork(RNG.normal(size=(3, 3))), 5
    )
    path = wc.save(net, tmp_path / "d.whyclust")
    resign(path, lambda h, t: h["config"]["encoder"]["children"].__setitem__(0, layer))
    with pytest.raises(ValueError, match="inconsistent"):
        wc.load(path)


def test_plain_safetensors_file_is_not_a_model(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "weights.safetensors"
    save_file({"w": np.ones(3, dtype=np.float32)}, str(path))
    with pytest.raises(ValueError, match="not a whyclust model"):
        wc.load(path)


# --- atomic writes ----------------------------------------------------------------------


def test_failed_save_leaves_no_file_and_keeps_the_old_one(tmp_path, kmeans, monkeypatch):
    import safetensors.numpy

    path = wc.save(kmeans, tmp_path / "m.whyclust")
    before = path.read_bytes()

    def broken(arrays, filename, metadata=None):
        Path(filename).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.numpy, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        wc.save(KMeans(n_clusters=2, n_init=1).fit(X), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.whyclust"]


def test_save_into_missing_folder(tmp_path, kmeans):
    with pytest.raises(FileNotFoundError, match="folder does not exist"):
        wc.save(kmeans, tmp_path / "no" / "m.whyclust")


def test_header_length_is_never_mistaken_for_a_pickle(tmp_path):
    """The 8-byte safetensors length (a multiple of 8) may start with 0x80 or '(' too."""
    path = wc.save(KMeansNetwork(RNG.normal(size=(3, 4))), tmp_path / "n.whyclust")
    for wanted in (0x80, ord("("), ord("P")):
        for pad in range(260):  # config padding shifts the header length byte by byte
            resign(path, lambda h, t, pad=pad: h.update(config={"note": "x" * pad}))
            if path.read_bytes()[0] == wanted:
                break
        assert path.read_bytes()[0] == wanted
        assert wc.load(path).n_features == 4


# --- one-way imports: io -> models through a table, models -> _fileformat ------------------


def test_fileformat_imports_nothing_of_whyclust_at_module_level():
    import ast

    source = Path(io.__file__).with_name("_fileformat.py").read_text()
    tree = ast.parse(source)
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    names = [a.name for n in top if isinstance(n, ast.Import) for a in n.names]
    names += [n.module for n in top if isinstance(n, ast.ImportFrom) and n.module]
    assert not [m for m in names if m.startswith("whyclust")], names


def test_io_imports_no_model_module_when_loading_sklearn_files(tmp_path, kmeans):
    import subprocess
    import sys

    path = wc.save(kmeans, tmp_path / "k.whyclust")
    code = (
        "import sys, whyclust as wc\n"
        f"wc.load({str(path)!r})\n"
        "bad = [m for m in ('torch', 'whyclust.models', 'whyclust.networks') if m in sys.modules]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_model_module_protocol(tmp_path, monkeypatch):
    """A model module listed in MODEL_MODULES is written and read by its to_file / from_file."""
    import sys
    import types

    module = types.ModuleType("whyclust.models._fake")

    class Fake:
        def __init__(self, w):
            self.w = w

    Fake.__module__ = module.__name__
    module.Fake = Fake
    module.to_file = lambda m: ({"w": m.w}, {"note": "fake"})
    module.from_file = lambda t, c: Fake(t["w"]) if c == {"note": "fake"} else None
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(io.MODEL_MODULES, "fake", "whyclust.models._fake:Fake")
    back = wc.load(wc.save(Fake(np.arange(3.0)), tmp_path / "f.whyclust"))
    assert isinstance(back, Fake)
    np.testing.assert_array_equal(back.w, np.arange(3.0))
    header, _ = io.read_model_file(tmp_path / "f.whyclust")
    assert header["kind"] == "fake" and header["config"] == {"note": "fake"}
