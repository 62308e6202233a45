"""How close do the MI estimators come to the truth? Correlated Gaussians, closed form known.

x, z in R^d standard normal with corr(x_i, z_i) = rho have I(X; Z) = -(d/2) ln(1 - rho^2).
For every rho, three critics T(x, z) of the same architecture are trained from scratch:

* MINE: Donsker-Varadhan bound with the moving-average gradient correction;
* JSD: trained on the Jensen-Shannon bound, then read out through the DV bound (the
  JSD value itself is not in nats of MI; its optimal critic is the same log ratio);
* InfoNCE: trained and read out on the InfoNCE bound with the batch as negatives,
  which can never exceed ln(batch size).

Each estimate is taken on fresh samples. Prints JSON and a markdown table and draws
the three against the true curve (PNG).

    python benchmarks/mi_estimators.py --dims 1 5 --output docs/mi_estimators.png
"""

import argparse
import json
import math
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from selfsup.losses import (  # noqa: E402
    MINE,
    ConcatCritic,
    MutualInformationLoss,
    donsker_varadhan_mi,
    info_nce_mi,
    split_scores,
)


def correlated_gaussians(count, dim, rho, generator):
    x = torch.randn(count, dim, generator=generator)
    z = rho * x + math.sqrt(1 - rho**2) * torch.randn(count, dim, generator=generator)
    return x, z


def all_pair_scores(critic, x, z):
    """(N, N) matrix of T(x_i, z_j)."""
    count = x.shape[0]
    return critic(x.repeat_interleave(count, dim=0), z.repeat(count, 1)).view(count, count)


def shuffled_pair_scores(critic, x, z):
    return critic(x, z), critic(x, z[torch.randperm(z.shape[0])])


def train(critic_loss, parameters, dim, rho, args, generator, batch_size=None):
    optimizer = torch.optim.Adam(parameters, lr=args.lr)
    for _ in range(args.steps):
        loss = critic_loss(*correlated_gaussians(batch_size or args.batch_size, dim, rho, generator))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def estimate_all(dim, rho, args):
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    held_out = correlated_gaussians(args.eval_samples, dim, rho, generator)
    positives = torch.arange(args.nce_batch_size)
    mine = MINE(dim, dim, args.hidden_dim)
    jsd_critic, jsd = ConcatCritic(dim, dim, args.hidden_dim), MutualInformationLoss("jsd")
    nce_critic, nce = ConcatCritic(dim, dim, args.hidden_dim), MutualInformationLoss("infonce")

    def mine_loss(x, z):
        return mine(x, z)[0]

    def jsd_loss(x, z):
        return jsd(*shuffled_pair_scores(jsd_critic, x, z))[0]

    def nce_loss(x, z):
        return nce(*split_scores(all_pair_scores(nce_critic, x, z), positives))[0]

    train(mine_loss, mine.parameters(), dim, rho, args, generator)
    train(jsd_loss, jsd_critic.parameters(), dim, rho, args, generator)
    train(nce_loss, nce_critic.parameters(), dim, rho, args, generator, batch_size=args.nce_batch_size)
    with torch.no_grad():
        nce_batches = zip(*(part.split(args.nce_batch_size) for part in held_out))
        nce_estimate = torch.stack(
            [info_nce_mi(*split_scores(all_pair_scores(nce_critic, x, z), positives)) for x, z in nce_batches]
        ).mean()
        return {
            "mine": mine.estimate(*held_out).item(),
            "jsd": donsker_varadhan_mi(*shuffled_pair_scores(jsd_critic, *held_out)).item(),
            "infonce": nce_estimate.item(),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dims", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--points", type=int, default=15, help="values of rho in [-0.99, 0.99]")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=256, help="MINE and JSD")
    parser.add_argument("--nce-batch-size", type=int, default=128, help="InfoNCE scores all N^2 pairs")
    parser.add_argument("--hidden-dim", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--eval-samples", type=int, default=16384)
    parser.add_argument("--output", type=Path, default=Path("runs/benchmarks/mi_estimators.png"))
    args = parser.parse_args()

    rhos = torch.linspace(-0.99, 0.99, args.points).tolist()
    results = []
    started = time.perf_counter()
    for dim in args.dims:
        for rho in rhos:
            row = {"dim": dim, "rho": round(rho, 4), "true": -dim / 2 * math.log(1 - rho**2)}
            row |= estimate_all(dim, rho, args)
            results.append(row)
            print(json.dumps({key: round(value, 4) for key, value in row.items()}), flush=True)

    print(f"\n{len(results)} settings x 3 estimators in {time.perf_counter() - started:.0f} s\n")
    print("| d | rho | true (nats) | MINE (DV) | JSD critic, DV read-out | InfoNCE |")
    print("|---:|---:|---:|---:|---:|---:|")
    for row in results:
        print(
            f"| {row['dim']} | {row['rho']:+.2f} | {row['true']:.3f} | {row['mine']:.3f} "
            f"| {row['jsd']:.3f} | {row['infonce']:.3f} |"
        )
    plot(results, args)


def plot(results, args) -> None:
    figure, axes = plt.subplots(1, len(args.dims), figsize=(5.5 * len(args.dims), 4.2), squeeze=False)
    fine = torch.linspace(-0.99, 0.99, 400)
    for axis, dim in zip(axes[0], args.dims):
        rows = [row for row in results if row["dim"] == dim]
        rhos = [row["rho"] for row in rows]
        axis.plot(fine, -dim / 2 * torch.log(1 - fine**2), color="black", label="true  -(d/2) ln(1-rho^2)")
        axis.plot(rhos, [row["mine"] for row in rows], "o-", label="MINE (DV, EMA-corrected)")
        axis.plot(rhos, [row["jsd"] for row in rows], "s-", label="JSD-trained critic (DV read-out)")
        axis.plot(rhos, [row["infonce"] for row in rows], "^-", label="InfoNCE")
        axis.axhline(
            math.log(args.nce_batch_size), color="grey", linestyle=":", label=f"ln(batch={args.nce_batch_size})"
        )
        axis.set(title=f"d = {dim}", xlabel="rho", ylabel="I(X; Z) (nats)")
        axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8, loc="upper center")
    figure.suptitle(f"MI estimates on correlated Gaussians, {args.steps} training steps per point")
    figure.tight_layout()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.output, dpi=120)
    print(f"\nplot: {args.output}")


if __name__ == "__main__":
    main()
