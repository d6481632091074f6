"""PyTorch eager baseline for bench/train-vs-torch.ts: the benchmark student (Llama-style decoder, RMSNorm, RoPE,
grouped-query attention, SwiGLU, untied LM head) trained with cross-entropy, gradient clipping and AdamW, the same
shapes and optimizer as Distillery's step. Benchmark-only, never a test or CI dependency (Debian: python3-torch).

Protocol (one process per thread count, kept alive so runs can interleave with Distillery's): it builds the model,
warms up (--warmup steps), prints one JSON line {"ready": ..., "blas": ...}, then for each stdin line "steps N" runs
N timed steps and prints {"seconds": s, "loss": l}; "quit" ends it. With --profile N it instead runs N steps under
torch's profiler after the warm-up and prints where they spent their time ({"gemmShare": ..., "mmShare": ..., "top":
[[op, ms per step], ...]}).
"""
import argparse
import json
import math
import sys
import time

import torch
import torch.nn.functional as F


def openblas_core(libs):
    """The kernel set ("core") the loaded OpenBLAS runs, or None."""
    import ctypes

    for lib in libs:
        if "libopenblas" in lib:
            try:
                fn = ctypes.CDLL(lib).openblas_get_corename
                fn.restype = ctypes.c_char_p
                return fn().decode()
            except (OSError, AttributeError):
                return None
    return None


def loaded_blas():
    """The BLAS shared object this process mapped (OpenMP vs pthread OpenBLAS decides whether threads oversubscribe)."""
    try:
        with open("/proc/self/maps", encoding="utf8") as maps:
            libs = {line.split()[-1] for line in maps if "blas" in line.lower() and line.split()[-1].startswith("/")}
        return sorted(libs)
    except OSError:
        return []


class RMSNorm(torch.nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(t, hd, theta):
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
    ang = torch.outer(torch.arange(t, dtype=torch.float32), inv)
    return torch.cos(ang), torch.sin(ang)


def rope(x, cos, sin):
    # Rotate-half form (Hugging Face Llama): pairs (i, i + hd/2).
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2 :]
    c, s = cos[None, None], sin[None, None]
    return torch.cat([x1 * c - x2 * s, x1 * s + x2 * c], dim=-1)


class Block(torch.nn.Module):
    def __init__(self, d, nh, nkv, ffn, eps):
        super().__init__()
        self.nh, self.nkv, self.hd = nh, nkv, d // nh
        self.attn_norm, self.ffn_norm = RMSNorm(d, eps), RMSNorm(d, eps)
        self.wq = torch.nn.Linear(d, nh * self.hd, bias=False)
        self.wk = torch.nn.Linear(d, nkv * self.hd, bias=False)
        self.wv = torch.nn.Linear(d, nkv * self.hd, bias=False)
        self.wo = torch.nn.Linear(nh * self.hd, d, bias=False)
        self.w1 = torch.nn.Linear(d, ffn, bias=False)
        self.w3 = torch.nn.Linear(d, ffn, bias=False)
        self.w2 = torch.nn.Linear(ffn, d, bias=False)

    def forward(self, x, cos, sin, mask):
        b, t, _ = x.shape
        h = self.attn_norm(x)
        q = self.wq(h).view(b, t, self.nh, self.hd).transpose(1, 2)
        k = self.wk(h).view(b, t, self.nkv, self.hd).transpose(1, 2)
        v = self.wv(h).view(b, t, self.nkv, self.hd).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        rep = self.nh // self.nkv
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        # torch 1.13 has no scaled_dot_product_attention: the eager softmax(QKᵀ/√hd + mask)·V.
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(self.hd) + mask, dim=-1)
        x = x + self.wo((att @ v).transpose(1, 2).reshape(b, t, -1))
        h = self.ffn_norm(x)
        return x + self.w2(F.silu(self.w1(h)) * self.w3(h))


class Student(torch.nn.Module):
    def __init__(self, a):
        super().__init__()
        self.embed = torch.nn.Embedding(a.vocab, a.d)
        self.blocks = torch.nn.ModuleList(Block(a.d, a.heads, a.kv_heads, a.ffn, 1e-5) for _ in range(a.layers))
        self.norm = RMSNorm(a.d, 1e-5)
        self.head = torch.nn.Linear(a.d, a.vocab, bias=False)
        cos, sin = rope_tables(a.seq, a.d // a.heads, 10000.0)
        self.register_buffer("cos", cos)
        self.register_buffer("sin", sin)
        self.register_buffer("mask", torch.full((a.seq, a.seq), float("-inf")).triu(1))

    def forward(self, tokens):
        x = self.embed(tokens)
        for blk in self.blocks:
            x = blk(x, self.cos, self.sin, self.mask)
        return self.head(self.norm(x))


# The ATen ops whose own CPU time is a BLAS GEMM (matmul and linear dispatch to these; their backward too).
GEMM_OPS = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"}


def profile(step, n):
    """--profile N: N steps under torch's profiler; the share of the ops' own CPU time spent in GEMMs, and the ops
    that take the most (own time, so nothing is counted twice)."""
    with torch.autograd.profiler.profile() as prof:
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        wall = time.perf_counter() - t0
    ops = [(e.key, e.self_cpu_time_total / 1e6) for e in prof.key_averages()]
    total = sum(s for _, s in ops)
    gemm = sum(s for k, s in ops if k in GEMM_OPS)
    mm = sum(s for k, s in ops if k == "aten::mm")
    top = sorted(ops, key=lambda o: -o[1])[:12]
    return {"steps": n, "wallSeconds": wall, "opSeconds": total, "gemmSeconds": gemm, "gemmShare": gemm / total,
            "mmShare": mm / total,
            "top": [[k, round(s / n * 1000, 2)] for k, s in top]}


def main():
    p = argparse.ArgumentParser()
    for name, default in [("threads", 1), ("batch", 4), ("seq", 256), ("vocab", 8192), ("d", 256), ("layers", 8),
                          ("heads", 8), ("kv_heads", 4), ("ffn", 768), ("warmup", 5), ("profile", 0)]:
        p.add_argument(f"--{name.replace('_', '-')}", type=int, default=default)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    model = Student(a)
    for n, w in model.named_parameters():
        if w.dim() == 2:
            torch.nn.init.normal_(w, std=0.02)
    # Weight decay on the matrices only, as Distillery's AdamW (norm gains excluded).
    decay = [w for w in model.parameters() if w.dim() == 2]
    no_decay = [w for w in model.parameters() if w.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-3)
    g = torch.Generator().manual_seed(2)
    tokens = torch.randint(0, a.vocab, (a.batch, a.seq), generator=g)
    labels = torch.roll(tokens, -1, dims=1)
    labels[:, -1] = -100

    def step():
        logits = model(tokens)
        loss = F.cross_entropy(logits.view(-1, a.vocab), labels.view(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=False)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    # Several warm-up steps: the allocator's reuse of freed activations (glibc grows its mmap threshold as large
    # blocks come back) settles only after a few steps; timed from the first, the first rounds ran at half speed.
    for _ in range(max(1, a.warmup)):
        step()
    if a.profile > 0:
        print(json.dumps(profile(step, a.profile)), flush=True)
        return
    params = sum(w.numel() for w in model.parameters())
    # ATen's own kernels (softmax, elementwise, AdamW) pick their SIMD level at run time; ATEN_CPU_CAPABILITY, set
    # by the caller, holds them to the level measured, and torch.__config__.show() says which one ran.
    cap = next((l.split(":", 1)[1].strip() for l in torch.__config__.show().splitlines()
                if "CPU capability usage" in l), "?")
    print(json.dumps({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "params": params, "blas": loaded_blas(), "blasCore": openblas_core(loaded_blas()),
                      "atenCapability": cap}), flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] == "quit":
            break
        n = int(cmd[1])
        t0 = time.perf_counter()
        loss = 0.0
        for _ in range(n):
            loss = step()
        print(json.dumps({"seconds": time.perf_counter() - t0, "loss": loss}), flush=True)


if __name__ == "__main__":
    main()
