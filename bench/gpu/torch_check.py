#!/usr/bin/env python3
"""PyTorch side of the GPU check (bench/gpu/run.sh).

check DIR: re-derives every case harness dumped (losses from their definitions, float64 autograd) and
compares loss and gradient with the CUDA kernels' output.
time N [--ours FP32_MS,BF16_MS]: times the same forward-kl + backward in PyTorch eager at N x 128256 x 64.
"""
import sys

import numpy as np
import torch

FLOOR = 1e-6  # bucket tail floor (DN_TAIL_FLOOR)


def div(kind, p, lp, q, lq, beta=0.5, alpha=0.1):
    z = torch.zeros_like(p)
    if kind == "forward-kl":
        return torch.where(p > 0, p * (lp - lq), z).sum(-1)
    if kind == "reverse-kl":
        return torch.where(q > 0, q * (lq - lp), z).sum(-1)
    if kind == "jsd":
        m = beta * p + (1 - beta) * q
        lm = torch.log(m)
        return (beta * torch.where(p > 0, p * (lp - lm), z) + (1 - beta) * torch.where(q > 0, q * (lq - lm), z)).sum(-1)
    if kind == "skew-kl":
        m = alpha * p + (1 - alpha) * q
        return torch.where(p > 0, p * (lp - torch.log(m)), z).sum(-1)
    if kind == "tvd":
        return 0.5 * (p - q).abs().sum(-1)
    raise ValueError(kind)


def loss_of(z, ids, a, labels, kind, support, T):
    mask = labels != -100
    if kind == "ce":
        return torch.nn.functional.cross_entropy(z, labels.long(), ignore_index=-100)
    s = torch.log_softmax(z / T, -1)
    sI = s.gather(1, ids.long())
    if support == "renormalize":
        lp = torch.log_softmax(a / T, -1)
        p = lp.exp()
        if kind == "forward-kl":
            L = (p * (lp - sI)).sum(-1)
        else:
            lq = torch.log_softmax(sI, -1)
            L = div(kind, p, lp, lq.exp(), lq)
    else:
        p, q = a.exp(), sI.exp()
        pt = (1 - p.sum(-1, keepdim=True)).clamp_min(FLOOR)
        qt_raw = 1 - q.sum(-1, keepdim=True)
        qt = torch.where(qt_raw > FLOOR, qt_raw, torch.full_like(qt_raw, FLOOR))
        P, Q = torch.cat([p, pt], -1), torch.cat([q, qt], -1)
        L = div(kind, P, torch.cat([a, pt.log()], -1), Q, torch.cat([sI, qt.log()], -1))
    return (L * T * T)[mask].mean()


def check(d):
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    rows = [line.rstrip("\n").split("\t") for line in open(f"{d}/cases.tsv")]
    head, rows = rows[0], rows[1:]
    failures = 0
    print(f"| case | loss rel diff | grad max diff / max |grad| | ok |\n|---|---|---|---|")
    for r in rows:
        c = dict(zip(head, r))
        n, v, k, T = int(c["n"]), int(c["v"]), int(c["k"]), float(c["T"])
        z = torch.from_numpy(np.fromfile(f"{d}/logits.f32", dtype=np.float32).reshape(n, v)).to(dev)
        if c["dtype"] == "bf16":
            z = z.to(torch.bfloat16)
        z = z.double().requires_grad_(True)
        ids = torch.from_numpy(np.fromfile(f"{d}/ids.i32", dtype=np.int32).reshape(n, k)).to(dev)
        a = torch.from_numpy(np.fromfile(f"{d}/logp.f32", dtype=np.float32).reshape(n, k)).to(dev).double()
        labels = torch.from_numpy(np.fromfile(f"{d}/labels.i32", dtype=np.int32)).to(dev)
        L = loss_of(z, ids, a, labels, c["kind"], c["support"], T)
        L.backward()
        want = z.grad
        got = torch.from_numpy(np.fromfile(f"{d}/{c['name']}.grad.f32", dtype=np.float32).reshape(n, v)).to(dev).double()
        gdiff = ((got - want).abs().max() / want.abs().max()).item()
        ldiff = abs(float(c["loss"]) - L.item()) / max(abs(L.item()), 1e-12)
        tol = (2e-2, 1e-3) if c["dtype"] == "bf16" else (1e-4, 1e-4)
        ok = gdiff < tol[0] and ldiff < tol[1]
        failures += not ok
        print(f"| {c['name']} | {ldiff:.2e} | {gdiff:.2e} | {'ok' if ok else 'FAIL'} |")
    print(f"{'FAIL' if failures else 'PASS'}: {failures} failure(s) against PyTorch")
    return 1 if failures else 0


def time_torch(n, ours):
    v, k = 128256, 64
    g = torch.Generator(device="cuda").manual_seed(0)
    res = {}
    for dtype in (torch.float32, torch.bfloat16):
        z = (torch.rand(n, v, device="cuda", generator=g) - 0.5).mul_(10).to(dtype).requires_grad_(True)
        ids = torch.randint(0, v, (n, k), device="cuda", generator=g)
        a = torch.log_softmax(torch.randn(n, k, device="cuda", generator=g), -1) - 0.1

        def step():
            z.grad = None
            s = torch.log_softmax(z.float(), -1)
            p = a.exp()
            L = (p * (a - s.gather(1, ids))).sum(-1).mean()
            L.backward()

        step()
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(10):
            step()
        end.record()
        torch.cuda.synchronize()
        res[dtype] = start.elapsed_time(end) / 10
        del z
        torch.cuda.empty_cache()
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    print(f"| forward-kl loss+grad, N={n}, V={v}, k={k} | PyTorch eager ms | distillery ms | speed-up |\n|---|---|---|---|")
    for (dtype, name), o in zip(((torch.float32, "fp32"), (torch.bfloat16, "bf16")), ours):
        print(f"| {name} | {res[dtype]:.3f} | {o:.3f} | {res[dtype] / o:.2f}x |" if o else f"| {name} | {res[dtype]:.3f} | - | - |")
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "check":
        sys.exit(check(sys.argv[2]))
    if len(sys.argv) >= 3 and sys.argv[1] == "time":
        ours = [0.0, 0.0]
        if "--ours" in sys.argv:
            ours = [float(x) for x in sys.argv[sys.argv.index("--ours") + 1].split(",")]
        sys.exit(time_torch(int(sys.argv[2]), ours))
    print(__doc__)
    sys.exit(2)
