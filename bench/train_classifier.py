"""The zoo's one training loop for its small classifiers (digits-cnn, moe-digits): Adam with a
cosine schedule over seeded shuffles, then held-out accuracy. Deterministic given the seed."""
from __future__ import annotations


def train_classifier(net, x_tr, y_tr, x_te, y_te, *, seed: int, epochs: int, batch: int, lr: float = 3e-3,
                     extra_loss=None):
    """Train `net` (built by the caller after torch.manual_seed) in place; (net, held-out accuracy).
    `extra_loss(net)` is added to the cross-entropy of every batch (moe-digits: its balance term)."""
    import torch

    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    xt, yt = torch.from_numpy(x_tr), torch.from_numpy(y_tr)
    gen = torch.Generator().manual_seed(seed)
    ce = torch.nn.CrossEntropyLoss()
    for _ in range(epochs):
        net.train()
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            loss = ce(net(xt[idx]), yt[idx])
            if extra_loss is not None:
                loss = loss + extra_loss(net)
            loss.backward()
            opt.step()
        sched.step()
    net.eval()
    with torch.no_grad():
        acc = float((net(torch.from_numpy(x_te)).argmax(1).numpy() == y_te).mean())
    return net, acc
