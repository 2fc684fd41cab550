#!/usr/bin/env python3
"""The yardstick for `klayer bench`: the same update step in PyTorch (f32, CPU).

The net of `klayer bench` with its defaults: 3072-50-50-10 with BN before each ReLU (no bias in
the layers BN follows), softmax cross-entropy, L2 term 0.005 (SGD weight decay 0.01 = 2·lambda),
learning rate 0.01, mini-batches of 100 drawn in a shuffled order from a pool of 10,000 random
images, 200 warm-up steps, then 2,000 timed steps in 5 blocks: prints the median block's ms per
step, like `klayer bench`.

PyTorch is not a dependency of klayer: run this with any Python that has torch, e.g.
`python3 -m venv /tmp/torch && /tmp/torch/bin/pip install torch && /tmp/torch/bin/python
scripts/bench_pytorch.py`. Compare figures taken in one session on one machine, interleaved
with `klayer bench` (README, "Speed").
"""

import argparse
import json
import time

import torch
from torch import nn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden", default="50,50", help="hidden widths, e.g. 50,50")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=0, help="0: PyTorch's default")
    parser.add_argument("--json", action="store_true", help="print one line of JSON")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    widths = [3072] + [int(h) for h in args.hidden.split(",") if h] + [10]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        last = i == len(widths) - 2
        layers.append(nn.Linear(a, b, bias=last))
        if not last:
            layers += [nn.BatchNorm1d(b, eps=1e-8, momentum=0.1), nn.ReLU()]
    net = nn.Sequential(*layers)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, weight_decay=0.01)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.randn(args.images, 3072)
    y = torch.arange(args.images) % 10
    order = torch.randperm(args.images)
    pos = 0

    def step() -> None:
        nonlocal order, pos
        if pos + args.batch > args.images:
            order, pos = torch.randperm(args.images), 0
        idx = order[pos : pos + args.batch]
        pos += args.batch
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(x[idx]), y[idx])
        loss.backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    blocks = 5
    per_block = -(-args.steps // blocks)
    block_ms = []
    for _ in range(blocks):
        t = time.perf_counter()
        for _ in range(per_block):
            step()
        block_ms.append((time.perf_counter() - t) * 1e3 / per_block)
    block_ms.sort()
    median, best = block_ms[blocks // 2], block_ms[0]
    threads = torch.get_num_threads()
    if args.json:
        print(json.dumps({"ms_per_step": median, "best_ms_per_step": best, "threads": threads,
                          "torch": torch.__version__}))
    else:
        print(f"PyTorch {torch.__version__} ({threads} threads), {'-'.join(map(str, widths))}, "
              f"batch {args.batch}: {median:.3f} ms per update step (median of {blocks} blocks of "
              f"{per_block}; best {best:.3f})")


if __name__ == "__main__":
    main()
