"""Command-line interface: ``whyclust demo | fit | explain | report | bench``."""

from __future__ import annotations

import sys

import click

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="whyclust")
def cli() -> None:
    """Cluster data and explain, for every point, why it belongs to its cluster."""


@cli.command()
@click.option("--seed", default=0, show_default=True, help="Random seed.")
def demo(seed: int) -> None:
    """Fit k-means on scikit-learn's digits, explain every point, print a summary."""
    import numpy as np
    from sklearn.cluster import KMeans

    import whyclust as wc

    X, y = wc.datasets.load_digits()
    km = KMeans(n_clusters=10, n_init=10, random_state=seed).fit(X)
    expl = wc.explain(km, X)
    scores = wc.metrics.evaluate(y, km.labels_)
    click.echo(
        f"k-means on digits ({X.shape[0]} x {X.shape[1]}): "
        + ", ".join(f"{k.upper()} {v:.3f}" for k, v in scores.items())
    )
    err = np.abs(expl.relevance_sum() - expl.logit).max() / np.abs(expl.logit).max()
    click.echo(f"NEON: {expl.n_samples} points explained, beta={expl.beta:.3g}, "
               f"max relative conservation error {err:.1e}")
    for c in range(km.n_clusters):
        members = expl.cluster == c
        mean_rel = expl.relevance[members].mean(0).reshape(8, 8)
        top = np.argsort(mean_rel.ravel())[::-1][:3]
        pixels = ", ".join(f"({i // 8},{i % 8})" for i in top)
        click.echo(
            f"cluster {c}: {members.sum():4d} points, mean logit "
            f"{expl.logit[members].mean():6.2f}, top pixels (row,col) {pixels}"
        )


def main(argv: list[str] | None = None) -> int:
    try:
        cli.main(args=argv, standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return 2
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 1
    except (ValueError, TypeError, FileNotFoundError, ImportError) as exc:
        click.echo(f"Error: {exc}", err=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
